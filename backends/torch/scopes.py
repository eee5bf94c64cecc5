"""The module tree of a graph: which nodes and block instances each nn.Module holds, and
which block instances can share one class.

Blocks are inlined in the IR, but every node knows the block instance that holds it, and
each instance its interface and arguments (``graph.blocks``). Instances of one block whose
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
    index: int | None = None  # which copy of its stack it is
    shares: str | None = None  # a `let` block applied again: the path of the instance whose module it calls
    exprs: tuple = ()  # the size expressions among its call's arguments (over the parent's names)
    epilogue: tuple = ()  # the activations fused into its results from outside (BlockInstance.epilogue)

    @property
    def local(self) -> str:
        """The attribute name in the parent (last component, or "" for the root)."""
        return self.path.rsplit(".", 1)[-1]

    def rel(self, nid: str) -> str:
        return nid[len(self.path) + 1:] if self.path else nid

    def contains(self, nid: str) -> bool:
        return not self.path or nid.startswith(self.path + ".")


def build_tree(graph: Graph, name: str) -> Scope:
    """The scope tree of a graph: a Scope per block instance and stack (``graph.blocks``)."""
    root = Scope(graph, "", "root", name)
    root.inputs = [(n.id, (n.id, 0)) for n in graph.input_nodes()]
    root.outputs = [ref for _, ref in graph.outputs]
    scopes: dict[str, Scope] = {"": root}

    def scope_of(path: str) -> Scope:
        if path in scopes:
            return scopes[path]
        b = graph.blocks[path]
        s = Scope(graph, path, "block" if b.kind == "block" else "group", b.label, index=b.index, shares=b.shares)
        if b.kind == "block":
            s.inputs, s.outputs, s.env, s.span = list(b.inputs), list(b.outputs), dict(b.env), b.span
            s.exprs, s.epilogue = b.exprs, b.epilogue
        scopes[path] = s
        scope_of(b.parent).items.append(s)
        return s

    for n in graph.nodes():
        if n.op == "input":
            continue
        scope_of(n.block).items.append(n)
    return root


def group_members(s: Scope) -> list:
    """The members of a repetition group in order: Scopes (blocks) or Nodes (ops)."""
    return sorted(s.items, key=lambda it: it.index)


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


def last_uses(s: Scope) -> dict[Ref, int]:
    """Each value read in scope ``s`` -> the position of the last item that reads it (the
    results count as read after every item)."""
    last: dict[Ref, int] = {}
    for k, item in enumerate(s.items):
        members = group_members(item) if isinstance(item, Scope) and item.kind == "group" else [item]
        for m in members:
            for r in ([r for _, r in m.inputs] if isinstance(m, Scope) else m.inputs):
                last[r] = k
    for r in s.outputs:
        last[r] = len(s.items)
    return last


def node_of(scope: Scope, ref: Ref) -> Node:
    return scope.graph.producer(ref)
