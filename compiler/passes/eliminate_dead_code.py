"""Dead-code elimination.

    a = relu(x); b = sigmoid(x); return a   ==>   a = relu(x); return a

A node none of whose outputs reach a result is removed (inputs always stay: they are the
model's signature). Unpacked values a spec discards (``seq, _ = x -> lstm(...)``) keep their
node, since another of its outputs is used.
"""

from __future__ import annotations

from . import PassContext, PassResult, register


@register("eliminate_dead_code", level=1, purpose="remove nodes whose results are never used")
def eliminate_dead_code(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    live = {src for _, (src, _p) in g.outputs} | set(g.inputs)
    for n in reversed(g.nodes()):
        if n.id in live:
            live.update(src for src, _ in n.inputs)
    for n in reversed(g.nodes()):
        if n.id not in live:
            g.remove(n.id)
            result.rewrote(f"removed unused {n.op} `{n.id}`", n.span)
    return result
