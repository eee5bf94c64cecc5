"""Dead-code elimination.

    a = relu(x); b = sigmoid(x); return a   ==>   a = relu(x); return a

A node none of whose outputs reach a result is removed (inputs always stay: they are the
model's signature). Unpacked values a spec discards (``seq, _ = x -> lstm(...)``) keep their
node, since another of its outputs is used. A block instance is emitted as a module with a
fixed interface, so while any of its nodes lives, the values it takes and returns live too
(an unused block result is still computed); a block instance none of whose nodes lives goes
whole, its interface (``graph.scope_info``) with it.
"""

from __future__ import annotations

from . import PassContext, PassResult, register


@register("eliminate_dead_code", level=1, purpose="remove nodes whose results are never used")
def eliminate_dead_code(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    live = {src for _, (src, _p) in g.outputs} | set(g.inputs)
    open_scopes = dict(g.scope_info)  # block instances not yet known to live
    while True:
        for n in reversed(g.nodes()):
            if n.id in live:
                live.update(src for src, _ in n.inputs)
        grown = False
        for path, info in list(open_scopes.items()):
            if any(nid.startswith(path + ".") for nid in live):
                del open_scopes[path]
                refs = {src for src, _p in info.outputs} | {src for _, (src, _p) in info.inputs}
                grown |= not refs <= live
                live |= refs
        if not grown:
            break
    for n in reversed(g.nodes()):
        if n.id not in live:
            g.remove(n.id)
            result.rewrote(f"removed unused {n.op} `{n.id}`", n.span)
    for path in open_scopes:  # no node of theirs is left
        del g.scope_info[path]
        g.scopes.pop(path, None)
    return result
