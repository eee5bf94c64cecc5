"""The IR verifier: the invariants every graph holds between passes (FX's ``lint``).

A broken invariant is a bug in netc (an elaborator or a pass built a bad graph), not in the
spec, so it raises :class:`IRError`, an internal compiler error naming the graph, the node
and the invariant, never a diagnostic. It is a real exception, not an ``assert``: it also
fires under ``python -O``. ``optimize(..., check=True)`` (or ``NETC_VERIFY_IR=1``, which the
test suite sets) runs it after every pass.

    >>> import netc
    >>> from netc.compiler.verify import verify
    >>> verify(netc.compile_file("examples/lenet.net").graph("LeNet"))
"""

from __future__ import annotations

import networkx as nx
from netc.specs.catalogue import get

from .ir import Graph, IRError, Node
from .shapes import infer_op
from .types import ShapeError, TensorType

__all__ = ["IRError", "verify"]


def verify(graph: Graph, when: str = "") -> None:
    """Check ``graph`` (and the cells its ``scan`` nodes run); raise :class:`IRError` at the
    first broken invariant. ``when`` says at which point it is checked ("after pass x")."""
    _Verifier(graph, when, set()).run()


class _Verifier:
    def __init__(self, graph: Graph, when: str, cells: set):
        self.graph = graph
        self.where = f"graph `{graph.name}`" + (f" {when}" if when else "")
        self.when = when
        self.cells = cells  # id() of the cell graphs verified already

    def fail(self, what: str, node: str | None = None) -> None:
        at = f", node `{node}`" if node is not None else ""
        raise IRError(f"IR invariant broken in {self.where}{at}: {what}")

    def run(self) -> None:
        g = self.graph
        nodes = self.check_nodes()
        if not nx.is_directed_acyclic_graph(g.g):
            cycle = [src for src, _dst, *_ in nx.find_cycle(g.g)]
            self.fail(f"the graph has a cycle ({' -> '.join(cycle + cycle[:1])})", cycle[0])
        order = self.check_order(nodes)
        for nid in order:  # the same nodes (check_order), in graph order
            self.check_inputs(nodes[nid])
        for nid in g.inputs:
            if nid not in nodes or nodes[nid].op != "input":
                self.fail(f"graph input `{nid}` is not an input node", nid)
        missing = [n.id for n in nodes.values() if n.op == "input" and n.id not in g.inputs]
        if missing or len(set(g.inputs)) != len(g.inputs):
            self.fail(f"the graph's inputs {g.inputs} are not its input nodes (missing {missing})")
        for name, ref in g.outputs:
            self.check_ref(ref, f"result `{name}`" if name else "a result", None)
        self.check_blocks(nodes)
        for nid in order:
            self.check_types(nodes[nid])

    def check_nodes(self) -> dict:
        """Every networkx node carries its Node under its own id."""
        out = {}
        for nid, data in self.graph.g.nodes(data=True):
            node = data.get("node")
            if node is None:
                users = sorted(dst for _, dst in self.graph.g.out_edges(nid))
                self.fail(f"`{nid}` is read by {', '.join(f'`{u}`' for u in users) or 'nothing'} "
                          "but is not a node of the graph (a dangling ref)", users[0] if users else nid)
            if not isinstance(node, Node):
                self.fail(f"holds a {type(node).__name__}, not a Node", nid)
            if node.id != nid:
                self.fail(f"is stored under the id `{nid}` (node ids must be unique and match)", node.id)
            if self.graph._nodes.get(nid) is not node:
                self.fail("the graph's node index holds another node (changed behind Graph.replace)", nid)
            out[nid] = node
        return out

    def check_order(self, nodes: dict) -> list[str]:
        """The order (a doubly linked list) holds each node once, every node after the nodes it
        reads, linked both ways; returns it."""
        g = self.graph
        order, nid, guard = [], g._next[None], len(g._next) + 1
        while nid is not None and guard:
            order.append(nid)
            nid, guard = g._next.get(nid), guard - 1
        back, nid, guard = [], g._prev[None], len(g._prev) + 1
        while nid is not None and guard:
            back.append(nid)
            nid, guard = g._prev.get(nid), guard - 1
        if back[::-1] != order:
            self.fail("the node order's forward and backward links disagree (a broken linked list)")
        seen: set[str] = set()
        for nid in order:
            if nid in seen:
                self.fail("appears twice in the node order (duplicate node id)", nid)
            if nid not in nodes:
                self.fail("is in the node order but not in the graph", nid)
            for src, _port in nodes[nid].inputs:
                if src in nodes and src not in seen:
                    self.fail(f"comes before `{src}`, which it reads, in the node order (not topological)", nid)
            seen.add(nid)
        left = sorted(set(nodes) - seen)
        if left:
            self.fail(f"is in the graph but not in the node order ({len(left)} node(s) missing)", left[0])
        return order

    def check_blocks(self, nodes: dict) -> None:
        """Every node's block instance exists; each instance's parent exists and comes before
        it, a copy's parent is a stack, and its interface refs resolve and are indexed."""
        g = self.graph
        for n in nodes.values():
            if n.block and n.block not in g.blocks:
                self.fail(f"is in block instance `{n.block}`, which the graph does not have", n.id)
            if n.index is not None and (not n.block or g.blocks[n.block].kind != "stack"):
                self.fail(f"is copy {n.index} of a stack, but `{n.block}` is no stack", n.id)
        seen: set[str] = set()
        for path, b in g.blocks.items():
            if b.path != path:
                self.fail(f"block instance `{b.path}` is stored under `{path}`")
            if b.parent and b.parent not in seen:
                self.fail(f"block instance `{path}` comes before (or lacks) its parent `{b.parent}`")
            if b.index is not None and g.blocks[b.parent].kind != "stack":
                self.fail(f"block instance `{path}` is copy {b.index} of `{b.parent}`, which is no stack")
            for pname, ref in b.inputs:
                self.check_ref(ref, f"input `{pname}` of block instance `{path}`", None)
            for ref in b.outputs:
                self.check_ref(ref, f"a result of block instance `{path}`", None)
            for src in {src for src, _ in b.outputs} | {src for _, (src, _) in b.inputs}:
                if path not in g._interface.get(src, ()):
                    self.fail(f"block instance `{path}` names `{src}`, but the interface index misses it")
            self.check_epilogue(b)
            seen.add(path)

    def check_epilogue(self, b) -> None:
        """Each activation fused into a result of ``b`` from outside (``epilogue``) is applied
        last by the node giving that result: a layer's ``activation``, a fused chain's last step."""
        g = self.graph
        for pos, op, slope in b.epilogue:
            if not 0 <= pos < len(b.outputs) or [e[0] for e in b.epilogue].count(pos) != 1:
                self.fail(f"block instance `{b.path}` has an epilogue for result {pos}, which it lacks or has twice")
                continue
            src, port = b.outputs[pos]
            n = g.node(src) if src in g else None
            if n is None:
                continue  # (check_ref reports it)
            if n.op == "fused_elementwise":
                applies = n.attrs.steps[-1] == (op, slope)
            else:
                applies = getattr(n.attrs, "activation", None) == op and (
                    slope is None or n.attrs.activation_slope == slope)
            if not applies or port != 0:
                self.fail(f"block instance `{b.path}` has the epilogue {op} on its result {pos}, which "
                          f"`{src}` does not apply last", src)

    def check_ref(self, ref, what: str, reader: str | None) -> None:
        g = self.graph
        if not (isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[1], int)):
            self.fail(f"{what} is {ref!r}, not a (node id, port) ref", reader)
        src, port = ref
        if src not in g.g or "node" not in g.g.nodes[src]:
            self.fail(f"{what} reads `{src}`, which is not in the graph (a dangling ref)", reader)
        outs = len(g.node(src).types)
        if not 0 <= port < outs:
            self.fail(f"{what} reads port {port} of `{src}`, which has {outs} output(s)", reader)

    def check_inputs(self, n) -> None:
        """Each input ref resolves, and the edges of the MultiDiGraph are exactly the refs."""
        for i, ref in enumerate(n.inputs):
            self.check_ref(ref, f"input {i}", n.id)
        edges = sorted((k, src, d.get("port")) for src, _, k, d in self.graph.g.in_edges(n.id, keys=True, data=True))
        want = sorted((i, src, port) for i, (src, port) in enumerate(n.inputs))
        if edges != want:
            self.fail(f"its graph edges {edges} disagree with its inputs {list(n.inputs)} "
                      "(the node was changed without Graph.replace)", n.id)

    def check_types(self, n) -> None:
        """An ``input`` node has one type and reads nothing; any other node's op is in the
        catalogue and its recorded types are what the op's shape rule gives for its inputs."""
        if not n.types or not all(isinstance(t, TensorType) for t in n.types):
            self.fail(f"its types {n.types!r} are not a non-empty tuple of tensor types", n.id)
        if n.op == "input":
            if n.inputs or len(n.types) != 1:
                self.fail("an input node reads nothing and has one type", n.id)
            return
        op = get(n.op)
        if op is None:
            self.fail(f"its op `{n.op}` is not in the catalogue", n.id)
        if n.attrs is not None and not isinstance(n.attrs, op.Attrs):
            self.fail(f"its attrs are a {type(n.attrs).__name__}, not {n.op}'s attributes", n.id)
        low, high = op.arity
        if len(n.inputs) < low or (high is not None and not op.tensor_kwargs and len(n.inputs) > high):
            want = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            self.fail(f"it reads {len(n.inputs)} tensor(s); {n.op} takes {want}", n.id)
        xs = [self.graph.type_of(r) for r in n.inputs]
        try:
            got = infer_op(op, xs, n.attrs)
        except ShapeError as e:
            self.fail(f"{n.op}'s shape rule rejects its inputs ({', '.join(map(str, xs))}): {e}", n.id)
        except Exception as e:  # noqa: BLE001 -- a rule crashing on a malformed node is the same bug
            self.fail(f"{n.op}'s shape rule fails on it: {type(e).__name__}: {e}", n.id)
        if tuple(got.types) != tuple(n.types):
            shown = ", ".join(map(str, n.types))
            self.fail(f"its recorded type(s) {shown} are not what {n.op}'s shape rule gives for its inputs "
                      f"({', '.join(map(str, xs)) or 'none'}): {', '.join(map(str, got.types))}", n.id)
        if (n.layer is None or n.params) and n.params != got.params:  # a shared layer's user holds none
            self.fail(f"its weights {_shapes(n.params)} are not what {n.op} has for its inputs: "
                      f"{_shapes(got.params)}", n.id)
        if n.macs != got.macs:
            self.fail(f"its MAC count {n.macs} is not what {n.op} does for its inputs: {got.macs}", n.id)
        cell = getattr(n.attrs.cell, "graph", None) if n.op == "scan" else None
        if cell is not None and id(cell) not in self.cells:
            self.cells.add(id(cell))
            when = f" {self.when}" if self.when else ""
            _Verifier(cell, f"(the cell of `{n.id}` in graph `{self.graph.name}`{when})", self.cells).run()


def _shapes(params: dict) -> str:
    return "{" + ", ".join(f"{k}: {list(p.shape)}" for k, p in params.items()) + "}"
