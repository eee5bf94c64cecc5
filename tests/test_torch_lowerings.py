"""The torch lowerings, op by op, and the prelude helpers, without the emitter.

A lowering's module constructor is rendered with ``repr`` for its values and evaluated, and
its ``state_dict`` must name and size the weights as the catalogue does; its forward
expression is evaluated on random tensors and must give the catalogue's output types.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from netc.backends.torch import ops  # noqa: F401  (registers the lowerings)
from netc.backends.torch.lower import LOWERINGS, Code
from netc.backends.torch.prelude import PRELUDE, prelude_source
from netc.compiler.dims import sym
from netc.compiler.ir import Node
from netc.compiler.types import TensorType
from netc.specs.catalogue import CellBody, LayerRef, Param, all_ops
from netc.specs.init import make as make_init
from torch import nn

OPS = all_ops()
DTYPES = {torch.float32: "float", torch.int64: "int", torch.bool: "bool"}


def T(*shape, dtype="float") -> TensorType:
    return TensorType(dtype, tuple(shape))


def rand(t: TensorType) -> torch.Tensor:
    if t.dtype == "float":
        return torch.randn(t.shape)
    if t.dtype == "int":
        return torch.randint(0, 5, t.shape)
    return torch.rand(t.shape) > 0.5


def prelude() -> dict:
    ns = {"torch": torch, "nn": nn, "F": F}
    exec(prelude_source(set(PRELUDE)), ns)  # noqa: S102  (our own prelude source)
    return ns


PRELUDE_NS = prelude()
Attention = PRELUDE_NS["Attention"]


# -- cells for scan: what the emitter would generate for a cell ------------------------------

class Elman(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.linear_1 = nn.Linear(4, 4, bias=False)

    def forward(self, x, h):
        return torch.tanh(self.linear(x) + self.linear_1(h))


class LSTMCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(3, 4)

    def forward(self, x, h, c):
        h, c = self.cell(x, (h, c))
        return h, c


def cell_body(cls, states: int) -> CellBody:
    params = {k: Param(tuple(v.shape)) for k, v in cls().state_dict().items()}
    return CellBody(cls.__name__, params, 0, states)


WTE = LayerRef("wte", "embedding", {"weight": Param((11, 6))})

# op -> [(inputs, attrs)]: a handful of configurations each, every op of the catalogue.
CASES = {
    "linear": [([T(2, 12)], {"out": 7}), ([T(2, 5, 12)], {"out": 3, "bias": False})],
    "embedding": [([T(2, 5, dtype="int")], {"num": 11, "dim": 6})],
    "unembed": [([T(2, 5, 6)], {"layer": WTE}), ([T(6)], {"layer": WTE})],
    "conv1d": [([T(2, 4, 10)], {"out": 6, "kernel": 3}),
               ([T(2, 4, 10)], {"out": 8, "kernel": 3, "padding": "same", "dilation": 2, "groups": 2,
                                "bias": False})],
    "conv2d": [([T(2, 3, 9, 9)], {"out": 4, "kernel": 3, "stride": 2, "padding": 1}),
               ([T(2, 3, 9, 9)], {"out": 6, "kernel": (3, 1), "padding": "same", "dilation": (2, 1),
                                  "groups": 3, "bias": False})],
    "conv_transpose2d": [([T(2, 4, 5, 5)], {"out": 3, "kernel": 4, "stride": 2, "padding": 1}),
                         ([T(2, 4, 5, 5)], {"out": 2, "kernel": 3, "stride": 2, "output_padding": 1,
                                            "bias": False})],
    "maxpool1d": [([T(2, 3, 10)], {"kernel": 2}), ([T(2, 3, 10)], {"kernel": 3, "stride": 2, "padding": 1})],
    "maxpool2d": [([T(2, 3, 8, 8)], {"kernel": 2}), ([T(2, 3, 8, 8)], {"kernel": 3, "stride": 2, "padding": 1}),
                  ([T(2, 3, 8, 8)], {"kernel": (2, 3), "stride": (1, 2)})],
    "avgpool1d": [([T(2, 3, 10)], {"kernel": 2}), ([T(2, 3, 10)], {"kernel": 3, "stride": 2, "padding": 1})],
    "avgpool2d": [([T(2, 3, 8, 8)], {"kernel": 2}), ([T(2, 3, 8, 8)], {"kernel": 3, "stride": 2, "padding": 1})],
    "adaptive_avgpool2d": [([T(2, 3, 7, 10)], {"size": 1}), ([T(2, 3, 7, 10)], {"size": (2, 5)})],
    "global_avgpool": [([T(2, 3, 5, 4)], {}), ([T(2, 3, 5)], {})],
    "upsample": [([T(1, 2, 6, 4)], {"scale": 2}), ([T(1, 2, 6, 4)], {"scale": 1.5, "mode": "bilinear"}),
                 ([T(1, 2, 6)], {"scale": 0.5})],
    "batchnorm": [([T(4, 6)], {}), ([T(4, 6, 5)], {"eps": 1e-3}), ([T(4, 6, 5, 3)], {"momentum": 0.2})],
    "layernorm": [([T(2, 3, 4, 5)], {}), ([T(2, 3, 4, 5)], {"dims": 2, "eps": 1e-6}),
                  ([T(2, 3, 4, 5)], {"affine": False}), ([T(2, 3, 4, 5)], {"dims": 3, "eps": 1e-3, "affine": False})],
    "groupnorm": [([T(2, 6, 5)], {"groups": 3}), ([T(2, 6, 5, 3)], {"groups": 2, "eps": 1e-3})],
    "dropout": [([T(2, 3, 4)], {}), ([T(2, 3, 4)], {"p": 0.1})],
    "relu": [([T(2, 3)], {})],
    "leaky_relu": [([T(2, 3)], {}), ([T(2, 3)], {"slope": 0.2})],
    "gelu": [([T(2, 3)], {}), ([T(2, 3)], {"approximate": "tanh"})],
    "relu6": [([T(2, 3)], {})],
    "hardswish": [([T(2, 3)], {})],
    "hardsigmoid": [([T(2, 3)], {})],
    "clamp": [([T(2, 3)], {"min": 0.0}), ([T(2, 3)], {"max": 1.0}), ([T(2, 3)], {"min": -1.0, "max": 1.0})],
    "sin": [([T(2, 3)], {})],
    "cos": [([T(2, 3)], {})],
    "rsqrt": [([T(2, 3)], {})],
    "randn_like": [([T(2, 3)], {}), ([T(2, 3, 4)], {"seed": 5})],
    "pad": [([T(2, 3, 4)], {"widths": (1, 2)}), ([T(2, 3, 4, 5)], {"widths": (1, 1, 2, 0), "mode": "reflect"}),
            ([T(2, 3, 4)], {"widths": (-1, 1, 0, 2), "value": 1.5}), ([T(2, 3, 4)], {"widths": (2, 2), "mode": "replicate"})],
    "expand": [([T(3, 1)], {"sizes": (2, 3, 4)}), ([T(2, 1, 4)], {"sizes": (-1, 5, -1)})],
    "broadcast_to": [([T(3, 1)], {"sizes": (2, 3, 4)})],
    "repeat": [([T(2, 3)], {"times": (2, 1)}), ([T(2, 3)], {"times": (2, 1, 3)})],
    "rmsnorm": [([T(2, 5, 6)], {}), ([T(2, 6)], {"eps": 1e-5})],
    "rotary": [([T(2, 3, 5, 8)], {}), ([T(2, 5, 4)], {"base": 500.0})],
    "silu": [([T(2, 3)], {})],
    "tanh": [([T(2, 3)], {})],
    "sigmoid": [([T(2, 3)], {})],
    "softmax": [([T(2, 3)], {}), ([T(2, 3)], {"dim": 0})],
    "log_softmax": [([T(2, 3)], {}), ([T(2, 3, 4)], {"dim": 1})],
    "flatten": [([T(2, 3, 4, 5)], {}), ([T(2, 3, 4, 5)], {"start": 0, "end": 2})],
    "index": [([T(2, 3, 4, 5)], {"items": ((None, None, None), 0)}),
              ([T(2, 3, 4, 5)], {"items": ("...", (1, None, 2), "new", -1)}),
              ([T(2, 3, 4)], {"items": (-1, (None, -1, None))})],
    "parameter": [([], {"shape": (2, 3), "init": make_init("normal", (0.02,))}),
                  ([], {"shape": (4,), "init": make_init("full", (0.5,))})],
    "memory_format": [([T(2, 3, 4, 5)], {"format": "channels_last"}), ([T(2, 3)], {})],
    "reshape": [([T(2, 3, 4)], {"shape": (6, 4)}), ([T(2, 3, 4)], {"shape": (-1, 12)}),
                ([T(2, 3, 4)], {"shape": (2, 3, 2, 2)})],
    "transpose": [([T(2, 3, 4)], {"a": 1, "b": 2}), ([T(2, 3, 4)], {"a": -1, "b": 0})],
    "permute": [([T(2, 3, 4)], {"dims": (2, 0, 1)}), ([T(2, 3, 4)], {"dims": (0, -1, 1)})],
    "concat": [([T(2, 3, 4), T(2, 5, 4)], {"dim": 1}), ([T(2, 3, 4), T(2, 3, 1), T(2, 3, 2)], {}),
               ([T(2, 3)], {"dim": 0})],
    "split": [([T(2, 7, 4)], {"sizes": 3, "dim": 1}), ([T(2, 7, 4)], {"sizes": (3, 4), "dim": 1}),
              ([T(2, 7, 4)], {"sizes": (1, 3)})],
    "mean": [([T(2, 3, 4)], {"dim": 1}), ([T(2, 3, 4)], {"dim": (1, 2), "keepdim": True})],
    "sum": [([T(2, 3, 4)], {"dim": -1}), ([T(2, 3, 4, dtype="bool")], {"dim": (0, 2), "keepdim": True})],
    "positions": [([T(2, 5, dtype="int")], {}), ([T(2, 5, 8)], {})],
    "add": [([T(2, 3), T(3)], {}), ([T(2, 3, dtype="int"), T(2, 1)], {})],
    "sub": [([T(2, 3), T(3)], {}), ([T(2, 3, dtype="int"), T(3, dtype="int")], {})],
    "mul": [([T(2, 3), T(2, 1)], {}), ([T(2, 3, dtype="bool"), T(3, dtype="int")], {})],
    "div": [([T(2, 3), T(3)], {}), ([T(2, 3, dtype="int"), T(2, 3, dtype="int")], {})],
    "matmul": [([T(2, 3, 4), T(4, 5)], {}), ([T(4), T(2, 4, 5)], {})],
    "constant": [([], {"value": 2.5}), ([], {"value": 3, "dtype": "int"}), ([], {"value": 1}),
                 ([], {"value": True, "dtype": "bool"})],
    "neg": [([T(2, 3)], {})],
    "abs": [([T(2, 3, dtype="int")], {})],
    "sqrt": [([T(2, 3)], {}), ([T(2, 3, dtype="int")], {})],
    "exp": [([T(2, 3)], {})],
    "log": [([T(2, 3)], {})],
    "fused_elementwise": [([T(2, 3), T(3)], {"steps": (("mul", 0.5), ("add", "x1"), ("sigmoid", None))}),
                          ([T(2, 3, 4)], {"steps": (("neg", None), ("rsub", 1.0), ("abs", None), ("sqrt", None),
                                                    ("rdiv", -2.0), ("leaky_relu", 0.2), ("gelu", None),
                                                    ("silu", None), ("tanh", None), ("exp", None))}),
                          ([T(2, 3), T(2, 3), T(1, 3)], {"steps": (("sub", "x1"), ("relu", None), ("div", "x2"),
                                                                   ("mul", "x0"), ("add", 3.0), ("log", None))})],
    "rnn": [([T(2, 5, 3)], {"hidden": 4}),
            ([T(2, 5, 3), T(4, 2, 4)], {"hidden": 4, "layers": 2, "bidirectional": True,
                                        "nonlinearity": "relu"})],
    "gru": [([T(2, 5, 3)], {"hidden": 4, "layers": 2, "dropout": 0.1}),
            ([T(2, 5, 3), T(1, 2, 4)], {"hidden": 4})],
    "lstm": [([T(2, 5, 3)], {"hidden": 4, "bidirectional": True}),
             ([T(2, 5, 3), T(2, 2, 4), T(2, 2, 4)], {"hidden": 4, "layers": 2})],
    "scan": [([T(2, 5, 3)], {"cell": cell_body(Elman, 1), "hidden": 4}),
             ([T(2, 5, 3)], {"cell": cell_body(LSTMCell, 2), "hidden": 4})],
    "self_attention": [([T(2, 5, 8)], {"heads": 2}),
                       ([T(2, 5, 8)], {"heads": 4, "causal": True, "dropout": 0.1, "bias": False})],
    "cross_attention": [([T(2, 5, 8), T(2, 7, 8)], {"heads": 2})],
    "attention": [([T(2, 5, 4), T(2, 7, 4), T(2, 7, 3)], {}),
                  ([T(2, 5, 4), T(2, 7, 4), T(2, 7, 3), T(5, 7)], {"scale": 0.5}),
                  ([T(2, 5, 4), T(2, 7, 4), T(2, 7, 3), T(5, 7, dtype="bool")], {}),
                  ([T(2, 5, 4), T(2, 5, 4), T(2, 5, 3)], {"causal": True})],
    "positional_encoding": [([T(2, 5, 8)], {})],
}


def lower(name: str, xs: list[TensorType], attrs: dict):
    op = OPS[name]
    a = op.Attrs(**attrs)
    out = op.shape(list(xs), a)
    types = out if isinstance(out, tuple) else (out,)
    inputs = tuple((f"x{i}", 0) for i in range(len(xs)))
    node = Node(name, name, inputs, a, types, None, params=op.params(list(xs), a))
    return node, LOWERINGS[name](node, list(xs))


def render(code: Code, **names: str) -> str:
    """The code as the emitter would write it with every value a literal."""
    return code.template.format(*(repr(v) for _, v in code.values), **names)


def test_every_op_has_a_lowering():
    assert sorted(OPS) == sorted(LOWERINGS)
    assert sorted(OPS) == sorted(CASES)


def test_helpers_are_prelude_pieces():
    for name, cases in CASES.items():
        for xs, attrs in cases:
            assert lower(name, xs, attrs)[1].helpers <= PRELUDE.keys()


@pytest.mark.parametrize("name, xs, attrs", [(n, xs, a) for n, cases in CASES.items() for xs, a in cases],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_lowering(name, xs, attrs):
    """The module's weights are the catalogue's; the expression gives the catalogue's types."""
    torch.manual_seed(0)
    node, low = lower(name, xs, attrs)
    ns = {**PRELUDE_NS, "Elman": Elman, "LSTMCell": LSTMCell, "wte": nn.Embedding(11, 6),
          "self": SimpleNamespace(training=False)}  # randn_like reads the module's mode
    names = {f"x{i}": f"x{i}" for i in range(len(xs))}
    ns.update({f"x{i}": rand(x) for i, x in enumerate(xs)})
    has_module = low.module is not None
    assert has_module == (bool(node.params) or name == "dropout")
    if has_module:
        cell = getattr(node.attrs, "cell", None)
        ns["m"] = eval(render(low.module, cell=cell.name if cell else ""), ns)
        assert_params(node, ns["m"])
        names["m"] = "m"
    expr = render(low.expr, layer="wte", **names)
    ys = unpack(eval(expr, ns), low.unpack, len(node.types))
    got = [(DTYPES[y.dtype], tuple(y.shape)) for y in map(torch.as_tensor, ys)]
    assert got == [(t.dtype, t.shape) for t in node.types], expr


def assert_params(node: Node, module: nn.Module) -> None:
    if isinstance(module, nn.Parameter):  # a param's module is its tensor: its weight named ""
        assert list(node.params) == [""] and node.params[""] == Param(tuple(module.shape))
        return
    sd = module.state_dict()
    buffers = {k for k, _ in module.named_buffers()}
    assert list(node.params) == list(sd)
    for k, p in node.params.items():
        assert p == Param(tuple(sd[k].shape), buffer=k in buffers, dtype=DTYPES[sd[k].dtype])


def unpack(result, pattern: str | None, n: int) -> list:
    """The outputs of one statement ``y0, (y1, y2) = result`` as the emitter would write it."""
    if n == 1:
        return [result]
    names = [f"y{i}" for i in range(n)]
    ns = {"result": result}
    exec(f"{(pattern or ', '.join('{}' for _ in names)).format(*names)} = result", ns)  # noqa: S102
    return [ns[y] for y in names]


# -- templates: one per op configuration, whatever the values -----------------------------------

SAME_TEMPLATE = {
    "conv2d": [([T(2, 3, 9, 9)], {"out": 4, "kernel": 3, "stride": 1, "padding": 1}),
               ([T(2, 8, 9, 9)], {"out": 16, "kernel": 1, "stride": 2, "padding": 0})],
    "linear": [([T(2, 12)], {"out": 7}), ([T(2, 3)], {"out": 2})],
    "maxpool2d": [([T(2, 3, 8, 8)], {"kernel": 2}), ([T(2, 3, 8, 8)], {"kernel": 3})],
    "dropout": [([T(2, 3)], {"p": 0.5}), ([T(2, 3)], {"p": 0.1})],
    "self_attention": [([T(2, 5, 8)], {"heads": 2}), ([T(2, 5, 12)], {"heads": 4})],
    "lstm": [([T(2, 5, 3)], {"hidden": 4}), ([T(2, 5, 8)], {"hidden": 16})],
    "reshape": [([T(2, 3, 4)], {"shape": (6, 4)}), ([T(2, 3, 4)], {"shape": (-1, 3)})],
    "leaky_relu": [([T(2, 3)], {}), ([T(2, 3)], {"slope": 0.2})],
}


@pytest.mark.parametrize("name", sorted(SAME_TEMPLATE))
def test_template_does_not_depend_on_values(name):
    (a, b) = (lower(name, xs, attrs)[1] for xs, attrs in SAME_TEMPLATE[name])
    assert a.expr.template == b.expr.template
    assert (a.module and a.module.template) == (b.module and b.module.template)
    assert a.expr.values != b.expr.values or (a.module and a.module.values != b.module.values)


def test_conv2d_reads_like_torch():
    _, low = lower("conv2d", [T(2, 3, 32, 32)], {"out": 64, "kernel": 3, "padding": 1, "bias": False})
    assert render(low.module) == "nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)"
    assert low.expr.template == "{m}({x0})"


def test_symbolic_sizes_pass_through():
    n = sym("N")
    _, low = lower("reshape", [T(n, 3, 4)], {"shape": (n, -1)})
    assert low.expr.values == (("size0", n), ("size1", -1))
    _, low = lower("split", [T(2, n)], {"sizes": (n - 1, 1)})
    assert [v for _, v in low.expr.values] == [n - 1, 1, -1]


def test_unembed_uses_the_tied_layer():
    _, low = lower("unembed", [T(2, 6)], {"layer": WTE})
    assert low.module is None and "{layer}.weight" in low.expr.template


# -- prelude: Attention -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["self", "cross", "causal"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_attention_equals_multihead_attention(kind, bias, training):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, bias=bias, batch_first=True).train(training)
    att = Attention(8, 2, causal=kind == "causal", bias=bias).train(training)
    att.load_state_dict(mha.state_dict())
    mha.load_state_dict(att.state_dict())
    x, memory = torch.randn(3, 5, 8), torch.randn(3, 7, 8)
    mask = torch.triu(torch.full((5, 5), float("-inf")), 1) if kind == "causal" else None
    kv = memory if kind == "cross" else x
    with torch.set_grad_enabled(training):  # eval without grad takes torch's fast path
        want = mha(x, kv, kv, attn_mask=mask, need_weights=False)[0]
        got = att(x, memory) if kind == "cross" else att(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_attention_weights_match_the_catalogue(bias):
    a = OPS["self_attention"].Attrs(heads=2, bias=bias)
    params = OPS["self_attention"].params([T(2, 5, 8)], a)
    sd = Attention(8, 2, bias=bias).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: p.shape for k, p in params.items()}
    assert list(sd) == list(params)


def test_attention_initialises_like_multihead_attention():
    torch.manual_seed(1)
    want = nn.MultiheadAttention(8, 2, batch_first=True).state_dict()
    torch.manual_seed(1)
    got = Attention(8, 2).state_dict()
    for k in want:
        torch.testing.assert_close(got[k], want[k])


def test_attention_dropout_only_while_training():
    att = Attention(8, 2, dropout=0.5).eval()
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(att(x), att(x))


# -- prelude: scan and positional_encoding ------------------------------------------------------

def test_scan_elman():
    torch.manual_seed(0)
    cell, xs = Elman(), torch.randn(2, 5, 3)
    h, want = torch.zeros(2, 4), []
    for t in range(5):
        h = cell(xs[:, t], h)
        want.append(h)
    torch.testing.assert_close(PRELUDE_NS["scan"](cell, xs, 4, 1), torch.stack(want, dim=1))


def test_scan_two_states_equals_lstm():
    torch.manual_seed(0)
    cell, lstm, xs = LSTMCell(), nn.LSTM(3, 4, batch_first=True), torch.randn(2, 5, 3)
    lstm.load_state_dict({k.replace("cell.", "") + "_l0": v for k, v in cell.state_dict().items()})
    torch.testing.assert_close(PRELUDE_NS["scan"](cell, xs, 4, 2), lstm(xs)[0])


def test_positional_encoding():
    x = torch.randn(2, 6, 10)
    pe = torch.tensor([[math.sin(t / 10000 ** (i / 10)) if i % 2 == 0 else math.cos(t / 10000 ** ((i - 1) / 10))
                        for i in range(10)] for t in range(6)])
    torch.testing.assert_close(PRELUDE_NS["positional_encoding"](x), x + pe, atol=1e-5, rtol=1e-5)
    half = x.to(torch.bfloat16)
    assert PRELUDE_NS["positional_encoding"](half).dtype == torch.bfloat16


def test_prelude_compiles_fullgraph():
    x, cell = torch.randn(2, 5, 8), LSTMCell()
    for fn in (Attention(8, 2, causal=True), PRELUDE_NS["positional_encoding"],
               lambda xs: PRELUDE_NS["scan"](cell, xs[..., :3], 4, 2)):
        torch.compile(fn, backend="eager", fullgraph=True)(x)
    torch.compiler.reset()


def test_prelude_source_order_and_spacing():
    assert prelude_source(set()) == ""
    src = prelude_source({"Attention", "scan"})
    assert src.index("def scan") < src.index("class Attention")
    assert "\n\n\nclass Attention" in src and not src.endswith("\n")


RUFF = shutil.which("ruff", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
assert RUFF, "ruff is not installed (a dev dependency: pip install -e '.[dev]')"


def test_prelude_is_ruff_clean(tmp_path):
    """With ruff's default settings (line length 88), outside the project's configuration."""
    path = tmp_path / "gen.py"
    path.write_text("import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
                    + prelude_source(set(PRELUDE)) + "\n")
    for args in (["check", "--no-cache", "--isolated"], ["format", "--check", "--isolated"]):
        res = subprocess.run([RUFF, *args, str(path)], capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
