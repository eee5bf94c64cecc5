"""Common-subexpression elimination.

    a = relu(x); b = relu(x); y = a + b   ==>   a = relu(x); y = a + a

Two nodes with the same op, the same inputs and equal attributes compute the same value:
the later one goes and its readers read the first. Never merged: nodes with weights (two
``linear(8)`` on one input are two layers, and a shared layer is applied where the spec
says), random ones (dropout draws a fresh mask each time) and stateful ones. Both nodes must
be in one block, since a block's module sees only its own values and inputs; literals are
visible everywhere, so equal constants merge across blocks.
"""

from __future__ import annotations

from netc.specs.catalogue import CellBody, LayerRef, get

from ._util import bypass
from .base import PassContext, PassResult, each_node, register


@register("eliminate_common_subexpressions", level=1, purpose="merge nodes that compute the same value")
def eliminate_common_subexpressions(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    seen: dict[tuple, list] = {}  # (op, inputs) -> the kept nodes with them
    for n in each_node(g):  # read afresh: an earlier merge may have rewritten its inputs
        if n.op == "input":
            continue
        twins = [t for t in seen.setdefault((n.op, n.inputs), []) if t.attrs == n.attrs]
        why = [_distinct(g, t, n) for t in twins]
        if None in why:
            twin = twins[why.index(None)]
            bypass(g, n, [(twin.id, port) for port in range(len(n.types))])
            result.rewrote(f"merged {n.op} `{n.id}` into `{twin.id}`", n.span)
            continue
        if twins:
            result.skip(f"kept {n.op} `{n.id}`: same op and inputs as `{twins[0].id}`, but {why[0]}", n.span)
        seen[(n.op, n.inputs)].append(n)
    return result


def _distinct(g, a, b) -> str | None:
    """Why ``a`` and ``b`` must stay two nodes, or None."""
    traits = get(a.op).traits
    if a.params or b.params or a.layer or b.layer or "has_weights" in traits:
        return "it has weights (a layer of its own)"
    if any(isinstance(v, (LayerRef, CellBody)) for v in dict(a.attrs or {}).values()):
        return "it applies a layer's weights"
    if "random" in traits:
        return f"{a.op} is random"
    if "stateful" in traits:
        return f"{a.op} has state"
    if a.op != "constant" and g.block_of(a.id) != g.block_of(b.id):
        return "they are in different blocks"
    return None
