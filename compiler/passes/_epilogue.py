"""Fusing across a block's result: the activation after a block becomes an *epilogue* of
that block instance.

    block ConvBN(x) { return x -> conv2d(...) -> batchnorm }     # folded: conv2d with a bias
    block Basic(x)  { y = x -> ConvBN(out) -> relu -> ... }

The relu in ``Basic`` reads the result of one ``ConvBN`` instance and nothing else does, so
the convolution can apply it (``activation="relu"``), as inside a block. But only some
``ConvBN`` instances are followed by a relu: the fused activation is a property of the
*instance*, recorded in ``BlockInstance.epilogue`` (position of the result, op, slope) of each
instance whose result the value is, from the innermost out to the reader's block. The node
computes the activation (the NumPy program, ONNX and summaries see one node); the torch
backend keeps one class per block and gives it the activation as a constructor argument.

Decided from the IR alone: the value is a result of the block instance (``graph.blocks``), its
only reader is the op outside (``graph.users``), it is no model result and no input of
another block, and no other application of the block shares its module (``let``).
"""

from __future__ import annotations

from .. import records
from ..ir import BlockInstance, Graph, Node


def shared_modules(g: Graph) -> set[str]:
    """The block instances whose module another application uses too (``let b = B(...)``
    applied twice: one module, so no per-instance epilogue): built once per pass."""
    out = set()
    for b in g.blocks.values():
        if b.shares:
            out |= {b.path, b.shares}
    return out


def why_not_across(g: Graph, value: Node, reader: Node, shared: set[str]) -> tuple[list[BlockInstance], str | None]:
    """Whether ``reader`` (outside the block instance that computes ``value``) can be an
    epilogue of the instances whose result ``value`` is: those instances (innermost first)
    and None, or [] and the reason it cannot."""
    ref = (value.id, 0)
    others = [u.id for u in g.users(value.id) if u.id != reader.id]
    if others:
        return [], f"`{value.id}` is also read by `{others[0]}`"
    if reader.inputs.count(ref) != 1 or len(value.types) != 1:
        return [], f"`{reader.id}` reads `{value.id}` more than once"
    if any(r[0] == value.id for _, r in g.outputs):
        return [], f"`{value.id}` is a result of the model"
    for b in g.interfaces(value.id):
        if any(r == ref for _, r in b.inputs):
            return [], f"`{value.id}` is an input of block `{b.path}`"
    if value.index is not None:
        return [], f"`{value.id}` is one copy of a repeated op, which `{reader.id}` is outside"
    target = g.block_of(reader.id)
    path, out = value.block, []
    while path and g.enclosing_block(path) != target:
        b = g.blocks[path]
        if b.kind == "block":
            if b.outputs.count(ref) != 1:
                return [], f"`{value.id}` is no single result of block `{b.path}`, which `{reader.id}` is outside"
            if b.path in shared:
                return [], f"block `{b.path}` shares its module with another application of it (let)"
            out.append(b)
        path = b.parent
    if not out or g.enclosing_block(path) != target:
        return [], f"`{value.id}` and `{reader.id}` are in blocks neither of which holds the other"
    return out, None


def add_epilogue(g: Graph, blocks: list[BlockInstance], ref, op: str, slope: float | None) -> None:
    """Record the activation ``op`` on ``ref`` as an epilogue of each instance in ``blocks``."""
    for b in blocks:
        b = g.blocks[b.path]
        g.set_block(records.replace(b, epilogue=b.epilogue + ((b.outputs.index(ref), op, slope),)))


def where(blocks: list[BlockInstance]) -> str:
    """How a report names the boundary crossed: ``the result of ConvBN `basic.0.conv_bn```."""
    b = blocks[-1]
    return f"across the result of {b.name} `{b.path}`"
