"""Removal of data movement that moves nothing.

    y = reshape(x, N, 8)          x: [N, 8]    ==>   readers of y read x
    y = flatten(x)                x: [N, 8]    ==>   readers of y read x
    y = transpose(x, 1, 1)                     ==>   readers of y read x
    y = permute(x, 0, 1, 2)                    ==>   readers of y read x
    y = transpose(transpose(x, 1, 2), 1, 2)    ==>   readers of y read x
    y = dropout(x, p=0)                        ==>   readers of y read x

A reshape or flatten whose result has its input's shape, a transpose or permute that moves
only dims of size 1, and a dropout that drops nothing are the identity. A transpose of the
same transpose cancels; the inner one stays while something else reads it. The last rewrite
needs the inner transpose's input visible where the outer one is (the same block, or one of
its inputs).
"""

from __future__ import annotations

from netc.specs.catalogue import has_trait

from ._util import bypass, drop_if_unused, moves_nothing, permutation, visible
from .base import PassContext, PassResult, each_node, register


@register("remove_noops", level=1,
          purpose="remove reshapes, transposes and permutes that move nothing, and dropout(p=0)")
def remove_noops(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    for n in each_node(g):
        x = g.type_of(n.inputs[0]) if n.inputs else None
        if has_trait(n.op, "reshape"):
            if n.type == x:
                bypass(g, n, [n.inputs[0]])
                result.rewrote(f"removed {n.op} `{n.id}`: it keeps the shape {x.shape_str()}", n.span)
            else:
                result.skip(f"kept {n.op} `{n.id}`: it changes the shape {x.shape_str()} -> "
                            f"{n.type.shape_str()}", n.span)
        elif n.op == "dropout":
            if n.attrs.p == 0:
                bypass(g, n, [n.inputs[0]])
                result.rewrote(f"removed dropout `{n.id}`: p=0 drops nothing", n.span)
        elif has_trait(n.op, "permute"):
            order = permutation(n, x.rank)
            if moves_nothing(order, x):
                bypass(g, n, [n.inputs[0]])
                result.rewrote(f"removed {n.op} `{n.id}`: it moves only dims of size 1 (or none)", n.span)
            elif not _cancel(g, n, result):
                moved = [i for i, j in enumerate(order) if i != j]
                how = f"swaps dims {moved[0]} and {moved[1]}" if n.op == "transpose" else \
                    f"reorders the dims as {tuple(order)}"
                result.skip(f"kept {n.op} `{n.id}`: it {how} of {x.shape_str()}", n.span)
    return result


def _cancel(g, n, result: PassResult) -> bool:
    """transpose(a, b) of transpose(a, b): readers of the outer read the inner's input."""
    inner = g.producer(n.inputs[0])
    if n.op != "transpose" or inner.op != "transpose":
        return False
    rank = g.type_of(inner.inputs[0]).rank
    if permutation(inner, rank) != permutation(n, rank):
        return False
    if not visible(g, inner.inputs[0], n.id):
        result.skip(f"kept transpose `{n.id}`: it undoes `{inner.id}`, whose input is not visible "
                    "in its block", n.span)
        return True
    bypass(g, n, [inner.inputs[0]])
    gone = drop_if_unused(g, inner.id)
    result.rewrote(f"removed transpose `{n.id}`: it undoes transpose `{inner.id}`"
                   + (", also removed" if gone else ", which stays for its other readers"), n.span)
    return True
