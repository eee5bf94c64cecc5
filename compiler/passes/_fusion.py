"""What the fusion passes share: reading scalar constants, checking that a pattern's
intermediates are its own (no other reader, not a result), and putting one node in the
place of the nodes it fuses.
"""

from __future__ import annotations

import math
from functools import reduce

from netc.specs.catalogue import get

from ..ir import Graph, Node, Ref
from ..shapes import infer_op
from ..types import ShapeError


def scalar(g: Graph, ref: Ref) -> float | None:
    """The value of a finite float or int scalar constant, else None."""
    n = g.producer(ref)
    if n.op != "constant" or n.attrs.dtype == "bool" or isinstance(n.attrs.value, bool):
        return None
    v = float(n.attrs.value)
    return v if math.isfinite(v) else None


def exposed(g: Graph) -> set[str]:
    """Nodes a model result or a block interface names: they must stay as they are."""
    out = {src for _, (src, _p) in g.outputs}
    for info in g.scope_info.values():
        out |= {src for src, _p in info.outputs} | {src for _, (src, _p) in info.inputs}
    return out


def container(g: Graph, nid: str) -> str:
    """The innermost block instance or repetition group holding a node (its emitted module)."""
    parts = nid.split(".")
    return next((p for k in range(len(parts) - 1, 0, -1) if (p := ".".join(parts[:k])) in g.scopes), "")


def why_not_private(g: Graph, inner: list[Node], anchor: Node, keep: set[str]) -> str | None:
    """Why the intermediates ``inner`` of a pattern ending at ``anchor`` cannot go (another
    reader, a result, another module), or None when they can."""
    ids = {n.id for n in inner} | {anchor.id}
    where = container(g, anchor.id)
    for n in inner:
        if n.id in keep:
            return f"`{n.id}` is a result of a model or block"
        others = [u.id for u in g.users(n.id) if u.id not in ids]
        if others:
            return f"`{n.id}` is also read by `{others[0]}`"
        if container(g, n.id) != where:
            return f"`{n.id}` and `{anchor.id}` are in different blocks"
    return None


def fresh_id(g: Graph, near: str, base: str) -> str:
    """An unused node id beside ``near`` (in its block): ``base``, ``base_1``, ..."""
    where = container(g, near)
    prefix = where + "." if where else ""
    name, k = base, 0
    while prefix + name in g or prefix + name in g.scopes:
        k += 1
        name = f"{base}_{k}"
    return prefix + name


def make(g: Graph, nid: str, op: str, inputs: tuple[Ref, ...], attrs, like: Node, fused: list[Node]) -> Node:
    """A node of the catalogue op ``op``, typed by its shape rule, in the place (scope) of
    ``like``, spanning every node it fuses. Raises ShapeError when the types differ from
    ``like``'s."""
    inf = infer_op(get(op), [g.type_of(r) for r in inputs], attrs)
    if inf.types != like.types:
        raise ShapeError(f"{op} would give {', '.join(map(str, inf.types))}, not {like.type}")
    spans = [n.span for n in fused if n.span is not None]
    span = reduce(lambda a, b: a.union(b), spans) if spans else like.span
    return Node(nid, op, inputs, attrs, inf.types, span, like.scope, inf.params, None, inf.macs)


def substitute(g: Graph, anchor: Node, node: Node, inner: list[Node]) -> None:
    """Put ``node`` in the place of ``anchor`` (same id: replaced; a new id: inserted before
    it and its readers moved over), then drop the intermediates ``inner`` and the constants
    only they read."""
    if node.id == anchor.id:
        g.replace(node)
    else:
        g.insert_before(anchor.id, node)
        g.replace_uses((anchor.id, 0), (node.id, 0))
        g.remove(anchor.id)
    order = {nid: i for i, nid in enumerate(n.id for n in g.nodes())}
    consts = {src for n in inner for src, _ in n.inputs if g.node(src).op == "constant"}
    consts |= {src for src, _ in anchor.inputs if src in g and g.node(src).op == "constant"}
    for n in sorted(inner, key=lambda n: -order[n.id]):
        g.remove(n.id)
    keep = exposed(g)
    for c in sorted(consts):
        if not list(g.g.successors(c)) and c not in keep:
            g.remove(c)
