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
chain stays inside one block, but for an activation after a block's result that only it
reads: it ends the chain, as that block instance's epilogue (``_epilogue``; the fused node
stays in the block, under the id of the chain's last op there). Chains of one op are left alone. The fused node keeps the id
of the chain's last op. Torch writes it as one expression (``torch.sigmoid(x * 0.5 + y)``);
the NumPy kernel allocates one buffer and runs every later step in place (``out=``).
"""

from __future__ import annotations

from netc.specs.catalogue import get, has_trait

from ..ir import BlockInstance, Graph, Node, Ref
from ..types import ShapeError, TensorType
from ._epilogue import add_epilogue, shared_modules, where, why_not_across
from ._fusion import at_defaults, make, scalar, substitute
from .base import PassContext, PassResult, each_node, register

Step = tuple[str, "str | float | None", "Ref | None"]  # op, operand, the operand's tensor input


@register("fuse_elementwise", level=2,
          purpose="fuse chains of elementwise ops into one fused_elementwise op "
                  "(one torch expression; one NumPy buffer)")
def fuse_elementwise(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    shared = shared_modules(g)
    for first in each_node(g):  # afresh: a chain's last op is replaced in place, under its id
        start = start_of(g, first)
        if start is None:
            continue
        chain, steps, blocks = [first], [step(g, first, start)], []
        while not blocks and (nxt := link(g, chain, start, result, shared)) is not None:
            nxt, blocks = nxt
            chain.append(nxt)
            steps.append(step(g, nxt, (chain[-2].id, 0)))
        if len(chain) < 2:
            continue
        # across a block's result, the fused node stays in the block, under the id of the chain's
        # last op there; the activation after it is that instance's epilogue
        last = chain[-2] if blocks else chain[-1]
        inputs, program = operands(start, steps)
        try:
            node = make(g, last.id, "fused_elementwise", inputs, get("fused_elementwise").Attrs(steps=program),
                        last, chain[:-1] if blocks else chain)
        except ShapeError as e:
            result.skip(f"chain {_names(chain)} not fused: {e}", last.span)
            continue
        if blocks:
            act = chain[-1]
            g.replace_uses((act.id, 0), (last.id, 0))
            g.remove(act.id)
            add_epilogue(g, blocks, (last.id, 0), act.op, steps[-1][1])
        substitute(g, last, node, chain[:-2] if blocks else chain[:-1])
        across = f" {where(blocks)}" if blocks else ""
        result.rewrote(f"{'+'.join(n.op for n in chain)} ({_names(chain)}) ==> fused_elementwise `{last.id}`"
                       f"{across}", chain[-1].span)
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


def link(g: Graph, chain: list[Node], start: Ref, result: PassResult,
         shared: set[str]) -> tuple[Node, list[BlockInstance]] | None:
    """The op that continues the chain after its last op ``n``: its only reader, reading it
    once as the running value, and the block instances whose result ``n`` is, where that
    reader is outside them (it ends the chain there, an epilogue of theirs); a skip is noted
    where an elementwise reader cannot take it."""
    n = chain[-1]
    users = g.users(n.id)
    readers = [u for u in users if step(g, u, (n.id, 0)) is not None]
    if not readers:
        return None
    nxt = readers[0]
    why, blocks = None, []  # another reader first: a value read twice does not fuse, whatever its scope
    if len(users) > 1:
        why = f"`{n.id}` is also read by `{next(u.id for u in users if u is not nxt)}`"
    elif any(r[0] == n.id for _, r in g.outputs):
        why = f"`{n.id}` is a result of the model"
    elif g.block_of(n.id) != g.block_of(nxt.id):
        blocks, why = why_not_across(g, n, nxt, shared)
        if not why:
            why = why_no_epilogue(g, chain, start, nxt)
    elif g.is_exposed(n.id):  # (a result of a stack of copies, read in the same block)
        why = f"`{n.id}` is a result of `{g.interfaces(n.id)[0].path}`"
    elif n.block != nxt.block:
        why = f"`{n.id}` and `{nxt.id}` are in different stacks"
    if why:
        result.skip(f"`{n.id}` -> `{nxt.id}` not fused: {why}", nxt.span)
        return None
    return nxt, blocks


def why_no_epilogue(g: Graph, chain: list[Node], start: Ref, act: Node) -> str | None:
    """Why ``act``, outside the block whose result the chain's last op is, cannot end the
    chain as that instance's epilogue: it is no activation (an epilogue is one activation, a
    constructor argument of the block's class in torch), or the chain is one op that the
    fused node would not write as the block's other instances do (with a constant operand,
    or its running value second)."""
    if not has_trait(act.op, "activation"):
        return f"`{chain[-1].id}` is a block's result, and only an activation after it joins its chain ({act.op} is not one)"
    n = chain[0]
    if len(chain) == 1 and has_trait(n.op, "binary_elementwise") and (
            n.inputs[0] != start or scalar(g, n.inputs[1]) is not None or g.producer(n.inputs[1]).op == "constant"):
        return (f"`{n.id}` is a block's result and one {n.op} with a constant or its running value second, "
                f"which the block's other instances write as it is")
    return None


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
