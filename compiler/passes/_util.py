"""Helpers the clean-up passes share: block visibility, bypassing and dropping nodes.

Blocks are inlined in the IR, but a backend emits each block instance as its own module,
whose forward sees only its inputs (``graph.scope_info``), its own nodes and the literals.
A rewrite that makes a node read a value must keep that value visible where the node is.
"""

from __future__ import annotations

from netc.specs.catalogue import get

from ..ir import Graph, Node, Ref
from ..source import Span
from ..types import TensorType


def block_of(graph: Graph, nid: str) -> str:
    """The innermost block instance holding node ``nid`` ("" for the model itself);
    repetition groups are not blocks (their members are emitted in the enclosing forward)."""
    parts = nid.split(".")
    for k in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:k])
        if prefix in graph.scope_info:
            return prefix
    return ""


def visible(graph: Graph, ref: Ref, reader: str) -> bool:
    """Whether node ``reader`` may read ``ref``: a literal, a value of its own block, one of
    its block's inputs, or a result of a block it applies (not of a copy inside a repetition
    group, which may be emitted as one ``nn.Sequential``)."""
    if graph.producer(ref).op == "constant":
        return True
    block = block_of(graph, reader)
    if block_of(graph, ref[0]) == block:
        return True
    info = graph.scope_info.get(block)
    if info is not None and any(r == ref for _, r in info.inputs):
        return True
    for path, child in graph.scope_info.items():
        if ref in child.outputs and block_of(graph, path) == block:
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            return not (parent in graph.scopes and parent not in graph.scope_info)
    return False


def referenced(graph: Graph, nid: str) -> bool:
    """Whether anything reads node ``nid``: a node, a result, or a block's interface."""
    if graph.users(nid) or any(src == nid for _, (src, _p) in graph.outputs):
        return True
    return any(r[0] == nid for info in graph.scope_info.values()
               for r in list(info.outputs) + [r for _, r in info.inputs])


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
