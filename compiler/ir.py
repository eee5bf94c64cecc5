"""The graph IR: one networkx MultiDiGraph per model, behind a small `Graph` class.

A :class:`Node` is one op application. Its inputs are refs ``(node_id, port)``; its outputs
are typed, and may carry the names the spec gave them (``names``: ``c = ...`` names the node
that computes ``c``). ``id`` is the dotted scope path (``basic.0.conv_bn.conv2d``), unique in
the graph, and also the prefix of the node's parameter names unless the node applies a shared
layer (``layer``). The block structure is data, not text: ``node.block`` is the path of the
:class:`BlockInstance` that holds the node (``""``: the model itself), and ``graph.blocks``
maps each path to its instance (its declaration, arguments by parameter name, tensor
interface, repeat index and count). Passes ask the graph (``block_of``, ``is_exposed``,
``users``); none parses ids.

Insert, remove, replace and user lookup are constant-time (a doubly linked node order, as
torch.fx keeps it, and an index of the block interfaces that name each node), so passes stay
linear in the model's size. ``str(graph)`` prints a jaxpr-like listing::

    %image : float[N, 1, 28, 28] = input()
    conv2d : float[N, 32, 28, 28] = conv2d(%image, out=32, kernel=3, padding=1)
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

import networkx as nx

from . import records
from .dims import Dim
from .records import Record
from .source import Span
from .types import TensorType

Ref = tuple[str, int]  # (producer node id, output port)


class IRError(Exception):
    """An internal compiler error: the graph IR broke an invariant (a bug in netc, not in the
    spec). ``compiler/verify.py`` checks every invariant; the graph's verbs raise it too."""


class Node(Record):
    id: str
    op: str
    inputs: tuple[Ref, ...]
    attrs: Any  # the op's pydantic Attrs (None for graph inputs)
    types: tuple[TensorType, ...]
    span: Span | None
    block: str = ""  # path of the BlockInstance holding the node ("" = the model)
    params: dict = field(default_factory=dict)  # name -> catalogue.Param, unless shared
    layer: str | None = None  # the scope owning the weights this node uses
    macs: Dim = 0
    index: int | None = None  # which copy it is, when the node is one copy of a repeated op (`op * n`)
    names: tuple[str | None, ...] = ()  # per output: the name the spec gave it, if any
    mentions: frozenset[str] = frozenset()  # the block's names its arguments mention: conv2d(width, 3)
    exprs: tuple = ()  # its arguments that are size expressions over those names (ASTs: k // 2)
    inits: tuple = ()  # (weight name, specs.init.Init) for the weights the spec says how to start

    # a node is itself: two applications of one op with the same arguments are two nodes
    __eq__, __hash__ = object.__eq__, object.__hash__

    @property
    def type(self) -> TensorType:
        return self.types[0]

    @property
    def name(self) -> str:
        return self.id.rsplit(".", 1)[-1]

    def name_of(self, port: int) -> str | None:
        """The name the spec gave output ``port`` (``c = ...``), or None."""
        return self.names[port] if port < len(self.names) else None

    def param_names(self) -> list[str]:
        return [weight_key(self.layer or self.id, p) for p in self.params]


def weight_key(owner: str, pname: str) -> str:
    """A weight's full name: ``conv1.weight``; a weight named "" is its owner's own
    (a ``param``'s: ``encoder.pos``)."""
    return f"{owner}.{pname}" if pname else owner


class BlockInstance(Record):
    """One application of a block (``kind="block"``), or one repeated stage ``F(...) * n``
    (``kind="stack"``: its copies are its children, each with its ``index``)."""

    path: str  # the scope path: prefix of its nodes' ids and of their parameter names
    name: str  # the block's declared name; for a stack, the name of what is repeated
    kind: str = "block"  # "block" or "stack"
    parent: str = ""  # path of the enclosing instance ("" = the model)
    args: dict = field(default_factory=dict)  # parameter name -> compile-time value (non-tensor params)
    env: dict = field(default_factory=dict)  # every size known in its body: parameters, then bound dims
    inputs: tuple[tuple[str, Ref], ...] = ()  # tensor inputs, by parameter name
    outputs: tuple[Ref, ...] = ()
    span: Span | None = None  # where it is applied
    index: int | None = None  # which copy of its parent stack it is
    count: int | None = None  # a stack: how many copies
    exprs: tuple = ()  # its call's arguments that are size expressions over the caller's names (ASTs: ngf * 4)
    shares: str | None = None  # a block bound with `let` applied again: the path of its first application,
    #                            whose weights (and, in torch, whose module) its nodes use
    # the activations fused into its results from the one op outside that read each (-O2: a
    # ConvBN's relu in Basic): (position in outputs, op, slope or None). The node giving that
    # result applies it last, but it is this instance's, not its block's: other instances may
    # have none (torch: a constructor argument of the block's one class)
    epilogue: tuple[tuple[int, str, float | None], ...] = ()

    @property
    def local(self) -> str:
        """Its attribute name in the enclosing module."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def label(self) -> str:
        """How summaries and diagrams title it: ``Basic``, ``Basic ×2``."""
        return f"{self.name} ×{self.count}" if self.kind == "stack" else self.name


class Graph:
    """A model's IR: nodes in a MultiDiGraph (edge key = input position), named inputs and
    outputs, block instances, deterministic iteration."""

    def __init__(self, name: str):
        self.name = name
        self.g = nx.MultiDiGraph()
        self.inputs: list[str] = []  # ids of input nodes, in signature order
        self.outputs: list[tuple[str | None, Ref]] = []  # (result name, ref)
        self.blocks: dict[str, BlockInstance] = {}  # path -> instance, outer before inner
        self.params: dict[str, object] = {}  # a model's scalar parameters -> their values (-D applied)
        self._nodes: dict[str, Node] = {}  # id -> node (also the networkx node's "node" datum)
        self._next: dict[str | None, str | None] = {None: None}  # linked order; None is the head
        self._prev: dict[str | None, str | None] = {None: None}
        self._interface: dict[str, set[str]] = {}  # node id -> paths of instances whose interface names it

    # -- verbs passes need ---------------------------------------------------------------
    def add(self, node: Node) -> Node:
        """Append ``node`` to the order (its inputs must already be in the graph)."""
        return self._insert(node, self._prev[None], None)

    def insert_before(self, anchor: str, node: Node) -> Node:
        """Add ``node`` just before ``anchor`` in the order (its inputs must come earlier)."""
        if anchor not in self.g:
            raise IRError(f"graph `{self.name}`: cannot insert `{node.id}` before `{anchor}`, which is not in the graph")
        return self._insert(node, self._prev[anchor], anchor)

    def _insert(self, node: Node, prev: str | None, nxt: str | None) -> Node:
        if node.id in self.g:
            raise IRError(f"graph `{self.name}`: duplicate node id `{node.id}`")
        self.g.add_node(node.id, node=node)
        self._nodes[node.id] = node
        self._link_edges(node)
        self._prev[node.id], self._next[node.id] = prev, nxt
        self._next[prev], self._prev[nxt] = node.id, node.id
        if node.op == "input":
            self.inputs.append(node.id)
        return node

    def _link_edges(self, node: Node) -> None:
        for i, (src, port) in enumerate(node.inputs):
            if src not in self.g:
                raise IRError(f"graph `{self.name}`: `{node.id}` reads `{src}`, which is not in the graph")
            self.g.add_edge(src, node.id, key=i, port=port)

    def replace(self, node: Node) -> Node:
        """Put ``node`` in the place of the node with its id (new inputs, attrs or types)."""
        if node.id not in self.g:
            raise IRError(f"graph `{self.name}`: cannot replace `{node.id}`, which is not in the graph")
        self.g.remove_edges_from(list(self.g.in_edges(node.id, keys=True)))
        self.g.nodes[node.id]["node"] = self._nodes[node.id] = node
        self._link_edges(node)
        return node

    def remove(self, nid: str) -> None:
        if nid not in self.g:
            raise IRError(f"graph `{self.name}`: cannot remove `{nid}`, which is not in the graph")
        if self.g.out_degree(nid):
            raise IRError(f"graph `{self.name}`: cannot remove `{nid}`, which still has users")
        if self.is_exposed(nid):
            raise IRError(f"graph `{self.name}`: cannot remove `{nid}`, which is a result of the model or a block")
        self.g.remove_node(nid)
        del self._nodes[nid]
        prev, nxt = self._prev.pop(nid), self._next.pop(nid)
        self._next[prev], self._prev[nxt] = nxt, prev
        if nid in self.inputs:
            self.inputs.remove(nid)

    def replace_uses(self, old: Ref, new: Ref) -> None:
        """Every reader of ``old`` (nodes, results and block interfaces) reads ``new`` instead."""
        for user in self.users(old[0]):
            if old in user.inputs and user.id != new[0]:
                self.replace(records.replace(user, inputs=tuple(new if r == old else r for r in user.inputs)))
        self.outputs = [(name, new if r == old else r) for name, r in self.outputs]
        for path in sorted(self._interface.get(old[0], ())):
            b = self.blocks[path]
            if old in b.outputs or any(r == old for _, r in b.inputs):
                self.set_block(records.replace(
                    b, outputs=tuple(new if r == old else r for r in b.outputs),
                    inputs=tuple((name, new if r == old else r) for name, r in b.inputs)))

    # -- block instances -----------------------------------------------------------------
    def set_block(self, b: BlockInstance) -> BlockInstance:
        """Add or update a block instance (its interface is indexed for ``is_exposed``)."""
        old = self.blocks.get(b.path)
        if old is not None:
            for src in _interface_ids(old):
                self._interface[src].discard(b.path)
                if not self._interface[src]:
                    del self._interface[src]
        elif b.parent and b.parent not in self.blocks:
            raise IRError(f"graph `{self.name}`: block instance `{b.path}` has no parent instance `{b.parent}`")
        self.blocks[b.path] = b
        for src in _interface_ids(b):
            self._interface.setdefault(src, set()).add(b.path)
        return b

    def remove_block(self, path: str) -> None:
        """Drop the instance ``path`` (its nodes and inner instances must be gone already)."""
        b = self.blocks.pop(path)
        for src in _interface_ids(b):
            self._interface[src].discard(path)
            if not self._interface[src]:
                del self._interface[src]

    def block_of(self, nid: str) -> str:
        """The innermost block instance holding node ``nid`` ("" for the model itself); a stack
        is not a block (its copies are emitted in the enclosing forward)."""
        return self.enclosing_block(self.node(nid).block)

    def enclosing_block(self, path: str) -> str:
        """``path`` if it is a block, else the nearest block around it ("" for the model)."""
        while path and self.blocks[path].kind != "block":
            path = self.blocks[path].parent
        return path

    def chain(self, path: str) -> list[BlockInstance]:
        """The instances from the outermost to ``path`` (empty for the model)."""
        out = []
        while path:
            out.append(self.blocks[path])
            path = self.blocks[path].parent
        return out[::-1]

    def nesting(self, node: Node) -> list[BlockInstance]:
        """The instances a summary or diagram nests ``node`` in, outermost first: its chain,
        less a stack of ops holding it directly (those copies stand side by side in the
        enclosing block)."""
        return self.chain(node.block if node.index is None else self.blocks[node.block].parent)

    def is_exposed(self, nid: str) -> bool:
        """Whether a model result or a block interface names node ``nid``: it must stay."""
        return nid in self._interface or any(src == nid for _, (src, _p) in self.outputs)

    def interfaces(self, nid: str) -> list[BlockInstance]:
        """The block instances whose inputs or outputs name node ``nid``."""
        return [self.blocks[p] for p in sorted(self._interface.get(nid, ()))]

    # -- queries ---------------------------------------------------------------------------
    def copy(self) -> Graph:
        """An independent graph with the same (immutable) nodes: passes rewrite copies."""
        out = Graph(self.name)
        out.g = self.g.copy()
        out.inputs, out.outputs = list(self.inputs), list(self.outputs)
        out.blocks = dict(self.blocks)
        out.params = dict(self.params)
        out._nodes = dict(self._nodes)
        out._next, out._prev = dict(self._next), dict(self._prev)
        out._interface = {k: set(v) for k, v in self._interface.items()}
        return out

    def node(self, nid: str) -> Node:
        return self._nodes[nid]

    def producer(self, ref: Ref) -> Node:
        return self.node(ref[0])

    def type_of(self, ref: Ref) -> TensorType:
        return self.node(ref[0]).types[ref[1]]

    def users(self, nid: str) -> list[Node]:
        return [self.node(d) for d in sorted(set(self.g.successors(nid)))]

    def has_users(self, nid: str) -> bool:
        return self.g.out_degree(nid) > 0

    def __contains__(self, nid: str) -> bool:
        return nid in self._nodes

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def ids(self) -> list[str]:
        """Every node id in the order (a topological order)."""
        out, nid = [], self._next[None]
        while nid is not None:
            out.append(nid)
            nid = self._next[nid]
        return out

    def nodes(self) -> list[Node]:
        """All nodes in a deterministic topological order (construction order)."""
        return [self.node(n) for n in self.ids()]

    def last(self) -> Node:
        """The node added last."""
        return self.node(self._prev[None])

    def next_of(self, nid: str) -> str | None:
        return self._next[nid]

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
                out.setdefault(weight_key(n.layer or n.id, pname), p)
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


def _interface_ids(b: BlockInstance) -> set[str]:
    return {src for src, _p in b.outputs} | {src for _, (src, _p) in b.inputs}


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

