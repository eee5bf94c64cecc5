"""Every op's shape rule against the real torch op, over grids of attributes and inputs.

The rule must give torch's output dtypes and shapes, and must raise ShapeError exactly when
torch refuses the same call; for layers, ``params`` must name and size the weights exactly as
the torch module's ``state_dict`` does.
"""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from netc.compiler.dims import is_dim
from netc.compiler.types import ShapeError, TensorType
from netc.specs.catalogue import LayerRef, Param, all_ops
from torch import nn

OPS = all_ops()
TORCH_ERRORS = (RuntimeError, ValueError, IndexError, AssertionError)
DTYPES = {torch.float32: "float", torch.int64: "int", torch.bool: "bool"}


@pytest.fixture(autouse=True, scope="module")
def _no_mkldnn():
    """oneDNN builds a kernel per new shape, which costs more than the tiny convolutions here."""
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = was


def T(*shape, dtype="float") -> TensorType:
    return TensorType(dtype, tuple(shape))


def rand(t: TensorType) -> torch.Tensor:
    if t.dtype == "float":
        return torch.randn(t.shape)
    if t.dtype == "int":
        return torch.randint(0, 5, t.shape)
    return torch.rand(t.shape) > 0.5


def flat(out) -> list:
    """(dtype, shape) of each tensor in a (nested) torch result."""
    if isinstance(out, torch.Tensor):
        return [(DTYPES[out.dtype], tuple(out.shape))]
    return [x for o in out for x in flat(o)]


def infer(name, xs, **attrs) -> list:
    op = OPS[name]
    a = op.Attrs(**attrs)
    out = op.shape(list(xs), a)
    outs = out if isinstance(out, tuple) else (out,)
    assert is_dim(op.macs(list(xs), outs, a))
    return [(t.dtype, t.shape) for t in outs]


def assert_params(name, xs, attrs, module: nn.Module) -> None:
    op = OPS[name]
    got = op.params(list(xs), op.Attrs(**attrs))
    sd = module.state_dict()
    assert list(got) == list(sd)
    buffers = {k for k, _ in module.named_buffers()}
    for k, p in got.items():
        assert all(type(d) is int for d in p.shape)
        assert p == Param(tuple(sd[k].shape), buffer=k in buffers, dtype=DTYPES[sd[k].dtype])
    assert ("has_weights" in op.traits) == bool(got)
    assert not op.param_names or set(got) <= set(op.param_names), "params() gives a name param_names lacks"


def check(name, xs, attrs, run, *args) -> None:
    """``run(*args)`` calls torch: it returns the output, or (module, output) for a layer."""
    try:
        res = run(*args)
    except TORCH_ERRORS:
        with pytest.raises(ShapeError):
            infer(name, xs, **attrs)
        return
    module, out = res if isinstance(res, tuple) and isinstance(res[0], nn.Module) else (None, res)
    want = flat(out)
    if any(0 in shape for _, shape in want) and not any(0 in x.shape for x in xs):
        try:  # torch gives an empty tensor; the rule may call that an error (it is never meant)
            infer(name, xs, **attrs)
        except ShapeError:
            return
    assert infer(name, xs, **attrs) == want, (name, attrs)
    if module is not None:
        assert_params(name, xs, attrs, module)


def layer(make, *inputs) -> tuple:
    """Build a module with ``make()`` (torch may refuse the sizes there) and apply it."""
    module = make()
    out = module(*(rand(x) for x in inputs))
    return module, out[0] if isinstance(module, nn.MultiheadAttention) else out


# -- dense ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 12), (2, 5, 12)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape, bias):
    x = T(*shape)
    check("linear", [x], {"out": 7, "bias": bias}, layer, partial(nn.Linear, 12, 7, bias=bias), x)


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 5, 3)])
def test_embedding(shape):
    x = T(*shape, dtype="int")
    check("embedding", [x], {"num": 11, "dim": 6}, layer, partial(nn.Embedding, 11, 6), x)


@pytest.mark.parametrize("shape", [(6,), (2, 6), (2, 5, 6)])
def test_unembed(shape):
    emb = nn.Embedding(11, 6)
    ref = LayerRef("wte", "embedding", {"weight": Param((11, 6))})
    x = T(*shape)
    check("unembed", [x], {"layer": ref}, lambda: rand(x) @ emb.weight.T)


# -- conv ----------------------------------------------------------------------------------

KERNELS = {1: [1, 2, 3, 4, 5], 2: [1, 2, 3, 4, 5, (1, 3), (3, 2), (5, 2)]}
INPUTS = {1: T(2, 4, 9), 2: T(2, 4, 7, 10)}


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2, "same"])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_conv(dims, stride, padding, dilation, groups):
    cls, x = (nn.Conv1d, nn.Conv2d)[dims - 1], INPUTS[dims]
    for k in KERNELS[dims]:
        attrs = {"out": 8, "kernel": k, "stride": stride, "padding": padding, "dilation": dilation,
                 "groups": groups}
        check(f"conv{dims}d", [x], attrs, layer, partial(cls, 4, 8, k, stride, padding, dilation, groups), x)
    if dims == 2 and padding != "same":  # rectangular stride and padding
        attrs = {"out": 8, "kernel": 3, "stride": (stride, 1), "padding": (padding, 0),
                 "dilation": (1, dilation)}
        make = partial(nn.Conv2d, 4, 8, 3, (stride, 1), (padding, 0), (1, dilation))
        check("conv2d", [x], attrs, layer, make, x)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("output_padding", [0, 1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d(stride, padding, output_padding, bias):
    x = T(2, 4, 3, 5)
    for k in [1, 2, 3, 4, (2, 3)]:
        attrs = {"out": 6, "kernel": k, "stride": stride, "padding": padding,
                 "output_padding": output_padding, "bias": bias}
        make = partial(nn.ConvTranspose2d, 4, 6, k, stride, padding, output_padding, bias=bias)
        check("conv_transpose2d", [x], attrs, layer, make, x)


# -- pool ----------------------------------------------------------------------------------

POOLS = {("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d,
         ("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d}


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("stride", [None, 1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_pool(kind, dims, stride, padding):
    x = INPUTS[dims]
    kernels = [1, 2, 3, 4, 5] + ([(2, 4), (3, 1)] if dims == 2 else [])
    for k in kernels:
        attrs = {"kernel": k, "stride": stride, "padding": padding}
        check(f"{kind}pool{dims}d", [x], attrs, layer, partial(POOLS[kind, dims], k, stride, padding), x)


@pytest.mark.parametrize("size", [1, 3, (2, 5), (7, 1)])
def test_adaptive_avgpool2d(size):
    x = T(2, 3, 7, 10)
    check("adaptive_avgpool2d", [x], {"size": size}, lambda: F.adaptive_avg_pool2d(rand(x), size))


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 5, 4), (2, 3)])
def test_global_avgpool(shape):
    x = T(*shape)
    spatial = tuple(range(2, len(shape))) or (99,)  # no spatial dims: torch refuses too
    check("global_avgpool", [x], {}, lambda: rand(x).mean(dim=spatial))


@pytest.mark.parametrize("shape", [(1, 2, 6), (1, 2, 6, 4)])
@pytest.mark.parametrize("scale", [1, 2, 3, 0.5, 1.5, 2.0])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample(shape, scale, mode):
    x = T(*shape)
    check("upsample", [x], {"scale": scale, "mode": mode},
          lambda: F.interpolate(rand(x), scale_factor=scale, mode=mode))


# -- norm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 5), (4, 6, 5, 3)])
def test_batchnorm(shape):
    x = T(*shape)
    check("batchnorm", [x], {}, layer, partial(nn.BatchNorm1d if len(shape) < 4 else nn.BatchNorm2d, 6), x)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_layernorm(dims):
    x = T(2, 3, 4, 5)
    check("layernorm", [x], {"dims": dims}, layer, partial(nn.LayerNorm, x.shape[-dims:]), x)


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("shape", [(2, 6, 5), (2, 6, 5, 3)])
def test_groupnorm(groups, shape):
    x = T(*shape)
    check("groupnorm", [x], {"groups": groups}, layer, partial(nn.GroupNorm, groups, 6), x)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.9])
def test_dropout(p):
    x = T(2, 3, 4)
    check("dropout", [x], {"p": p}, lambda: F.dropout(rand(x), p))


# -- activation ----------------------------------------------------------------------------

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "leaky_relu": F.leaky_relu}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("rank", [0, 1, 2, 4])
def test_activation(name, rank):
    x = T(*range(2, 2 + rank))
    check(name, [x], {}, lambda: ACTIVATIONS[name](rand(x)))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [-3, -1, 0, 1, 2])
def test_softmax(name, dim):
    x = T(2, 3)
    check(name, [x], {"dim": dim}, lambda: getattr(F, name)(rand(x), dim=dim))


# -- shape ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_flatten(rank):
    x = T(*(2, 3, 4, 5)[:rank])
    for start, end in itertools.product(range(-4, 4), repeat=2):
        check("flatten", [x], {"start": start, "end": end}, torch.flatten, rand(x), start, end)


@pytest.mark.parametrize("target", [(24,), (6, 4), (-1, 4), (2, -1, 2), (-1,), (5, -1), (-1, -1), (4, 3, 2),
                                    (2, 3, 5), (0, -1), (1, 24, 1), (-2, 12)])
def test_reshape(target):
    x = T(2, 3, 4)
    check("reshape", [x], {"shape": target}, lambda: rand(x).reshape(target))


@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_transpose(rank):
    x = T(*(2, 3, 4, 5)[:rank])
    for a, b in itertools.product(range(-4, 4), repeat=2):
        check("transpose", [x], {"a": a, "b": b}, torch.transpose, rand(x), a, b)


@pytest.mark.parametrize("dims", [*itertools.permutations(range(3)), (2, -2, 0), (0, 0, 1), (0, 1),
                                  (0, 1, 3)])
def test_permute(dims):
    x = T(2, 3, 4)
    check("permute", [x], {"dims": dims}, lambda: rand(x).permute(dims))


@pytest.mark.parametrize("shapes", [[(2, 3, 4)], [(2, 3, 4), (2, 5, 4)], [(2, 3, 4), (2, 3, 1), (2, 3, 2)],
                                    [(2, 3, 4), (3, 3, 4)], [(2, 3), (2, 3, 4)]])
@pytest.mark.parametrize("dim", [-1, 0, 1, 2, 3])
def test_concat(shapes, dim):
    xs = [T(*s) for s in shapes]
    check("concat", xs, {"dim": dim}, lambda: torch.cat([rand(x) for x in xs], dim=dim))


@pytest.mark.parametrize("sizes", [1, 3, 7, 10, (3, 4), (2, 2, 3), (1, 1), (7,), (0, 7), (8, -1)])
@pytest.mark.parametrize("dim", [1, -2])
def test_split(sizes, dim):
    x = T(2, 7, 4)
    split = list(sizes) if isinstance(sizes, tuple) else sizes
    check("split", [x], {"sizes": sizes, "dim": dim}, torch.split, rand(x), split, dim)


@pytest.mark.parametrize("name", ["mean", "sum"])
@pytest.mark.parametrize("dim", [0, -1, (1, 2), (0, -1), (1, 1), (0, 3)])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dtype", ["float", "int", "bool"])
def test_reduce(name, dim, keepdim, dtype):
    x = T(2, 3, 4, dtype=dtype)
    check(name, [x], {"dim": dim, "keepdim": keepdim}, lambda: getattr(torch, name)(rand(x), dim, keepdim))


@pytest.mark.parametrize("x", [T(2, 5, dtype="int"), T(2, 5, 8)])
def test_positions(x):
    check("positions", [x], {}, lambda: torch.arange(x.shape[1]))


# -- math ----------------------------------------------------------------------------------

SHAPES = [(), (3,), (1,), (4, 3), (4, 1), (2, 1, 3), (2, 4, 3), (5,), (4, 5)]
BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtypes", [("float", "float"), ("int", "float"), ("int", "int"), ("bool", "int"),
                                    ("bool", "bool")])
def test_broadcast(name, dtypes):
    for sa, sb in itertools.product(SHAPES, repeat=2):
        x, y = T(*sa, dtype=dtypes[0]), T(*sb, dtype=dtypes[1])
        check(name, [x, y], {}, BINARY[name], rand(x), rand(y))


@pytest.mark.parametrize("ra", [1, 2, 3, 4])
@pytest.mark.parametrize("rb", [1, 2, 3, 4])
@pytest.mark.parametrize("y_full", [(2, 1, 5, 2), (2, 2, 5, 2), (2, 1, 4, 2)])
def test_matmul(ra, rb, y_full):
    x, y = T(*(1, 3, 4, 5)[-ra:]), T(*y_full[-rb:])
    check("matmul", [x, y], {}, lambda: rand(x) @ rand(y))


@pytest.mark.parametrize("name", ["neg", "abs", "sqrt", "exp", "log"])
@pytest.mark.parametrize("dtype", ["float", "int"])
def test_unary_math(name, dtype):
    x = T(2, 3, dtype=dtype)
    check(name, [x], {}, lambda: getattr(torch, name)(rand(x)))


@pytest.mark.parametrize("value, dtype", [(2.0, "float"), (3, "int"), (True, "bool"), (1, "float")])
def test_constant(value, dtype):
    check("constant", [], {"value": value, "dtype": dtype}, lambda: torch.tensor(value, dtype={
        "float": torch.float32, "int": torch.int64, "bool": torch.bool}[dtype]))


# -- recurrent -----------------------------------------------------------------------------

RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.mark.parametrize("name", sorted(RECURRENT))
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("init", [None, "ok", "bad"])
def test_recurrent(name, layers, bidirectional, init):
    x, d = T(2, 5, 3), 2 if bidirectional else 1
    module = RECURRENT[name](3, 4, layers, batch_first=True, bidirectional=bidirectional)
    xs = [x]
    if init:
        state = T(layers * d, 2, 4 if init == "ok" else 5)
        xs += [state, state] if name == "lstm" else [state]
    inits = [rand(s) for s in xs[1:]]
    hx = tuple(inits) if name == "lstm" and inits else (inits[0] if inits else None)
    attrs = {"hidden": 4, "layers": layers, "bidirectional": bidirectional}
    check(name, xs, attrs, lambda: (module, module(rand(x), hx)))


def test_lstm_packs_state_as_pair():
    assert OPS["lstm"].pack(("s", "h", "c")) == ("s", ("h", "c"))
    assert OPS["gru"].pack(("s", "h")) == ("s", "h")


# -- attention -----------------------------------------------------------------------------

@pytest.mark.parametrize("heads", [1, 2, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_self_attention(heads, bias):
    x = T(2, 5, 8)
    make = partial(nn.MultiheadAttention, 8, heads, bias=bias, batch_first=True)
    check("self_attention", [x], {"heads": heads, "bias": bias}, layer, make, x, x, x)


@pytest.mark.parametrize("memory", [(2, 7, 8), (2, 5, 8), (2, 7, 6), (3, 7, 8)])
def test_cross_attention(memory):
    x, m = T(2, 5, 8), T(*memory)
    make = partial(nn.MultiheadAttention, 8, 2, batch_first=True)
    check("cross_attention", [x, m], {"heads": 2}, layer, make, x, m, m)


@pytest.mark.parametrize("batch", [((), (), ()), ((2,), (2,), (2,)), ((2, 1), (1, 3), (2, 3)),
                                   ((2,), (3,), (2,))])
@pytest.mark.parametrize("mask", [None, T(5, 7), T(1, 7), T(5, 6), T(5, 7, dtype="bool"),
                                  T(5, 7, dtype="int")])
@pytest.mark.parametrize("causal", [False, True])
def test_attention(batch, mask, causal):
    q, k, v = T(*batch[0], 5, 4), T(*batch[1], 7, 4), T(*batch[2], 7, 3)
    xs = [q, k, v] + ([mask] if mask else [])

    def run():
        m = rand(mask) if mask else None
        if causal and m is not None:  # netc combines the two (torch's SDPA takes one or the other)
            keep = torch.ones(5, 7, dtype=torch.bool).tril()
            m = m & keep if m.dtype == torch.bool else m.masked_fill(~keep, float("-inf"))
        return F.scaled_dot_product_attention(*(rand(x) for x in xs[:3]), attn_mask=m,
                                              is_causal=causal and m is None)

    check("attention", xs, {"causal": causal}, run)


@pytest.mark.parametrize("shape, ok", [((2, 5, 8), True), ((2, 5, 7), False), ((5, 8), False)])
def test_positional_encoding(shape, ok):
    if ok:
        assert infer("positional_encoding", [T(*shape)]) == [("float", shape)]
    else:
        with pytest.raises(ShapeError):
            infer("positional_encoding", [T(*shape)])
