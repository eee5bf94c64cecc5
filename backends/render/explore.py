"""The model explorer: one self-contained HTML page (``netc render -o model.html``,
``Program.explore``, ``netc view``) to open and fold blocks in place, read any node's
details, search, and compare -O0 with -O2.

Layout: graphviz lays out, at build time, the body of each block instance on its own (its
nodes, and its child blocks as folded boxes), and the model's top level. The page puts those
pieces together for whatever is open: an opened block's box grows to hold its body's layout,
and what lies below it moves down (beside it, aside). So the file holds one layout per
block, not one per fold state (2^blocks of them), and it needs no layout engine of its own.
The boxes are sized by graphviz (pango, Liberation Sans) for the page's own font stack
(Liberation Sans, Arial, Helvetica: the same widths).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from importlib import resources

from netc.compiler.ir import Graph, Node
from netc.compiler.limits import DOT_TIMEOUT
from netc.compiler.summary import fmt_count, op_text, summarize
from netc.specs import catalogue

from . import labels
from .errors import RenderError

MAX_EXPLORED_NODES = 20000  # nodes over all models and levels: past that the page would not open in a second


class Explorer:
    """The explorer page of some models (a notebook shows it inline: ``_repr_html_``).

    Example:
        >>> import netc
        >>> page = netc.compile_file("examples/lenet.net").explore("LeNet")
        >>> page.html.startswith("<!DOCTYPE html>")
        True
    """

    def __init__(self, html_text: str, title: str):
        self.html = html_text
        self.title = title

    def save(self, path: str) -> str:
        from ..emit_kit import write_atomic

        write_atomic(str(path), self.html.encode())
        return str(path)

    def _repr_html_(self) -> str:
        """The page in an iframe (its script and styles stay its own)."""
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" title="{html.escape(self.title)}" '
                'style="width:100%;height:640px;border:1px solid #ccc"></iframe>')

    def __repr__(self) -> str:
        return f"<netc explorer: {self.title}>"


def explorer_html(levels: dict[int, dict[str, Graph]], pairs=(), reports: dict | None = None,
                  spec: str = "", live: str | None = None) -> str:
    """The page for ``levels`` ({0: {model: graph}, 2: {model: optimised graph}}), the ``pairs``
    among them (``compiler.pipeline.Pair``), and ``reports`` ({model: [(pass, level, purpose,
    [(what, where)])]}: what each pass of the highest level did). ``live``: the version of the
    spec's files the page is built from (``netc view``): the page polls ``/version`` of the
    server that sent it and reloads when that is another."""
    total = sum(len(g) for gs in levels.values() for g in gs.values())
    if total > MAX_EXPLORED_NODES:
        raise RenderError(f"the explorer would hold {total:,} nodes; it opens quickly up to {MAX_EXPLORED_NODES:,}: "
                          "pick one model with --model")
    files: dict[str, list[str]] = {}
    data = {"spec": spec, "levels": {}, "views": _views(levels[0], pairs), "files": files, "error": None,
            "live": live}
    layouts = _Layouts()
    for level, graphs in levels.items():
        models = {name: _Model(g, files, layouts).data for name, g in graphs.items()}
        passes = {m: [{"pass": p, "level": lv, "purpose": why, "rewrites": [{"what": w, "where": at} for w, at in rw]}
                      for p, lv, why, rw in r] for m, r in (reports or {}).items()} if level else {}
        data["levels"][str(level)] = {"models": models, "passes": passes}
    layouts.run()
    title = ", ".join(v["name"] for v in data["views"]) or spec
    return page(data, title)


def error_html(spec: str, diagnostics: str, live: str) -> str:
    """The page of a spec with errors (``netc view``): its diagnostics, and the same polling."""
    return page({"spec": spec, "levels": {}, "views": [], "files": {}, "error": diagnostics, "live": live},
                f"{spec}: errors")


def page(data: dict, title: str) -> str:
    """The HTML: the template with the styles, the script and the data inline."""
    here = resources.files(__package__)
    parts = {"title": html.escape(title), "css": (here / "explorer.css").read_text(),
             "data": json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c"),
             "js": (here / "explorer.js").read_text()}
    # one pass over the template: what is put in (a spec's text) is never read for placeholders
    return re.sub(r"\{\{(title|css|data|js)\}\}", lambda m: parts[m.group(1)], (here / "explorer.html").read_text())


def _views(graphs: dict[str, Graph], pairs) -> list[dict]:
    """What the page can show: each pair (both models and the hand-off), then each model."""
    out = []
    for p in pairs:
        (r1, m1), (r2, m2) = p.roles
        if m1 in graphs and m2 in graphs:
            ins = [n.id for n in graphs[m2].input_nodes()]
            names = [name for name, _ in graphs[m1].outputs]
            targets = names if all(n in ins for n in names) else ins[:len(names)]
            hand = [[f"return.{i}", t, graphs[m1].type_of(ref).shape_str()]
                    for i, ((_, ref), t) in enumerate(zip(graphs[m1].outputs, targets))]
            out.append({"name": p.name, "models": [m1, m2], "roles": [r1, r2], "handoffs": hand})
    return out + [{"name": m, "models": [m], "roles": [], "handoffs": []} for m in graphs]


class _Model:
    """One graph as the page reads it: items (nodes, blocks, outputs) with their details and
    the text of their boxes, the tree of blocks, the edges, and one layout per block."""

    def __init__(self, g: Graph, files: dict[str, list[str]], layouts: _Layouts):
        self.g, self.files = g, files
        s = summarize(g)
        self.rows = {r.name: r for r in s.rows}
        items: dict[str, dict] = {}
        children: dict[str, list[str]] = {"": []}
        for path, b in g.blocks.items():
            key = "b:" + path
            items[key] = self._block(path)
            children.setdefault(key, [])
            children["b:" + b.parent if b.parent else ""].append(key)
        shown = [n for n in g.nodes() if n.op != "constant"]
        for n in shown:
            items["n:" + n.id] = self._node(n)
            children["b:" + n.block if n.block else ""].append("n:" + n.id)
        edges = []
        for n in shown:
            for ref in n.inputs:
                src = g.producer(ref)
                if src.op != "constant":
                    edges.append(["n:" + src.id, "n:" + n.id, g.type_of(ref).shape_str()])
        for i, (name, ref) in enumerate(g.outputs):
            t = g.type_of(ref)
            items[f"o:{i}"] = {"kind": "output", "title": name or "output", "lines": [[name or "output"], [str(t)]],
                               "outputs": [str(t)], "path": f"return.{i}"}
            children[""].append(f"o:{i}")
            src = g.producer(ref)
            if src.op != "constant":
                edges.append(["n:" + src.id, f"o:{i}", t.shape_str()])
        self.data = {"name": g.name, "title": f"{s.params:,} params · {fmt_count(s.macs)} MACs", "items": items,
                     "children": children, "edges": edges, "layouts": {}}
        for container, members in children.items():
            layouts.add(self.data, container, members, items, self._member_edges(container, edges, items))

    def _member_edges(self, container: str, edges: list, items: dict) -> list[tuple[str, str]]:
        """The edges between the members of ``container`` (an edge to a node inside a member
        block ends at that block)."""
        def member(key: str) -> str | None:
            while key:
                parent = items[key].get("parent", "")
                if parent == container:
                    return key
                key = parent
            return None

        out = []
        for s, d, _ in edges:
            a, b = member(s), member(d)
            if a and b and a != b and (a, b) not in out:
                out.append((a, b))
        return out

    def _src(self, span) -> list | None:
        if span is None or span.source is None:
            return None
        path = span.source.path
        if path not in self.files:
            self.files[path] = span.source.lines
        return [path, span.line, span.column]

    def _block(self, path: str) -> dict:
        b, row = self.g.blocks[path], self.rows[path]
        parent = "b:" + b.parent if b.parent else ""
        if b.index is not None:
            title, sub = b.name, f"copy {b.index + 1} of {self.g.blocks[b.parent].count}"
        else:
            title, sub = b.label, ""
        notes = " · ".join(x for x in [path, f"{labels.count(row.params)} params" if row.params else ""] if x)
        return {"kind": "stack" if b.kind == "stack" else "block", "title": title, "path": path, "parent": parent,
                "lines": [[title] + ([sub] if sub else []), [notes], [f"out {row.shape}"]],
                "block": b.name, "count": b.count, "index": b.index, "params": row.params,
                "macs": fmt_count(row.macs), "outputs": [row.shape], "src": self._src(b.span),
                "args": {k: labels.num(v) for k, v in b.args.items() if isinstance(v, (int, float, str, bool, tuple))},
                "shares": b.shares}

    def _node(self, n: Node) -> dict:
        g = self.g
        own = 0 if n.layer and n.layer != n.id else sum(p.numel for p in n.params.values() if not p.buffer)
        if n.op == "input":
            lines = [[n.id], [str(n.type)]]
        else:
            notes = [f"weights of {n.layer}"] if n.layer and n.layer != n.id else \
                [x for x in [labels.informative_name(n)] if x]
            if own:
                notes.append(f"{labels.count(own)} params")
            first = [labels.op_title(n)] + [x for x in [labels.op_detail(n, g)] if x]
            lines = [first] + ([[" · ".join(notes)]] if notes else [])
        op = catalogue.get(n.op)
        return {"kind": "input" if n.op == "input" else "node", "op": op_text(n), "title": labels.op_title(n),
                "path": n.id, "parent": "b:" + n.block if n.block else "", "lines": lines,
                "family": "io" if n.op == "input" else (op.group if op else "math"),
                "attrs": _attrs(n), "inputs": [[g.producer(r).id if g.producer(r).op != "constant"
                                                 else "constant " + labels.num(g.producer(r).attrs.value),
                                                 str(g.type_of(r))] for r in n.inputs],
                "outputs": [str(t) for t in n.types], "params": own,
                "weights": [[k, "×".join(map(str, p.shape)) if p.shape else "scalar", p.numel]
                            for k, p in zip(n.param_names(), n.params.values())],
                "macs": fmt_count(n.macs), "src": self._src(n.span), "layer": n.layer}


def _attrs(n: Node) -> dict[str, str]:
    a = n.attrs
    if a is None or not hasattr(type(a), "model_fields"):
        return {}
    out = {}
    for k in type(a).model_fields:
        v = getattr(a, k)
        if hasattr(v, "graph"):  # a scan's cell
            v = getattr(v, "name", "cell")
        elif hasattr(v, "scope"):  # a tied layer
            v = v.scope
        text = labels.num(v) if isinstance(v, (int, float, bool, tuple)) else str(v)
        out[k] = text if len(text) <= 120 else text[:119] + "…"
    return out


class _Layouts:
    """Every container's layout, from one run of ``dot -Tplain`` over all of them."""

    def __init__(self):
        self.jobs: list[tuple[dict, str, list[str]]] = []
        self.source: list[str] = []

    def add(self, model: dict, container: str, members: list[str], items: dict, edges) -> None:
        from .dot import FONT, _esc, _small, _table

        ids = {k: f"i{i}" for i, k in enumerate(members)}
        lines = [f"digraph g{len(self.jobs)} {{", 'rankdir="TB" nodesep="0.3" ranksep="0.35"',
                 f'node [shape="box" fontname="{FONT}" fontsize="11" margin="0.14,0.06" height="0.3"]']
        for k in members:
            it = items[k]
            rows = [[f"<B>{_esc(it['lines'][0][0])}</B>"] + [_esc(x) for x in it["lines"][0][1:]]]
            rows += [[_small(x[0])] for x in it["lines"][1:] if x and x[0]]
            lines.append(f"{ids[k]} [label={_table(rows)}]")
        lines += [f"{ids[a]} -> {ids[b]}" for a, b in edges]
        lines.append("}")
        self.source.append("\n".join(lines))
        self.jobs.append((model, container, members))

    def run(self) -> None:
        if not self.jobs:
            return
        exe = shutil.which("dot")
        if exe is None:
            raise RenderError("graphviz's `dot` program is not installed or not on PATH "
                              "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)")
        try:
            done = subprocess.run([exe, "-Tplain"], input="\n".join(self.source).encode(), capture_output=True,
                                  timeout=DOT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise RenderError(f"dot did not lay out the explorer in {DOT_TIMEOUT:g} s (the limit): "
                              "pick one model with --model") from None
        if done.returncode != 0:
            raise RenderError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
        graphs = done.stdout.decode().split("\nstop")
        for (model, container, members), text in zip(self.jobs, graphs):
            pos, height = {}, 0.0
            for line in text.splitlines():
                f = line.split()
                if f and f[0] == "graph":
                    height = float(f[3])
                elif f and f[0] == "node":
                    i = int(f[1][1:])
                    x, y, w, h = (float(v) * 72 for v in f[2:6])
                    pos[members[i]] = [round(x, 1), round(height * 72 - y, 1), round(w, 1), round(h, 1)]
            model["layouts"][container] = pos
