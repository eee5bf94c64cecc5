"""Dead-code elimination.

    a = relu(x); b = sigmoid(x); return a   ==>   a = relu(x); return a

A node none of whose outputs reach a result is removed (inputs always stay: they are the
model's signature). Unpacked values a spec discards (``seq, _ = x -> lstm(...)``) keep their
node, since another of its outputs is used. A block instance is emitted as a module with a
fixed interface, so while any of its nodes lives, the values it takes and returns live too
(an unused block result is still computed); a block instance none of whose nodes lives goes
whole, its entry in ``graph.blocks`` with it.
"""

from __future__ import annotations

from collections import Counter

from .base import PassContext, PassResult, register


@register("eliminate_dead_code", level=1, purpose="remove nodes whose results are never used")
def eliminate_dead_code(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    live, used = _live(g)
    for path in [p for p, b in g.blocks.items() if b.kind == "block" and p not in used]:
        g.remove_block(path)  # an instance nothing reads: its nodes are dead too
    for n in reversed(g.nodes()):
        if n.id not in live:
            g.remove(n.id)
            result.rewrote(f"removed unused {n.op} `{n.id}`", n.span)
    _drop_empty_stacks(g)
    return result


def _live(g) -> tuple[set[str], set[str]]:
    """The nodes a result needs, and the block instances that hold one of them or give one
    of their results: such an instance keeps its whole interface (its inputs and results
    live), so that its module keeps its signature."""
    live: set[str] = set()
    used: set[str] = set()
    work = [src for _, (src, _p) in g.outputs] + list(g.inputs)
    while work:
        nid = work.pop()
        if nid in live:
            continue
        live.add(nid)
        n = g.node(nid)
        work += [src for src, _ in n.inputs]
        blocks = [b for b in g.interfaces(nid) if any(src == nid for src, _ in b.outputs)] + g.chain(n.block)
        for b in blocks:
            if b.kind == "block" and b.path not in used:
                used.add(b.path)
                work += [src for src, _ in b.outputs] + [src for _, (src, _p) in b.inputs]
    return live, used


def _drop_empty_stacks(g) -> None:
    """Stacks left without copies go (innermost first: an instance is made after the one
    around it)."""
    members = Counter(n.block for n in g.nodes()) + Counter(b.parent for b in g.blocks.values())
    for path in reversed(list(g.blocks)):
        b = g.blocks[path]
        if b.kind == "stack" and not members[path]:
            g.remove_block(path)
            members[b.parent] -= 1
