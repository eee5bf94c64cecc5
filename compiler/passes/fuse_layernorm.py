"""Layer-norm math written by hand becomes one ``layernorm`` op without weights.

    m = mean(x, -1, keepdim=true)
    d = x - m
    v = mean(d * d, -1, keepdim=true)
    y = d / sqrt(v + eps)                        # eps a constant > 0, either side of +
        ==>   y = layernorm(x, eps=eps, affine=false)

``x - m`` may be written once or three times (``(x - m) / sqrt(mean((x - m) * (x - m)) +
eps)``, each ``mean(x)`` its own node or one, as common-subexpression elimination left
them); the means may run over the last k dims (``dims=k``). Only when every intermediate
(the means, the differences, the square, the variance, ``v + eps``, the root) has no reader
outside the pattern and is no result. A following ``* g + b`` stays as it is (the language
has no free parameters to make weights of; ``fuse_elementwise`` fuses it).
"""

from __future__ import annotations

from netc.specs.catalogue import get

from ..ir import Graph, Node, Ref
from ..types import ShapeError
from ._fusion import fresh_id, make, scalar, substitute, why_not_private
from .base import PassContext, PassResult, each_node, register


@register("fuse_layernorm", level=2,
          purpose="fuse (x - mean) / sqrt(var + eps) written as math into one layernorm op")
def fuse_layernorm(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    for y in each_node(g, lambda n: n.op == "div"):
        found = match(g, y)
        if found is None:
            continue
        x, eps, dims, inner = found
        why = why_not_private(g, inner, y) or why_not(g, x, eps)
        if why is None:
            attrs = get("layernorm").Attrs(dims=dims, eps=eps, affine=False)
            try:
                node = make(g, fresh_id(g, y.id, "layernorm"), "layernorm", (x,), attrs, y, inner + [y])
            except ShapeError as e:
                why = str(e)
        if why is not None:
            result.skip(f"layer-norm math at `{y.id}` not fused: {why}", y.span)
            continue
        substitute(g, y, node, inner)
        result.rewrote(f"(x - mean) / sqrt(var + {eps:g}) ending at `{y.id}` ==> layernorm `{node.id}`"
                       f"{f' over the last {dims} dims' if dims > 1 else ''}", y.span)
    return result


def match(g: Graph, y: Node) -> tuple[Ref, float | None, int, list[Node]] | None:
    """``(x, eps, dims, intermediates)`` when ``y`` is ``(x - m) / sqrt(mean((x - m) *
    (x - m)) + eps)`` with every ``m`` a keepdim mean of ``x`` over the variance's dims;
    eps None when the added term is not a constant."""
    root = g.producer(y.inputs[1])
    if root.op != "sqrt" or g.producer(root.inputs[0]).op != "add":
        return None
    plus = g.producer(root.inputs[0])
    side = next((i for i in (0, 1) if g.producer(plus.inputs[i]).op == "mean"), None)
    if side is None:
        return None
    var = g.producer(plus.inputs[side])
    square = g.producer(var.inputs[0])
    dims = trailing(g, var)
    if square.op != "mul" or dims is None:
        return None
    diffs = [g.producer(r) for r in (*square.inputs, y.inputs[0])]
    centred = [centring(g, d, var) for d in diffs]
    if any(c is None for c in centred) or len({x for x, _ in centred}) != 1:
        return None
    inner = {n.id: n for n in [root, plus, var, square, *diffs] + [m for _, m in centred]}
    return centred[0][0], scalar(g, plus.inputs[1 - side]), dims, list(inner.values())


def trailing(g: Graph, mean: Node) -> int | None:
    """k when ``mean`` keeps its dims and reduces the last k of them, else None."""
    rank = g.type_of(mean.inputs[0]).rank
    dims = mean.attrs.dim if isinstance(mean.attrs.dim, tuple) else (mean.attrs.dim,)
    axes = {d % rank for d in dims} if rank else set()
    k = len(axes)
    if not mean.attrs.keepdim or not k or axes != set(range(rank - k, rank)):
        return None
    return k


def centring(g: Graph, d: Node, var: Node) -> tuple[Ref, Node] | None:
    """``(x, m)`` when ``d`` is ``x - m`` and ``m`` a mean of ``x`` like ``var``."""
    if d.op != "sub":
        return None
    m = g.producer(d.inputs[1])
    if m.op != "mean" or m.inputs[0] != d.inputs[0] or trailing(g, m) != trailing(g, var):
        return None
    return d.inputs[0], m


def why_not(g: Graph, x: Ref, eps: float | None) -> str | None:
    if eps is None or eps <= 0:
        return "the term added to the variance is not a constant eps > 0"
    if g.type_of(x).dtype != "float":
        return f"x is {g.type_of(x)}, not float"
    return None
