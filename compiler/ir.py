"""The graph IR: one networkx MultiDiGraph per model, behind a small `Graph` class.

A :class:`Node` is one op application. Its inputs are refs ``(node_id, port)``; its outputs
are typed. ``id`` is the dotted scope path (``basic.0.conv_bn.conv2d``), unique in the
graph, and also the prefix of the node's parameter names unless the node applies a shared
layer (``layer``). ``str(graph)`` prints a jaxpr-like listing::

    %image : float[N, 1, 28, 28] = input()
    conv2d : float[N, 32, 28, 28] = conv2d(%image, out=32, kernel=3, padding=1)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .dims import Dim
from .source import Span
from .types import TensorType
from .verify import IRError, verify  # noqa: F401  (verify: re-exported, it lived here)

Ref = tuple[str, int]  # (producer node id, output port)


@dataclass(frozen=True, eq=False)
class Node:
    id: str
    op: str
    inputs: tuple[Ref, ...]
    attrs: Any  # the op's pydantic Attrs (None for graph inputs)
    types: tuple[TensorType, ...]
    span: Span | None
    scope: tuple[str, ...] = ()  # block-instance path; the node's own name is id's last part
    params: dict = field(default_factory=dict)  # name -> catalogue.Param, unless shared
    layer: str | None = None  # the scope owning the weights this node uses
    macs: Dim = 0

    @property
    def type(self) -> TensorType:
        return self.types[0]

    @property
    def name(self) -> str:
        return self.id.rsplit(".", 1)[-1]

    def param_names(self) -> list[str]:
        return [f"{self.layer or self.id}.{p}" for p in self.params]


@dataclass(frozen=True)
class ScopeInfo:
    """The interface of one block instance: its tensor inputs and results, and the
    compile-time values it was instantiated with (what a backend needs to emit a class)."""

    block: str
    inputs: list  # [(parameter name, ref)]
    outputs: list  # [ref]
    env: dict  # name -> int or symbolic size: compile-time parameters first, then bound dims
    span: Span | None = None  # where the block is applied


class Graph:
    """A model's IR: nodes in a MultiDiGraph (edge key = input position), named inputs and
    outputs, deterministic iteration."""

    def __init__(self, name: str):
        self.name = name
        self.g = nx.MultiDiGraph()
        self.inputs: list[str] = []  # ids of input nodes, in signature order
        self.outputs: list[tuple[str | None, Ref]] = []  # (result name, ref)
        self._order: list[str] = []  # insertion order, a topological order by construction
        self.scopes: dict[str, str] = {}  # block-instance scope path -> block name
        self.scope_info: dict[str, ScopeInfo] = {}  # block-instance scope path -> its interface

    # -- verbs passes need ---------------------------------------------------------------
    def add(self, node: Node) -> Node:
        if node.id in self.g:
            raise IRError(f"graph `{self.name}`: duplicate node id `{node.id}`")
        self.g.add_node(node.id, node=node)
        for i, (src, port) in enumerate(node.inputs):
            self.g.add_edge(src, node.id, key=i, port=port)
        self._order.append(node.id)
        if node.op == "input":
            self.inputs.append(node.id)
        return node

    def replace(self, node: Node) -> Node:
        """Put ``node`` in the place of the node with its id (new inputs, attrs or types)."""
        if node.id not in self.g:
            raise IRError(f"graph `{self.name}`: cannot replace `{node.id}`, which is not in the graph")
        self.g.remove_edges_from(list(self.g.in_edges(node.id, keys=True)))
        self.g.nodes[node.id]["node"] = node
        for i, (src, port) in enumerate(node.inputs):
            self.g.add_edge(src, node.id, key=i, port=port)
        return node

    def insert_before(self, anchor: str, node: Node) -> Node:
        """Add ``node`` just before ``anchor`` in the order (its inputs must come earlier)."""
        self.add(node)
        self._order.remove(node.id)
        self._order.insert(self._order.index(anchor), node.id)
        return node

    def remove(self, nid: str) -> None:
        if list(self.g.successors(nid)):
            raise IRError(f"graph `{self.name}`: cannot remove `{nid}`, which still has users")
        if any(src == nid for _, (src, _p) in self.outputs):
            raise IRError(f"graph `{self.name}`: cannot remove `{nid}`, which is a result")
        self.g.remove_node(nid)
        self._order.remove(nid)

    def replace_uses(self, old: Ref, new: Ref) -> None:
        """Every reader of ``old`` (nodes and results) reads ``new`` instead."""
        for user in self.users(old[0]):
            if old in user.inputs and user.id != new[0]:
                self.replace(dataclasses.replace(user, inputs=tuple(new if r == old else r for r in user.inputs)))
        self.outputs = [(name, new if r == old else r) for name, r in self.outputs]
        for path, info in list(self.scope_info.items()):
            if old in info.outputs or any(r == old for _, r in info.inputs):
                self.scope_info[path] = dataclasses.replace(
                    info, outputs=[new if r == old else r for r in info.outputs],
                    inputs=[(name, new if r == old else r) for name, r in info.inputs])

    def copy(self) -> Graph:
        """An independent graph with the same (immutable) nodes: passes rewrite copies."""
        out = Graph(self.name)
        out.g = self.g.copy()
        out.inputs, out.outputs, out._order = list(self.inputs), list(self.outputs), list(self._order)
        out.scopes, out.scope_info = dict(self.scopes), dict(self.scope_info)
        return out

    def node(self, nid: str) -> Node:
        return self.g.nodes[nid]["node"]

    def producer(self, ref: Ref) -> Node:
        return self.node(ref[0])

    def type_of(self, ref: Ref) -> TensorType:
        return self.node(ref[0]).types[ref[1]]

    def users(self, nid: str) -> list[Node]:
        return [self.node(d) for d in sorted(set(self.g.successors(nid)))]

    def __contains__(self, nid: str) -> bool:
        return nid in self.g

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def nodes(self) -> list[Node]:
        """All nodes in a deterministic topological order (construction order)."""
        return [self.node(n) for n in self._order if n in self.g]

    def input_nodes(self) -> list[Node]:
        return [self.node(n) for n in self.inputs]

    def output_types(self) -> list[TensorType]:
        return [self.type_of(r) for _, r in self.outputs]

    # -- weights ---------------------------------------------------------------------------
    def weights(self) -> dict[str, Any]:
        """Every weight (parameter or buffer) by its full name, each shared layer once."""
        out: dict[str, Any] = {}
        for n in self.nodes():
            for pname, p in n.params.items():
                out.setdefault(f"{n.layer or n.id}.{pname}", p)
        return out

    def param_count(self) -> int:
        return sum(p.numel for p in self.weights().values() if not p.buffer)

    def total_macs(self) -> Dim:
        total: Dim = 0
        for n in self.nodes():
            total = total + n.macs
        return total

    # -- printing --------------------------------------------------------------------------
    def __str__(self) -> str:
        lines = [f"graph {self.name}("]
        lines += [f"  %{n.id} : {n.type}" for n in self.input_nodes()]
        lines.append(") {")
        for n in self.nodes():
            if n.op == "input":
                continue
            outs = ", ".join(str(t) for t in n.types)
            args = [f"%{src}" + (f"#{port}" if port else "") for src, port in n.inputs]
            args += _attr_items(n.attrs)
            lines.append(f"  %{n.id} : {outs} = {n.op}({', '.join(args)})")
        rets = ", ".join(f"%{r[0]}" + (f"#{r[1]}" if r[1] else "") for _, r in self.outputs)
        lines.append(f"  return {rets}")
        lines.append("}")
        return "\n".join(lines)


def _attr_items(attrs) -> list[str]:
    if attrs is None:
        return []
    items = []
    for k in type(attrs).model_fields:
        v = getattr(attrs, k)
        default = type(attrs).model_fields[k].default
        if v != default:
            items.append(f"{k}={getattr(v, 'name', None) or getattr(v, 'scope', None) or v}")
    return items
