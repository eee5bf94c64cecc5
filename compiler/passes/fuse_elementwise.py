"""Chains of elementwise ops become one ``fused_elementwise`` node.

    a = x * 0.5
    b = a + y                                    # y: a tensor of a's shape (or one that
    c = sigmoid(b)                               #    broadcasts to it), or a constant
        ==>   c = fused_elementwise(x, y, steps=(("mul", 0.5), ("add", "x1"), ("sigmoid", None)))

A chain is a run of elementwise ops (the catalogue's ``binary_elementwise`` ops, ``add sub
mul div``, with a scalar constant or a tensor operand, and its ``unary_elementwise`` ones,
``neg abs sqrt rsqrt sin cos exp log relu relu6 hardsigmoid hardswish leaky_relu gelu silu tanh
sigmoid``; one with attributes other than one float only where they are all at their defaults:
``gelu`` but not ``gelu(approximate="tanh")``) on float tensors of one
shape, where each link's value is read only by the next op (once) and is no result; the
chain stays inside one block. Chains of one op are left alone. The fused node keeps the id
of the chain's last op. Torch writes it as one expression (``torch.sigmoid(x * 0.5 + y)``);
the NumPy kernel allocates one buffer and runs every later step in place (``out=``).
"""

from __future__ import annotations

from netc.specs.catalogue import get, has_trait

from ..ir import Graph, Node, Ref
from ..types import ShapeError, TensorType
from ._fusion import at_defaults, make, scalar, substitute
from .base import PassContext, PassResult, each_node, register

Step = tuple[str, "str | float | None", "Ref | None"]  # op, operand, the operand's tensor input


@register("fuse_elementwise", level=2,
          purpose="fuse chains of elementwise ops into one fused_elementwise op "
                  "(one torch expression; one NumPy buffer)")
def fuse_elementwise(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    for first in each_node(g):  # afresh: a chain's last op is replaced in place, under its id
        start = start_of(g, first)
        if start is None:
            continue
        chain, steps = [first], [step(g, first, start)]
        while (nxt := link(g, chain[-1], result)) is not None:
            chain.append(nxt)
            steps.append(step(g, nxt, (chain[-2].id, 0)))
        if len(chain) < 2:
            continue
        last = chain[-1]
        inputs, program = operands(start, steps)
        try:
            node = make(g, last.id, "fused_elementwise", inputs, get("fused_elementwise").Attrs(steps=program),
                        last, chain)
        except ShapeError as e:
            result.skip(f"chain {_names(chain)} not fused: {e}", last.span)
            continue
        substitute(g, last, node, chain[:-1])
        result.rewrote(f"{'+'.join(n.op for n in chain)} ({_names(chain)}) ==> fused_elementwise `{last.id}`",
                       last.span)
    return result


def step(g: Graph, n: Node, acc: Ref) -> Step | None:
    """``n`` as one step on the running value ``acc`` (one of its inputs), or None."""
    if len(n.types) != 1 or n.type.dtype != "float" or n.type != g.type_of(acc):
        return None
    if has_trait(n.op, "unary_elementwise"):
        fields = type(n.attrs).model_fields if n.attrs is not None else {}
        if len(fields) == 1 and next(iter(fields.values())).annotation is float:  # leaky_relu's slope
            return (n.op, float(getattr(n.attrs, next(iter(fields)))), None)
        if not fields or at_defaults(n.attrs):  # gelu, but not gelu(approximate="tanh")
            return (n.op, None, None)
        return None
    if not has_trait(n.op, "binary_elementwise") or n.inputs.count(acc) != 1:
        return None
    i = n.inputs.index(acc)
    other = n.inputs[1 - i]
    op = n.op if i == 0 or has_trait(n.op, "commutative") else "r" + n.op  # rsub: other - acc
    c = scalar(g, other)
    if c is not None:
        return (op, c, None)
    if g.producer(other).op == "constant" or not fits(g.type_of(other), n.type):
        return None
    return (op, None, other)


def fits(t: TensorType, out: TensorType) -> bool:
    """A float operand that broadcasts to ``out`` without growing it."""
    if t.dtype != "float" or t.rank > out.rank:
        return False
    return all(a == 1 or a == b for a, b in zip(reversed(t.shape), reversed(out.shape)))


def start_of(g: Graph, n: Node) -> Ref | None:
    """The input a chain starting at ``n`` runs on: one with ``n``'s type, not a constant."""
    for ref in n.inputs:
        if g.producer(ref).op != "constant" and step(g, n, ref) is not None:
            return ref
    return None


def link(g: Graph, n: Node, result: PassResult) -> Node | None:
    """The op that continues the chain after ``n``: its only reader, reading it once as the
    running value; a skip is noted where an elementwise reader cannot take it."""
    users = g.users(n.id)
    readers = [u for u in users if step(g, u, (n.id, 0)) is not None]
    if not readers:
        return None
    nxt = readers[0]
    why = None  # another reader first: a value read twice does not fuse, whatever its scope
    if len(users) > 1:
        why = f"`{n.id}` is also read by `{next(u.id for u in users if u is not nxt)}`"
    elif g.is_exposed(n.id):
        why = f"`{n.id}` is a result of a model or block"
    elif n.block != nxt.block:
        why = f"`{n.id}` and `{nxt.id}` are in different blocks"
    if why:
        result.skip(f"`{n.id}` -> `{nxt.id}` not fused: {why}", nxt.span)
        return None
    return nxt


def operands(start: Ref, steps: list[Step]) -> tuple[tuple[Ref, ...], tuple]:
    """The fused node's inputs (the running value first, each tensor once) and its steps."""
    inputs = [start]
    program = []
    for op, const, ref in steps:
        if ref is not None:
            if ref not in inputs:
                inputs.append(ref)
            program.append((op, f"x{inputs.index(ref)}"))
        else:
            program.append((op, const))
    return tuple(inputs), tuple(program)


def _names(chain: list[Node]) -> str:
    return " -> ".join(f"`{n.id}`" for n in chain)
