"""The op catalogue beyond torch parity: symbolic dims, attribute validation, messages, MACs."""

from __future__ import annotations

import itertools

import pytest
from netc.compiler.dims import Expr, subs, sym
from netc.compiler.types import ShapeError, TensorType
from netc.specs import catalogue
from netc.specs.catalogue import CellBody, Param, all_ops
from pydantic import ValidationError

OPS = all_ops()
N, T_, H, W = sym("N"), sym("T"), sym("H"), sym("W")


def T(*shape, dtype="float") -> TensorType:
    return TensorType(dtype, tuple(shape))


def run(name, xs, **attrs):
    op = OPS[name]
    return op.shape(list(xs), op.Attrs(**attrs))


def subs_type(t: TensorType, env) -> TensorType:
    return t.with_shape(subs(d, env) for d in t.shape)


# -- the catalogue as a whole --------------------------------------------------------------

EXPECTED = {  # the op table of the language brief, by group
    "dense": ["linear", "embedding", "unembed"],
    "conv": ["conv1d", "conv2d", "conv_transpose2d"],
    "pool": ["maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "adaptive_avgpool2d", "global_avgpool",
             "upsample"],
    "norm": ["batchnorm", "layernorm", "rmsnorm", "groupnorm", "dropout"],
    "activation": ["relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid", "softmax", "log_softmax", "relu6",
                   "hardswish", "hardsigmoid", "clamp"],
    "shape": ["flatten", "reshape", "transpose", "permute", "concat", "split", "mean", "sum", "positions", "memory_format",
              "pad", "expand", "broadcast_to", "repeat"],
    "recurrent": ["rnn", "lstm", "gru", "scan"],
    "attention": ["self_attention", "cross_attention", "attention", "rotary", "positional_encoding"],
    "math": ["add", "sub", "mul", "div", "matmul", "neg", "constant", "sqrt", "exp", "log", "abs",
             "sin", "cos", "rsqrt", "randn_like", "index", "parameter",
             "fused_elementwise"],  # the last one made by the optimiser
}
NAMES = [name for names in EXPECTED.values() for name in names]


def test_catalogue_has_every_op_of_the_language():
    groups = {name: op.group for name, op in OPS.items()}
    assert groups == {name: group for group, names in EXPECTED.items() for name in names}


@pytest.mark.parametrize("name", NAMES)
def test_op_declaration(name):
    op = OPS[name]
    assert op.doc() and "\n" not in op.doc()
    assert catalogue.get(name) is op
    assert op.signature.startswith(name) or op.group == "math"
    assert issubclass(op.Attrs, catalogue.Attrs)
    cfg = op.Attrs.model_config
    assert cfg["frozen"] and cfg["extra"] == "forbid"
    assert cfg.get("strict") or not op.Attrs.model_fields


# -- symbolic dims -------------------------------------------------------------------------

def test_same_size_conv_cancels_exactly():
    assert run("conv1d", [T(N, 3, T_)], out=8, kernel=3, padding=1).shape == (N, 8, T_)
    assert run("conv2d", [T(N, 3, H, W)], out=8, kernel=5, padding=2).shape == (N, 8, H, W)
    assert run("maxpool2d", [T(N, 3, H, W)], kernel=2).shape == (N, 3, H // 2, W // 2)


SYMBOLIC = [
    ("conv2d", {"out": 4, "kernel": 3, "stride": 2, "padding": 1}),
    ("conv2d", {"out": 4, "kernel": (3, 5), "stride": (1, 3), "padding": (0, 2), "dilation": 2}),
    ("conv2d", {"out": 4, "kernel": 4, "padding": "same"}),
    ("conv1d", {"out": 4, "kernel": 5, "stride": 3, "dilation": 2}),
    ("conv_transpose2d", {"out": 4, "kernel": 4, "stride": 2, "padding": 1, "output_padding": 1}),
    ("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1}),
    ("avgpool1d", {"kernel": 4, "stride": 3}),
    ("adaptive_avgpool2d", {"size": (2, 3)}),
    ("upsample", {"scale": 2, "mode": "bilinear"}),
    ("flatten", {}),
    ("flatten", {"start": 2}),
    ("global_avgpool", {}),
    ("reshape", {"shape": (-1, 3)}),
    ("groupnorm", {"groups": 3}),
    ("layernorm", {"dims": 2}),
    ("transpose", {"a": -1, "b": 1}),
]


@pytest.mark.parametrize("name, attrs", SYMBOLIC)
def test_symbolic_rule_commutes_with_substitution(name, attrs):
    dims1 = name in ("conv1d", "avgpool1d")
    x = T(N, 3, T_) if dims1 else T(N, 3, H, W)
    symbolic = run(name, [x], **attrs)
    assert isinstance(symbolic, TensorType) and symbolic.symbols()
    for n, h, w in itertools.product([1, 2], range(4, 12), range(5, 9)):
        env = {"N": n, "T": h, "H": h, "W": w}
        want = subs_type(symbolic, env)
        try:
            assert want == run(name, [subs_type(x, env)], **attrs), env
        except ShapeError:  # too small an input: the concrete rule refuses an empty output
            assert min(want.shape) < 1, env


def test_symbolic_reshape_and_flatten():
    x = T(N, T_, 64)
    assert run("reshape", [x], shape=(N, T_, 8, 8)).shape == (N, T_, 8, 8)
    assert run("reshape", [x], shape=(N, -1)).shape == (N, T_ * 64)
    assert run("reshape", [x], shape=(-1, 64)).shape == (N * T_, 64)
    assert run("reshape", [x], shape=(N, -1, 4, 4)).shape == (N, T_ * 4, 4, 4)
    assert run("flatten", [T(N, 64, 7, 7)]).shape == (N, 64 * 49)
    with pytest.raises(ShapeError, match="same number of elements"):
        run("reshape", [x], shape=(N, T_, 9, 8))
    with pytest.raises(ShapeError, match="cannot infer -1"):
        run("reshape", [x], shape=(-1, 7))


def test_symbolic_broadcast_and_matmul():
    assert run("add", [T(N, 1), T(1, T_)]).shape == (N, T_)
    assert run("mul", [T(N, T_, 8), T(8)]).shape == (N, T_, 8)
    with pytest.raises(ShapeError, match=r"cannot broadcast \[N, 3\] with \[N, 4\]"):
        run("add", [T(N, 3), T(N, 4)])
    for a, b in [(T(N), T(sym("M"))), (T(N), T(3))]:
        with pytest.raises(ShapeError, match="cannot broadcast"):
            run("sub", [a, b])
    assert run("matmul", [T(N, T_, 64), T(64, 10)]).shape == (N, T_, 10)
    assert run("matmul", [T(N, 4, T_, 16), T(N, 4, 16, T_)]).shape == (N, 4, T_, T_)
    with pytest.raises(ShapeError):
        run("matmul", [T(N, T_, 64), T(T_, 10)])


def test_symbolic_sequence_ops():
    assert run("concat", [T(N, T_, 4), T(N, sym("S"), 4)], dim=1).shape == (N, T_ + sym("S"), 4)
    assert [t.shape for t in run("split", [T(N, T_, 12)], sizes=(4, 8))] == [(N, T_, 4), (N, T_, 8)]
    with pytest.raises(ShapeError, match="concrete size") as e:
        run("split", [T(N, T_, 4)], sizes=2, dim=1)
    assert e.value.hint
    assert run("positions", [T(N, T_, dtype="int")]) == T(T_, dtype="int")
    seq, h, c = run("lstm", [T(N, T_, 8)], hidden=16, layers=2, bidirectional=True)
    assert (seq.shape, h.shape, c.shape) == ((N, T_, 32), (4, N, 16), (4, N, 16))
    q, kv = T(N, 4, T_, 8), T(N, 4, sym("S"), 8)
    assert run("attention", [q, kv, kv]).shape == (N, 4, T_, 8)


def test_params_need_concrete_sizes():
    assert run("linear", [T(N, T_, 64)], out=10).shape == (N, T_, 10)
    op = OPS["linear"]
    assert op.params([T(N, T_, 64)], op.Attrs(out=10)) == {"weight": Param((10, 64)), "bias": Param((10,))}
    with pytest.raises(ShapeError, match="the input feature size must be a concrete size"):
        op.params([T(N, sym("F"))], op.Attrs(out=10))


# -- macs ----------------------------------------------------------------------------------

def macs(name, xs, **attrs):
    op = OPS[name]
    a = op.Attrs(**attrs)
    out = op.shape(list(xs), a)
    return op.macs(list(xs), out if isinstance(out, tuple) else (out,), a)


def test_macs():
    assert macs("linear", [T(8, 100)], out=10) == 8 * 10 * 100
    assert macs("linear", [T(N, 100)], out=10) == N * 1000
    assert macs("conv2d", [T(1, 4, 8, 8)], out=6, kernel=3, padding=1, groups=2) == 6 * 64 * 2 * 9
    assert macs("conv_transpose2d", [T(1, 4, 5, 5)], out=6, kernel=3) == 4 * 25 * 6 * 9
    assert macs("matmul", [T(2, 3, 4), T(4, 5)]) == 2 * 3 * 5 * 4
    assert macs("lstm", [T(2, 7, 3)], hidden=4) == 7 * 2 * 4 * 4 * (3 + 4)
    assert macs("gru", [T(2, 7, 3)], hidden=4, layers=2, bidirectional=True) == \
        7 * 2 * 3 * 4 * 2 * ((3 + 4) + (8 + 4))
    assert macs("self_attention", [T(2, 5, 8)], heads=2) == 4 * 80 * 8 + 2 * 2 * 5 * 5 * 8
    assert macs("cross_attention", [T(2, 5, 8), T(2, 7, 8)], heads=2) == \
        2 * 80 * 8 + 2 * 112 * 8 + 2 * 2 * 5 * 7 * 8
    assert macs("attention", [T(2, 5, 4), T(2, 7, 4), T(2, 7, 3)]) == 2 * 5 * 7 * (4 + 3)
    assert macs("relu", [T(2, 3)]) == 0


def test_scan_uses_the_cell():
    cell = CellBody("Elman", {"linear.weight": Param((16, 8))}, step_macs=N * 128, states=1)
    op = OPS["scan"]
    a = op.Attrs(cell=cell, hidden=16)
    x = T(N, T_, 8)
    assert op.shape([x], a) == T(N, T_, 16)
    assert op.params([x], a) == cell.params
    assert op.macs([x], (T(N, T_, 16),), a) == T_ * N * 128


# -- attribute validation ------------------------------------------------------------------

@pytest.mark.parametrize("name, attrs", [
    ("linear", {"out": "a"}),
    ("linear", {"out": 3, "bais": True}),
    ("linear", {"out": 3.0}),
    ("linear", {"out": 3, "bias": 1}),
    ("linear", {}),
    ("conv2d", {"out": 3, "kernel": (1, 2, 3)}),
    ("conv2d", {"out": 3, "kernel": [3, 3]}),
    ("conv2d", {"out": 3, "kernel": 3, "padding": "valid"}),
    ("conv1d", {"out": 3, "kernel": (3, 3)}),
    ("upsample", {"scale": 2, "mode": "bicubic"}),
    ("rnn", {"hidden": 4, "nonlinearity": "sigmoid"}),
    ("lstm", {"hidden": 4, "nonlinearity": "relu"}),
    ("dropout", {"p": "x"}),
    ("constant", {"value": 1.0, "dtype": "half"}),
    ("unembed", {"layer": "wte"}),
])
def test_bad_attribute_types(name, attrs):
    with pytest.raises(ValidationError):
        OPS[name].Attrs(**attrs)


X4 = T(2, 4, 6, 6)


@pytest.mark.parametrize("name, xs, attrs, message", [
    ("conv2d", [X4], {"out": 0, "kernel": 3}, "needs out >= 1"),
    ("conv2d", [X4], {"out": 8, "kernel": 0}, "needs kernel >= 1"),
    ("conv2d", [X4], {"out": 8, "kernel": 3, "stride": (1, 0)}, r"needs stride >= 1; got stride=\(1, 0\)"),
    ("conv2d", [X4], {"out": 8, "kernel": 3, "padding": -1}, "needs padding >= 0"),
    ("conv2d", [X4], {"out": 8, "kernel": 3, "groups": 3}, "divisible by groups"),
    ("conv2d", [X4], {"out": 6, "kernel": 3, "groups": 4}, "out divisible by groups"),
    ("conv2d", [X4], {"out": 8, "kernel": 3, "stride": 2, "padding": "same"}, "stride=1"),
    ("conv2d", [T(1, 3, 2, 9)], {"out": 8, "kernel": 3}, r"^output height would be 0 \(input 2, kernel 3\)$"),
    ("conv1d", [T(1, 3, 4)], {"out": 8, "kernel": 3, "dilation": 2},
     r"output length would be 0 \(input 4, kernel 3, dilation 2\)"),
    ("conv2d", [T(1, 3, 8)], {"out": 8, "kernel": 3},
     r"^needs a 4-d input \[N, C, H, W\]; got float\[1, 3, 8\]$"),
    ("conv_transpose2d", [X4], {"out": 8, "kernel": 3, "stride": 2, "output_padding": 2},
     "output_padding < stride"),
    ("maxpool2d", [X4], {"kernel": 2, "padding": 2}, "at most half the kernel"),
    ("dropout", [X4], {"p": 1.0}, r"needs 0 <= p < 1"),
    ("dropout", [X4], {"p": -0.1}, r"needs 0 <= p < 1"),
    ("batchnorm", [X4], {"eps": 0.0}, "eps > 0"),
    ("batchnorm", [T(2, 3, 4, 5, 6)], {}, "needs a 2-d or 3-d or 4-d input"),
    ("layernorm", [X4], {"dims": 0}, "dims >= 1"),
    ("layernorm", [T(2, 3)], {"dims": 3}, "at least 3 dims"),
    ("groupnorm", [T(2, 6, 5)], {"groups": 4}, "divisible by groups"),
    ("self_attention", [T(2, 5, 8)], {"heads": 3}, "divisible by heads"),
    ("self_attention", [T(2, 5, 8)], {"heads": 2, "dropout": 1.5}, "dropout < 1"),
    ("embedding", [T(2, 5)], {"num": 10, "dim": 4}, r"needs an int input \(token ids\)"),
    ("split", [T(2, 7)], {"sizes": 0}, "sizes >= 1"),
    ("reshape", [T(2, 6)], {"shape": (-1, -1)}, "at most one -1"),
    ("permute", [T(2, 6)], {"dims": (0, 0)}, "permutation"),
    ("mean", [T(2, 6)], {"dim": (1, -1)}, "distinct dims"),
    ("mean", [T(2, 6, dtype="int")], {"dim": 1}, "needs a float input"),
    ("concat", [T(2, 6), T(2, 6, dtype="int")], {"dim": 0}, "one dtype"),
    ("constant", [], {"value": 2.5, "dtype": "int"}, "dtype float"),
    ("rnn", [T(2, 5, 3)], {"hidden": 0}, "hidden >= 1"),
    ("lstm", [T(2, 5, 3), T(1, 2, 4)], {"hidden": 4}, r"needs init=\(h, c\)"),
    ("gru", [T(2, 5, 3), T(2, 2, 4)], {"hidden": 4}, r"needs init h of type float\[1, 2, 4\]"),
    ("upsample", [X4], {"scale": 0}, "scale > 0"),
    ("upsample", [T(1, 2, 5)], {"scale": 1.5}, "whole"),
    ("upsample", [T(1, 2, 5)], {"scale": 2, "mode": "bilinear"}, "4-d input"),
    ("attention", [T(2, 6, 5, 4), T(2, 4, 7, 4), T(2, 4, 7, 3)], {}, "multiple of k's"),
    ("attention", [T(5, 4), T(7, 4), T(7, 3), T(5, 7), T(5, 7)], {}, "one mask and one padding"),
    ("attention", [T(2, 5, 4), T(2, 7, 4), T(2, 7, 3), T(2, 7)], {"masks": ("padding",)}, "bool"),
    ("self_attention", [T(2, 5, 8)], {"heads": 4, "kv_heads": 3}, "divisible by kv_heads"),
    ("self_attention", [T(2, 5, 12)], {"heads": 4, "rotary": True}, "even head size"),
    ("self_attention", [T(2, 5, 8), T(2, 5, dtype="bool")], {"heads": 2, "masks": ("mask",)},
     r"mask that broadcasts"),
    ("rotary", [T(2, 5, 7)], {}, "even last dim"),
    ("rmsnorm", [T(2, 5)], {"eps": 0.0}, "eps > 0"),
    ("softmax", [T(2, 3)], {"dim": 2}, "out of range"),
    ("sub", [T(2, dtype="bool"), T(2)], {}, "bool"),
    ("neg", [T(2, dtype="bool")], {}, "numeric"),
])
def test_bad_attribute_values(name, xs, attrs, message):
    with pytest.raises(ShapeError, match=message):
        run(name, xs, **attrs)


def test_linear_on_a_feature_map_says_to_flatten():
    with pytest.raises(ShapeError) as e:
        run("linear", [T(N, 64, 7, 7)], out=128)
    assert str(e.value) == "needs a 2-d input [N, F]; got float[N, 64, 7, 7]"
    assert e.value.hint == "put `flatten` before `linear`"
    with pytest.raises(ShapeError) as e:
        run("linear", [T(N, T_, dtype="int")], out=128)
    assert "embedding" in e.value.hint


def test_unembed_checks_the_width():
    ref = catalogue.LayerRef("wte", "embedding", {"weight": Param((100, 16))})
    assert run("unembed", [T(N, T_, 16)], layer=ref) == T(N, T_, 100)
    with pytest.raises(ShapeError, match=r"\[\.\.\., 16\] \(the width of `wte`\)"):
        run("unembed", [T(N, T_, 8)], layer=ref)
    with pytest.raises(ShapeError, match="2-d weight"):
        bn = catalogue.LayerRef("bn", "batchnorm", {"running_mean": Param((16,))})
        run("unembed", [T(N, 16)], layer=bn)


def test_attrs_are_hashable_and_frozen():
    a = OPS["conv2d"].Attrs(out=8, kernel=(3, 3))
    assert hash(a) == hash(OPS["conv2d"].Attrs(out=8, kernel=(3, 3)))
    with pytest.raises(ValidationError):
        a.out = 3
    assert isinstance(run("reshape", [T(N, 4)], shape=(N, 2, 2)).shape[0], Expr)
