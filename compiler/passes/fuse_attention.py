"""Attention written as math becomes one ``attention`` op.

    kt = transpose(k, -2, -1)                    # or (-1, -2); or a permute (below)
    s  = q @ kt
    s  = s / c                                   # or s * c, c * s, or no scaling; c a constant
    s  = s + mask                                # optional; a float mask, either side
    p  = softmax(s, dim=-1)
    y  = p @ v
        ==>   y = attention(q, k, v[, mask], scale=1/c)

only when ``kt``, ``s`` and ``p`` have no other reader, are no result and sit in the block of
``y``; the softmax runs over the last dim; q, k and v have the same batch dims; and the mask
(a float tensor, added) fits the scores. ``kt`` may also be a permute whose last two dims are
swapped: ``fold_reshapes`` writes ``transpose(transpose(h, 1, 2), -2, -1)`` as
``permute(h, 0, 2, 3, 1)``, and then ``k`` is a new ``transpose(h, 1, 2)``.

In torch the op is ``F.scaled_dot_product_attention``: one kernel in place of two matmuls, a
division and a softmax, which never keeps the [T, S] scores of a head. A scale-free
``softmax(q @ kᵀ) @ v`` fuses with ``scale=1.0``. Dropout on the weights is gone by now
(``remove_dropout``): the inference form is what matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from netc.specs.catalogue import get, has_trait

from ..ir import Graph, Node, Ref
from ..shapes import infer_op
from ..types import ShapeError, TensorType
from ._fusion import fresh_id, make, scalar, substitute, why_not_private
from ._util import permutation
from .base import PassContext, PassResult, each_node, register


@dataclass
class Match:
    q: Ref
    k: Ref  # what kᵀ transposes or permutes
    k_order: list[int]  # k = that value with its dims in this order (kᵀ with its last two swapped)
    v: Ref
    mask: Ref | None
    scale: float
    inner: list[Node]  # kᵀ, q @ kᵀ, the scaling, the mask add, the softmax


@register("fuse_attention", level=2,
          purpose="fuse softmax(q @ kᵀ / s [+ mask]) @ v into one scaled-dot-product attention op")
def fuse_attention(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    for y in each_node(g, lambda n: n.op == "matmul"):
        m = match(g, y)
        if m is None:
            continue
        why = why_not_private(g, m.inner, y) or why_not(g, m, y)
        if why is not None:
            result.skip(f"attention written as math at `{y.id}` not fused: {why}", y.span)
            continue
        inputs = (m.q, key(g, m, y), m.v) + ((m.mask,) if m.mask else ())
        # the span: the expression's, not kᵀ's (often a line of its own, or folded into k's)
        node = make(g, fresh_id(g, y.id, "attention"), "attention", inputs,
                    get("attention").Attrs(scale=m.scale, masks=("mask",) if m.mask else ()), y,
                    m.inner[1:] + [y])
        substitute(g, y, node, m.inner)
        result.rewrote(f"softmax(q @ kᵀ{_scale_text(m.scale)}{' + mask' if m.mask else ''}) @ v ending at "
                       f"`{y.id}` ==> attention `{node.id}`", y.span)
    return result


def match(g: Graph, y: Node) -> Match | None:
    """The pieces of ``y = softmax(q @ kᵀ * scale [+ mask]) @ v``, or None when ``y`` is not
    such a matmul."""
    p = g.producer(y.inputs[0])
    if p.op != "softmax" or y.inputs[1] == y.inputs[0]:
        return None
    s = g.producer(p.inputs[0])
    found, mask = scores(g, p.inputs[0]), None
    if found is None and s.op == "add":
        side = next((i for i in (0, 1) if scores(g, s.inputs[i])), None)
        if side is None:
            return None
        found, mask = scores(g, s.inputs[side]), s.inputs[1 - side]
    if found is None:
        return None
    q, k, order, scale, inner = found
    return Match(q, k, order, y.inputs[1], mask, scale, inner + ([s] if mask else []) + [p])


def scores(g: Graph, ref: Ref) -> tuple[Ref, Ref, list[int], float, list[Node]] | None:
    """``(q, k, k_order, scale, nodes)`` when ``ref`` is ``q @ kᵀ``, scaled by a constant or
    not, kᵀ a transpose or permute whose last two dims are k's, swapped; nodes from kᵀ on."""
    n, scaling, scale = g.producer(ref), [], 1.0
    if n.op in ("mul", "div"):
        for i in ((0, 1) if n.op == "mul" else (1,)):
            c = scalar(g, n.inputs[i])
            if c is not None and c != 0:
                scale, scaling = (c if n.op == "mul" else 1 / c), [n]
                n = g.producer(n.inputs[1 - i])
                break
    if n.op != "matmul" or n.inputs[0] == n.inputs[1]:
        return None
    kt = g.producer(n.inputs[1])
    rank = kt.type.rank
    if not has_trait(kt.op, "permute") or rank < 2:
        return None
    order = permutation(kt, rank)
    order[-2:] = order[-1], order[-2]
    return n.inputs[0], kt.inputs[0], order, scale, [kt, n] + scaling


def key(g: Graph, m: Match, y: Node) -> Ref:
    """k: the value kᵀ transposes, or a new transpose or permute of it beside ``y``."""
    if m.k_order == list(range(len(m.k_order))):
        return m.k
    moved = [i for i, j in enumerate(m.k_order) if i != j]
    op = "transpose" if len(moved) == 2 else "permute"
    attrs = get(op).Attrs(a=moved[0], b=moved[1]) if op == "transpose" else get(op).Attrs(dims=tuple(m.k_order))
    inf = infer_op(get(op), [g.type_of(m.k)], attrs)
    node = Node(fresh_id(g, y.id, op), op, (m.k,), attrs, inf.types, m.inner[0].span, y.block)
    g.insert_before(y.id, node)
    return (node.id, 0)


def why_not(g: Graph, m: Match, y: Node) -> str | None:
    """Why a match does not fuse (what SDPA would compute differently), or None."""
    softmax = m.inner[-1]
    rank = softmax.type.rank
    if softmax.attrs.dim % rank != rank - 1:
        return f"the softmax runs over dim {softmax.attrs.dim}, not the last one"
    k0 = g.type_of(m.k)
    q, k, v = g.type_of(m.q), k0.with_shape(k0.shape[i] for i in m.k_order), g.type_of(m.v)
    if any(t.dtype != "float" or t.rank < 2 for t in (q, k, v)):
        return f"needs float q, k, v of at least 2 dims; got {q}, {k}, {v}"
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        return f"q, k and v have different batch dims ({_batch(q)}, {_batch(k)}, {_batch(v)})"
    xs = [q, k, v]
    if m.mask is not None:
        mask = g.type_of(m.mask)
        if mask.dtype != "float":
            return f"the mask is {mask.dtype}: adding it is arithmetic, not masking"
        if g.producer(m.mask).op == "constant":
            return "the added term is a constant, not a mask"
        xs.append(mask)
    try:
        attrs = get("attention").Attrs(scale=m.scale, masks=("mask",) * (len(xs) - 3))
        types = infer_op(get("attention"), xs, attrs).types
    except ShapeError as e:
        return str(e)
    return None if types == y.types else f"attention would give {types[0]}, not {y.type}"


def _batch(t: TensorType) -> str:
    return "[" + ", ".join(str(d) for d in t.shape[:-2]) + "]"


def _scale_text(scale: float) -> str:
    return "" if scale == 1.0 else f" * {scale:g}"
