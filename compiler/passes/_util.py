"""Helpers the clean-up passes share: block visibility, bypassing and dropping nodes.

Blocks are inlined in the IR, but a backend emits each block instance as its own module,
whose forward sees only its inputs (``graph.blocks``), its own nodes and the literals.
A rewrite that makes a node read a value must keep that value visible where the node is.
"""

from __future__ import annotations

from netc.specs.catalogue import get

from ..ir import Graph, Node, Ref
from ..source import Span
from ..types import TensorType


def visible(graph: Graph, ref: Ref, reader: str) -> bool:
    """Whether node ``reader`` may read ``ref``: a literal, a value of its own block, one of
    its block's inputs, or a result of a block it applies (not of a copy inside a stack,
    which may be emitted as one ``nn.Sequential``)."""
    if graph.producer(ref).op == "constant":
        return True
    block = graph.block_of(reader)
    if graph.block_of(ref[0]) == block:
        return True
    if block and any(r == ref for _, r in graph.blocks[block].inputs):
        return True
    for child in graph.interfaces(ref[0]):
        if ref in child.outputs and graph.enclosing_block(child.parent) == block:
            return not (child.parent and graph.blocks[child.parent].kind == "stack")
    return False


def referenced(graph: Graph, nid: str) -> bool:
    """Whether anything reads node ``nid``: a node, a result, or a block's interface."""
    return graph.has_users(nid) or graph.is_exposed(nid)


def bypass(graph: Graph, node: Node, to: list[Ref]) -> None:
    """Readers of each output of ``node`` read the matching ref of ``to``; ``node`` goes."""
    for port, new in enumerate(to):
        graph.replace_uses((node.id, port), new)
    graph.remove(node.id)


def drop_if_unused(graph: Graph, nid: str) -> bool:
    """Remove node ``nid`` when a rewrite left nothing reading it (never a model input)."""
    if nid in graph and graph.node(nid).op != "input" and not referenced(graph, nid):
        graph.remove(nid)
        return True
    return False


def union(a: Span | None, b: Span | None) -> Span | None:
    return a.union(b) if a and b and a.source == b.source else a or b


def permutation(n, rank: int) -> list[int]:
    """Output dim i of a node with the trait ``permute`` (transpose, permute) is input dim ``order[i]``."""
    return get(n.op).permutation(n.attrs, rank)


def moves_nothing(order: list[int], x: TensorType) -> bool:
    """Whether reordering the dims of ``x`` by ``order`` leaves every element in place: it
    moves only dims of size 1."""
    return all(i == j or x.shape[i] == 1 for i, j in enumerate(order))
