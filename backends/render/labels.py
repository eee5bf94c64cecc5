"""The words in a diagram: an op's key attributes, folded constants, counts.

A label says what a person would say about a layer, in the spec's own order and no more:
``conv2d 64, 3×3, s2``, ``linear 128``, ``self_attention 12 heads, causal``, ``mul ×0.5``.
Defaults (padding, eps, bias) are left out; the edges carry the shapes.
"""

from __future__ import annotations

from collections.abc import Callable

from netc.compiler.ir import Graph, Node
from netc.specs import catalogue

_DETAILS: dict[str, Callable] = {}


def detail(*ops: str):
    """Register the key-attribute text of one or more ops."""

    def deco(fn):
        for op in ops:
            _DETAILS[op] = fn
        return fn

    return deco


def op_detail(node: Node, graph: Graph) -> str:
    """Everything after the op's name in its box: key attributes, or folded constants."""
    consts = _const_inputs(node, graph)
    if consts:
        return _const_detail(node, consts)
    if node.attrs is None:
        return ""
    fn = _DETAILS.get(node.op)
    return fn(node.attrs) if fn else _generic(node.attrs)


def op_title(node: Node) -> str:
    """The op's name in its box; a layer with a fused activation (-O2) reads ``conv2d+relu``."""
    activation = getattr(node.attrs, "activation", None)
    return f"{node.op}+{activation}" if activation else node.op


def count(n: int) -> str:
    """A parameter count for a box: 9,408 / 18.5K / 38.6M / 124M."""
    if n < 10_000:
        return f"{n:,}"
    for div, unit in ((10**3, "K"), (10**6, "M"), (10**9, "B")):
        x = float(f"{n / div:.3g}")
        if x < 1000 or unit == "B":
            return f"{x:g}{unit}"
    raise AssertionError("unreachable")


def num(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return ", ".join(num(x) for x in v)
    return str(v)


def _hw(v) -> str:
    """A 2-d kernel or size: 3 -> 3×3, (3, 5) -> 3×5."""
    h, w = (v, v) if isinstance(v, int) else v
    return f"{h}×{w}"


def _step(prefix: str, v, default=1) -> list[str]:
    """``s2`` for a stride of 2 (or (2, 2)), nothing for the default."""
    if v is None or v == default or v == (default, default):
        return []
    if isinstance(v, tuple):
        return [prefix + (str(v[0]) if len(set(v)) == 1 else "×".join(map(str, v)))]
    return [f"{prefix}{v}"]


def _join(parts: list) -> str:
    return ", ".join(str(p) for p in parts if p != "")


# -- per-op key attributes -------------------------------------------------------------------
@detail("conv2d")
def _conv2d(a) -> str:
    return _join([a.out, _hw(a.kernel), *_step("s", a.stride), *_step("d", a.dilation),
                  *_step("g", a.groups)])


@detail("conv1d")
def _conv1d(a) -> str:
    return _join([a.out, f"k{a.kernel}", *_step("s", a.stride), *_step("d", a.dilation),
                  *_step("g", a.groups)])


@detail("conv_transpose2d")
def _conv_transpose2d(a) -> str:
    return _join([a.out, _hw(a.kernel), *_step("s", a.stride)])


@detail("linear")
def _linear(a) -> str:
    return str(a.out)


@detail("embedding")
def _embedding(a) -> str:
    return f"{a.num}, {a.dim}"


@detail("unembed")
def _unembed(a) -> str:
    return f"tied to {a.layer.scope}"


@detail("maxpool2d", "avgpool2d")
def _pool2d(a) -> str:
    stride = [] if a.stride is None or a.stride == a.kernel else _step("s", a.stride)
    return _join([_hw(a.kernel), *stride])


@detail("maxpool1d", "avgpool1d")
def _pool1d(a) -> str:
    stride = [] if a.stride is None or a.stride == a.kernel else _step("s", a.stride)
    return _join([f"k{a.kernel}", *stride])


@detail("adaptive_avgpool2d")
def _adaptive(a) -> str:
    return _hw(a.size)


@detail("upsample")
def _upsample(a) -> str:
    return _join([f"×{num(a.scale)}", "" if a.mode == "nearest" else a.mode])


@detail("batchnorm", "layernorm")
def _norm(a) -> str:
    dims = getattr(a, "dims", 1)
    return _join(["" if dims == 1 else f"last {dims} dims", "" if getattr(a, "affine", True) else "no affine"])


@detail("fused_elementwise")
def _fused(a) -> str:
    """The chain, as the summary shows it: ``mul+add+sigmoid``."""
    return catalogue.get("fused_elementwise").chain(a)


@detail("groupnorm")
def _groupnorm(a) -> str:
    return f"{a.groups} groups"


@detail("dropout")
def _dropout(a) -> str:
    return num(a.p)


@detail("leaky_relu")
def _leaky(a) -> str:
    return num(a.slope)


@detail("softmax", "log_softmax", "concat")
def _dim(a) -> str:
    return "" if a.dim == -1 else f"dim {a.dim}"


@detail("self_attention", "cross_attention")
def _mha(a) -> str:
    return _join([f"{a.heads} heads", "causal" if a.causal else ""])


@detail("attention")
def _attention(a) -> str:
    return "causal" if a.causal else ""


@detail("lstm", "gru", "rnn")
def _recurrent(a) -> str:
    act = getattr(a, "nonlinearity", "tanh")
    return _join([a.hidden, f"{a.layers} layers" if a.layers > 1 else "",
                  "bidirectional" if a.bidirectional else "", "" if act == "tanh" else act])


@detail("scan")
def _scan(a) -> str:
    return f"{a.cell.name}, {a.hidden}"


@detail("mean", "sum")
def _reduce(a) -> str:
    return _join([f"dim {num(a.dim)}", "keepdim" if a.keepdim else ""])


@detail("permute")
def _permute(a) -> str:
    return num(a.dims)


@detail("transpose")
def _transpose(a) -> str:
    return f"{a.a}, {a.b}"


@detail("split")
def _split(a) -> str:
    sizes = ", ".join(str(s) for s in a.sizes) if isinstance(a.sizes, tuple) else str(a.sizes)
    return _join([sizes, "" if a.dim == -1 else f"dim {a.dim}"])


@detail("reshape")
def _reshape(a) -> str:
    return ""  # the outgoing edge shows the new shape


def _generic(attrs) -> str:
    """Attributes that differ from their defaults, for ops without a rule above."""
    fields = type(attrs).model_fields
    items = [f"{k}={num(getattr(attrs, k))}" for k, f in fields.items()
             if getattr(attrs, k) != f.default]
    text = ", ".join(items)
    return text if len(text) <= 32 else text[:31] + "…"


# -- constants folded into their user ---------------------------------------------------------
_SYMBOL = {"add": "+", "sub": "−", "mul": "×", "div": "÷"}


def _const_inputs(node: Node, graph: Graph) -> dict[int, str]:
    """Input position -> the constant's value as text, for inputs made by ``constant``."""
    out = {}
    for i, ref in enumerate(node.inputs):
        src = graph.producer(ref)
        if src.op == "constant":
            out[i] = num(src.attrs.value)
    return out


def _const_detail(node: Node, consts: dict[int, str]) -> str:
    """``mul ×0.5``, ``sub 1 − ·``; other ops read as a call with ``·`` for the tensors."""
    sym = _SYMBOL.get(node.op)
    if sym and len(node.inputs) == 2 and len(consts) == 1:
        if 1 in consts:
            return f"{sym}{consts[1]}"
        if catalogue.has_trait(node.op, "commutative"):
            return f"{sym}{consts[0]}"
        return f"{consts[0]} {sym} ·"
    return "(" + ", ".join(consts.get(i, "·") for i in range(len(node.inputs))) + ")"


def informative_name(node: Node) -> str | None:
    """The name the spec gave the node: the values it computes (``c = ...``; ``i, f, g, o``
    for a split), else its own (``skip``, ``wte``), not ``conv2d_1``."""
    values = [v for v in node.names if v]
    if values:
        return ", ".join(values)
    name = node.name
    base, _, suffix = name.rpartition("_")
    if name == node.op or (base == node.op and suffix.isdigit()):
        return None
    return name
