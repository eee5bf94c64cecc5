"""What a diagram of one graph holds once blocks are folded: boxes, clusters and edges.

A node is drawn as its own box, inside one cluster per block instance on its scope path,
unless a block on that path is folded: then the whole block is one box. ``Depth`` says
which:

* ``Depth.of(None)`` (the default): every block unfolded, and each repeated stack
  (``GPT2Block(...) * 12``) drawn once: its first copy, in a cluster marked ``×12``. Edges
  into and out of later copies are drawn from the first copy; edges between copies are
  not drawn.
* ``Depth.of(k)``: as ``netc summary --depth k``: blocks nested deeper than ``k`` levels
  are one box each (a folded repeated stack is one ``GPT2Block ×12`` box); every copy drawn.
* ``Depth.of("all")``: every node of the graph, in every copy.

``constant`` nodes are never boxes: their values are written into their users' labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netc.compiler.ir import Graph, Node
from netc.compiler.summary import Row, fmt_count, summarize
from netc.specs import catalogue

from . import labels


@dataclass(frozen=True)
class Depth:
    """``fold_at``: blocks at nesting level ``fold_at`` (1 = top-level blocks) and deeper are
    folded; None = none. ``one_copy``: draw only the first copy of a repeated stack."""

    fold_at: int | None = None
    one_copy: bool = True

    @classmethod
    def of(cls, depth: int | str | None) -> Depth:
        if depth is None:
            return cls()
        if depth == "all":
            return cls(None, False)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a whole number >= 1, 'all' or None; got {depth!r}")
        return cls(depth, False)


@dataclass
class Box:
    key: str  # unique in the view: node id, block path, or "return.i" for outputs
    kind: str  # "input", "op", "block" or "output"
    title: str  # the bold part: op, block ("GPT2Block ×12") or the input/output name
    detail: str = ""  # the rest of the first line: key attributes
    notes: list[str] = field(default_factory=list)  # small lines: name, params, type
    family: str = "math"  # colour: the op's catalogue group, "block" or "io"
    repeat: int = 0  # n of a folded repeated stack


@dataclass
class Cluster:
    path: str  # block-instance scope path
    block: str  # block name, "GPT2Block"
    repeat: int  # n for a repeated stack's group, else 0
    one_copy: bool  # a repeated stack of which only the first copy is drawn
    params: int
    level: int  # nesting level, 0 = top
    shares: str | None = None  # a block bound with `let` applied again: the instance whose weights it uses


@dataclass
class View:
    model: str
    title: str
    boxes: dict[str, Box] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    # members[cluster path or None] = [("box", key) | ("cluster", path)], in first-seen order
    members: dict[str | None, list[tuple[str, str]]] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (src key, dst key, shape)
    outputs: list[str] = field(default_factory=list)  # output box keys, in order


def fold(graph: Graph, depth: Depth) -> View:
    """The view of ``graph`` at ``depth``."""
    return _Folder(graph, depth).build()


class _Folder:
    def __init__(self, graph: Graph, depth: Depth):
        self.g = graph
        self.depth = depth
        s = summarize(graph)
        self.rows: dict[str, Row] = {r.name: r for r in s.rows}
        self.groups = {p: b.count for p, b in graph.blocks.items() if b.kind == "stack"}
        self.placed: dict[str, str] = {}  # drawn node id -> its box key
        # (stack, index) -> that copy's instance path; a copy's drawn nodes, in order
        self.copy_path = {(b.parent, b.index): p for p, b in graph.blocks.items() if b.index is not None}
        self.drawn_in: dict[str, list[str]] = {}
        title = f"{graph.name} · {s.params:,} params · {fmt_count(s.macs)} MACs"
        self.view = View(graph.name, title)
        self._seen_edges: set[tuple[str, str, str]] = set()

    def build(self) -> View:
        nodes = [n for n in self.g.nodes() if n.op != "constant"]
        for n in nodes:
            if not self._hidden(n):
                self._place(n)
        for n in nodes:
            for ref in n.inputs:
                self._edge(self.g.producer(ref), n, self.g.type_of(ref).shape_str())
        for i, (name, ref) in enumerate(self.g.outputs):
            self._output(i, name, ref)
        return self.view

    # -- where a node is drawn -----------------------------------------------------------------
    def _block_paths(self, node: Node) -> list[str]:
        return [b.path for b in self.g.nesting(node)]

    def _copies(self, node: Node) -> dict[str, int]:
        """Repeated-stack group path -> which copy ``node`` is in, along its scope."""
        return {b.parent: b.index for b in self.g.nesting(node) if b.index is not None}

    def _hidden(self, node: Node) -> bool:
        return self.depth.one_copy and any(self._copies(node).values())

    def _place(self, n: Node) -> None:
        paths = self._block_paths(n)
        k = self.depth.fold_at
        if k is not None and len(paths) >= k:
            key = self._block_box(paths[k - 1])
            chain = paths[:k - 1]
        else:
            key = n.id
            chain = paths
        if self.depth.one_copy:  # the group's cluster stands for its drawn copy
            chain = [p for p in chain if self.g.blocks[p].parent not in self.groups]
        parent = self._clusters(chain)
        if key not in self.view.boxes:
            self.view.boxes[key] = self._box(n) if key == n.id else self._block_info(key)
            self.view.members.setdefault(parent, []).append(("box", key))
        self.placed[n.id] = key
        for path in paths:
            self.drawn_in.setdefault(path, []).append(n.id)

    def _clusters(self, chain: list[str]) -> str | None:
        parent = None
        for level, path in enumerate(chain):
            if path not in self.view.clusters:
                b = self.g.blocks[path]
                stack = b.kind == "stack"
                self.view.clusters[path] = Cluster(
                    path, b.name, b.count if stack else 0, stack and self.depth.one_copy, self.rows[path].params, level,
                    b.shares)
                self.view.members.setdefault(parent, []).append(("cluster", path))
            parent = path
        return parent

    # -- boxes ---------------------------------------------------------------------------------
    def _box(self, n: Node) -> Box:
        if n.op == "input":
            return Box(n.id, "input", n.id, notes=[str(n.type)], family="io")
        if n.layer and n.layer != n.id:  # a `let` layer applied again
            notes = [f"weights of {n.layer}"]
        else:
            notes = [x for x in [labels.informative_name(n)] if x]
        params = self.rows[n.id].params
        if params:
            notes.append(f"{labels.count(params)} params")
        op = catalogue.get(n.op)
        return Box(n.id, "op", labels.op_title(n), labels.op_detail(n, self.g), [" · ".join(notes)] if notes else [],
                   op.group if op else "math")

    def _block_box(self, path: str) -> str:
        return path if path not in self.g else path + "#block"

    def _block_info(self, key: str) -> Box:
        path = key.removesuffix("#block")
        row = self.rows[path]
        b = self.g.blocks[path]
        notes = [f"{path} · {labels.count(row.params)} params" if row.params else path,
                 f"out {row.shape}"] + ([f"weights of {b.shares}"] if b.shares else [])
        return Box(key, "block", row.op, notes=notes, family="block", repeat=b.count if b.kind == "stack" else 0)

    def _output(self, i: int, name: str | None, ref) -> None:
        key = f"return.{i}"
        t = self.g.type_of(ref)
        self.view.boxes[key] = Box(key, "output", name or "output", notes=[str(t)], family="io")
        self.view.members.setdefault(None, []).append(("box", key))
        self.view.outputs.append(key)
        src = self.g.producer(ref)
        s = None if src.op == "constant" else self._canon(src, last=True)
        if s is not None:
            self._add_edge(self.placed[s], key, t.shape_str())

    # -- edges ---------------------------------------------------------------------------------
    def _edge(self, src: Node, dst: Node, shape: str) -> None:
        if src.op == "constant":
            return  # written into dst's label
        if self.depth.one_copy:
            cs, cd = self._copies(src), self._copies(dst)
            if any(cs[g] or cd[g] for g in cs.keys() & cd.keys()):
                return  # between copies, or inside a copy that is not drawn
        s, d = self._canon(src, last=True), self._canon(dst, last=False)
        if s is not None and d is not None:
            self._add_edge(self.placed[s], self.placed[d], shape)

    def _add_edge(self, s: str, d: str, shape: str) -> None:
        """An edge between two boxes, once (folded blocks read one value in many places)."""
        e = (s, d, shape)
        if s != d and e not in self._seen_edges:
            self._seen_edges.add(e)
            self.view.edges.append(e)

    def _canon(self, node: Node, last: bool) -> str | None:
        """The drawn node standing for ``node``: itself, or its twin in the first copy of each
        stack around it (else that copy's last node for an edge out of it, its first node
        for an edge into it)."""
        if node.id in self.placed:
            return node.id
        moved: list[tuple[str, str]] = []  # (a copy's path, the first copy's) along the chain

        def in_first(path: str) -> str:
            for a, b in moved:
                if path == a or path.startswith(a + "."):
                    path = b + path[len(a):]
            return path

        copies = [b for b in self.g.nesting(node) if b.index is not None]
        for b in copies:
            first = self.copy_path.get((in_first(b.parent), 0))
            if first is not None and b.index:
                moved.append((in_first(b.path), first))
        twin = in_first(node.id)
        if twin in self.placed:
            return twin
        inside = self.drawn_in.get(self.copy_path.get((copies[0].parent, 0), ""), []) if copies else []
        return (inside[-1] if last else inside[0]) if inside else None
