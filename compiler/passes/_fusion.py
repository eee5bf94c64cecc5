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


def at_defaults(attrs) -> bool:
    """Whether every attribute of ``attrs`` has its schema's default value (a fused step or
    activation written by name alone, ``("gelu", None)``, runs the op at its defaults)."""
    if attrs is None:
        return True
    fields = type(attrs).model_fields.items()
    return all(not f.is_required() and getattr(attrs, k) == f.default for k, f in fields)


def why_not_private(g: Graph, inner: list[Node], anchor: Node) -> str | None:
    """Why the intermediates ``inner`` of a pattern ending at ``anchor`` cannot go (another
    reader, a result, another module), or None when they can."""
    ids = {n.id for n in inner} | {anchor.id}
    for n in inner:
        others = [u.id for u in g.users(n.id) if u.id not in ids]
        if others:
            return f"`{n.id}` is also read by `{others[0]}`"
        if g.is_exposed(n.id):
            return f"`{n.id}` is a result of a model or block"
        if n.block != anchor.block:
            return f"`{n.id}` and `{anchor.id}` are in different blocks"
    return None


def fresh_id(g: Graph, near: str, base: str) -> str:
    """An unused node id beside ``near`` (in its block or stack): ``base``, ``base_1``, ..."""
    where = g.node(near).block
    prefix = where + "." if where else ""
    name, k = base, 0
    while prefix + name in g or prefix + name in g.blocks:
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
    return Node(nid, op, inputs, attrs, inf.types, span, like.block, inf.params, None, inf.macs, like.index,
                like.names)


def substitute(g: Graph, anchor: Node, node: Node, inner: list[Node]) -> None:
    """Put ``node`` in the place of ``anchor`` (same id: replaced; a new id: inserted before
    it and its readers moved over), then drop the intermediates ``inner`` (in the order they
    compute) and the constants only they read."""
    if node.id == anchor.id:
        g.replace(node)
    else:
        g.insert_before(anchor.id, node)
        g.replace_uses((anchor.id, 0), (node.id, 0))
        g.remove(anchor.id)
    consts = {src for n in inner for src, _ in n.inputs if g.node(src).op == "constant"}
    consts |= {src for src, _ in anchor.inputs if src in g and g.node(src).op == "constant"}
    pending = list(inner)
    while pending:  # readers first: the last unread one each time (patterns are a few nodes)
        n = next(n for n in reversed(pending) if not g.has_users(n.id))
        pending.remove(n)
        g.remove(n.id)
    for c in sorted(consts):
        if not g.has_users(c) and not g.is_exposed(c):
            g.remove(c)
