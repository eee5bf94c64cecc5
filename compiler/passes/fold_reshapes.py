"""Folding of consecutive reshapes and of consecutive transposes.

    y = reshape(flatten(x), N, 4, 2)                            ==>   y = reshape(x, N, 4, 2)
    y = flatten(flatten(x, 2), 1)                               ==>   y = flatten(x, 1)
    y = flatten(reshape(x, N, 6, 4))            x: [N, 2, 3, 4] ==>   y = flatten(x)
    y = flatten(reshape(x, N, 2, 3, 4), 2)      x: [N, 24]      ==>   y = reshape(x, -1, 2, 12)
    y = permute(transpose(x, 1, 2), 0, 3, 1, 2)                 ==>   y = permute(x, 0, 3, 2, 1)
    y = transpose(permute(x, 0, 2, 1), 1, 2)                    ==>   readers of y read x

The outer node of a reshape/flatten chain (or of a transpose/permute chain) reads the
chain's input instead; it keeps its id and becomes one reshape, flatten or permute, or
goes when the whole chain is the identity (a flatten of a reshape becomes a flatten where
one does it). The inner node goes when nothing else reads it.
A chain is folded only where its input is visible from the outer node (the same block, or
one of its inputs), and a flatten of a reshape only where at most one output size is
symbolic (it becomes ``-1``).
"""

from __future__ import annotations

from netc.specs.catalogue import get, has_trait

from .. import records
from ..dims import Expr
from ..ir import IRError
from ..shapes import infer_op
from ..types import normalize_axis
from ._util import bypass, drop_if_unused, moves_nothing, permutation, union, visible
from .base import PassContext, PassResult, each_node, register


@register("fold_reshapes", level=1, purpose="fold chains of reshapes, and of transposes, into one op")
def fold_reshapes(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    for n in each_node(g):
        inner = g.producer(n.inputs[0]) if n.inputs else None
        kind = "reshape" if has_trait(n.op, "reshape") else "permute" if has_trait(n.op, "permute") else None
        if inner is None or kind is None or not has_trait(inner.op, kind):  # a chain of one trait
            continue
        src = inner.inputs[0]
        chain = f"{inner.op} `{inner.id}` -> {n.op} `{n.id}`"
        if not visible(g, src, n.id):
            result.skip(f"kept {chain}: the input of `{inner.id}` is not visible in the block of `{n.id}`",
                        n.span)
            continue
        x = g.type_of(src)
        if kind == "reshape" and n.type == x or kind == "permute" and moves_nothing(_composed(n, inner, x), x):
            bypass(g, n, [src])
            gone = drop_if_unused(g, inner.id)
            result.rewrote(f"removed {chain}: together they are the identity"
                           + ("" if gone else f" (`{inner.id}` stays for its other readers)"), n.span)
            continue
        folded = _reshape(n, inner, x) if kind == "reshape" else _permute(n, inner, x)
        if isinstance(folded, str):
            result.skip(f"kept {chain}: {folded}", n.span)
            continue
        op, attrs = folded
        types = infer_op(get(op), [x], attrs).types
        if types != n.types:
            raise IRError(f"{n.id}: folding {chain} gives {types}, not {n.types}")
        g.replace(records.replace(n, op=op, attrs=attrs, inputs=(src,), span=union(inner.span, n.span)))
        gone = drop_if_unused(g, inner.id)
        result.rewrote(f"folded {chain} into one {op}"
                       + ("" if gone else f" (`{inner.id}` stays for its other readers)"), n.span)
    return result


def _reshape(n, inner, x):
    """(op, attrs) of one node doing ``n`` after ``inner`` on ``x``, or why not."""
    if n.op == "reshape":
        return "reshape", n.attrs  # a reshape depends only on the number of elements
    if n.op == inner.op == "flatten":
        y = inner.type.rank
        s1, e1 = normalize_axis(inner.attrs.start, x.rank), normalize_axis(inner.attrs.end, x.rank)
        s2, e2 = normalize_axis(n.attrs.start, y), normalize_axis(n.attrs.end, y)
        span = e1 - s1  # how many more dims x has than inner's result
        back = [(i, i) if i < s1 else (s1, e1) if i == s1 else (i + span, i + span) for i in range(y)]
        return "flatten", _flatten(back[s2][0], back[e2][1], x)
    out = n.type.shape
    for start in range(len(out) if x.rank >= len(out) else 0):  # a flatten where one does it
        end = start + x.rank - len(out)
        if x.shape[:start] == out[:start] and x.shape[end + 1:] == out[start + 1:]:
            return "flatten", _flatten(start, end, x)
    dims = list(out)
    symbolic = [i for i, d in enumerate(dims) if isinstance(d, Expr)]
    if len(symbolic) > 1:
        return f"{n.type.shape_str()} has more than one symbolic size"
    for i in symbolic:
        dims[i] = -1
    return "reshape", get("reshape").Attrs(shape=tuple(dims))


def _flatten(start: int, end: int, x):
    """flatten's attributes, ``end`` written -1 when it is the last dim (the default)."""
    return get("flatten").Attrs(start=start, end=-1 if end == x.rank - 1 else end)


def _composed(n, inner, x) -> tuple[int, ...]:
    """Output dim i of ``n`` after ``inner`` is dim ``order[i]`` of ``x``."""
    first = permutation(inner, x.rank)
    return tuple(first[i] for i in permutation(n, x.rank))


def _permute(n, inner, x):
    return "permute", get("permute").Attrs(dims=_composed(n, inner, x))
