"""The module tree of a graph: which nodes and block instances each nn.Module holds, and
which block instances can share one class.

Blocks are inlined in the IR, but every node's id keeps its scope path, and the elaborator
records each block instance's interface (``graph.scope_info``). Instances of one block whose
structure is the same share a class; the values in which they differ (channel counts,
strides) become that class's constructor arguments, named after the block's own parameters
where the values match one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netc.compiler.ir import Graph, Node, Ref


@dataclass
class Scope:
    """One nn.Module to emit: the model, a block instance, a repetition group, or a cell."""

    graph: Graph
    path: str  # "" for the root
    kind: str  # "root", "block", "group"
    name: str  # the model / block / cell name; for groups "Block ×n"
    items: list = field(default_factory=list)  # Node | Scope, in graph order
    inputs: list[tuple[str, Ref]] = field(default_factory=list)
    outputs: list[Ref] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    span: object = None  # where a block instance is applied

    @property
    def local(self) -> str:
        """The attribute name in the parent (last component, or "" for the root)."""
        return self.path.rsplit(".", 1)[-1]

    def rel(self, nid: str) -> str:
        return nid[len(self.path) + 1:] if self.path else nid

    def contains(self, nid: str) -> bool:
        return not self.path or nid.startswith(self.path + ".")


def build_tree(graph: Graph, name: str) -> Scope:
    """The scope tree of a graph: a Scope per block instance and repetition group."""
    root = Scope(graph, "", "root", name)
    root.inputs = [(n.id, (n.id, 0)) for n in graph.input_nodes()]
    root.outputs = [ref for _, ref in graph.outputs]
    scopes: dict[str, Scope] = {"": root}

    def scope_of(path: str) -> Scope:
        if path in scopes:
            return scopes[path]
        info = graph.scope_info.get(path)
        kind = "block" if info is not None else "group"
        s = Scope(graph, path, kind, info.block if info else graph.scopes[path])
        if info:
            s.inputs, s.outputs, s.env, s.span = list(info.inputs), list(info.outputs), dict(info.env), info.span
        scopes[path] = s
        parent = scope_of(_container(path, graph))
        parent.items.append(s)
        return s

    for n in graph.nodes():
        if n.op == "input":
            continue
        scope_of(_container(n.id, graph)).items.append(n)
    return root


def _container(nid: str, graph: Graph) -> str:
    """The innermost block instance or group whose path is a proper prefix of ``nid``."""
    parts = nid.split(".")
    for k in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:k])
        if prefix in graph.scopes:
            return prefix
    return ""


def group_members(s: Scope) -> list:
    """The members of a repetition group in order: Scopes (blocks) or Nodes (ops)."""
    return sorted(s.items, key=lambda it: int((it.path if isinstance(it, Scope) else it.id).rsplit(".", 1)[1]))


def is_chain(members: list, graph: Graph) -> bool:
    """Each member takes the previous member's single output as its only input."""
    prev = None
    for m in members:
        ins = [r for _, r in m.inputs] if isinstance(m, Scope) else list(m.inputs)
        outs = m.outputs if isinstance(m, Scope) else [(m.id, i) for i in range(len(m.types))]
        if len(ins) != 1 or len(outs) != 1 or (prev is not None and ins[0] != prev):
            return False
        prev = outs[0]
    return True


def node_of(scope: Scope, ref: Ref) -> Node:
    return scope.graph.producer(ref)
