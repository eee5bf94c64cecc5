"""Views -> graphviz source (through the ``graphviz`` package); the ``dot`` program draws it.

Everything here is a pure function of the views: names come from the spec's scopes, the
order is the graph's, colours come from the op's catalogue group. The same spec gives the
same bytes.
"""

from __future__ import annotations

import contextlib
import html
import re
import shutil
import subprocess

import graphviz
from netc.compiler.limits import DOT_TIMEOUT, Deadline

from .errors import RenderError, TooLarge
from .fold import Box, Cluster, View

# Liberation Sans is metric-compatible with Arial and Helvetica: graphviz (pango) measures the
# text with it here, and a browser draws it with Liberation Sans, Arial or Helvetica at the same
# widths. Each line of a label is a table row, each run of text a cell of its own: runs never
# rely on a space character (SVG drops leading spaces) and CELLSPACING puts real room between
# them, across as well as down.
FONT = "Liberation Sans,Arial,Helvetica,sans-serif"
BITMAP_LIMIT = 32767  # cairo's largest bitmap side, in pixels: dot scales a larger PNG down
GAP = 3  # points between two runs of text in a label (table CELLSPACING)

# One fill per op family (the catalogue's `group`), pale enough for black text.
FAMILY_FILL = {
    "conv": "#cfe2f3",
    "dense": "#d9ead3",
    "norm": "#fff2cc",
    "activation": "#fce5cd",
    "pool": "#d0e0e3",
    "shape": "#eeeeee",
    "recurrent": "#ead1dc",
    "attention": "#d9d2e9",
    "math": "#ffffff",
    "block": "#c9d6e3",
}
IO_FILL = "#37474f"
CLUSTER_FILL = ("#f5f7f9", "#eaeef2", "#dfe5eb", "#d4dce4")
NOTE = "#555555"
IO_NOTE = "#cfd8dc"
HANDOFF = "#c62828"


def digraph(views: list[View], handoffs: list[tuple[str, str, str]], roles: dict[str, str],
            rankdir: str = "TB", title: str | None = None) -> graphviz.Digraph:
    """One picture of the views; more than one view puts each in its own cluster.

    ``handoffs`` are (``model/return.i``, ``model/input``, shape) edges between the views;
    ``roles`` names a model's role in a pair (``generator``) for its cluster label.
    """
    name = title or (views[0].model if len(views) == 1 else "netc")
    g = graphviz.Digraph(name=name)
    g.attr(rankdir=rankdir, fontname=FONT, fontsize="12", nodesep="0.3", ranksep="0.35",
           newrank="true", labelloc="t", label=_title(views, title))
    g.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="11",
           margin="0.14,0.06", penwidth="0.8", color="#5f6b73", height="0.3")
    g.attr("edge", fontname=FONT, fontsize="9", fontcolor=NOTE, color="#5f6b73", arrowsize="0.6",
           penwidth="0.9")
    if len(views) == 1:
        _emit_view(g, views[0])
    for v in views if len(views) > 1 else []:
        with _cluster(g, f"cluster_{v.model}") as sub:
            role = roles.get(v.model)
            head = _bold(f"{role}: {v.model}" if role else v.model)
            rest = v.title.partition(" · ")[2]
            sub.attr(label=_table([[head]] + ([[_small(rest)]] if rest else []), align="LEFT"),
                     style="rounded", color=IO_FILL, penwidth="1.4", labeljust="l", margin="14")
            _emit_view(sub, v)
    for src, dst, shape in handoffs:
        g.edge(src, dst, label=f" hand-off {shape}", color=HANDOFF, fontcolor=HANDOFF, penwidth="1.6",
               style="bold", constraint="false")
    return g


def pipe(g: graphviz.Digraph, fmt: str, deadline: Deadline | None = None) -> bytes:
    """The drawing in ``fmt`` (svg, png, pdf; dot is the source itself). ``dot`` runs for what
    is left of ``deadline`` (``netc render``: one bound for the whole command), else for
    DOT_TIMEOUT seconds."""
    if fmt == "dot":
        return g.source.encode()
    if fmt == "png":
        g = g.copy()
        g.attr(dpi="144")
    exe = shutil.which("dot")
    if exe is None:
        raise RenderError("graphviz's `dot` program is not installed or not on PATH "
                          "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)")
    timeout = DOT_TIMEOUT if deadline is None else deadline.left()
    try:  # not graphviz's pipe(): it has no time limit, and a big layout can run for hours
        if timeout <= 0:
            raise subprocess.TimeoutExpired(exe, 0)
        done = subprocess.run([exe, f"-T{fmt}"], input=g.source.encode(), capture_output=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:  # run() has killed it
        limit = (f"dot did not finish drawing in {DOT_TIMEOUT:g} s (the limit)" if deadline is None else
                 f"netc render did not finish in {deadline.seconds:g} s (the limit; dot was stopped after "
                 f"{timeout:.1f} s)")
        raise RenderError(f"{limit}; draw less: fold blocks with --depth K, or pick one model with --model") from None
    except OSError as e:
        raise RenderError(f"cannot run dot: {e.strerror or e}") from None
    err = done.stderr.decode(errors="replace").strip()
    if done.returncode != 0:
        raise RenderError(f"dot failed: {err or f'exit status {done.returncode}'}")
    if "too large for cairo-renderer bitmaps" in err:  # dot scaled the picture down to fit
        raise TooLarge(f"the drawing is larger than graphviz's bitmap limit ({BITMAP_LIMIT:,} px a side) "
                       f"and dot would shrink it ({err.splitlines()[-1].removeprefix('dot: ')})")
    return _undated(done.stdout) if fmt == "pdf" else done.stdout


def _undated(pdf: bytes) -> bytes:
    """cairo stamps a PDF with the time it was made; a fixed stamp of the same length keeps
    the file byte-stable (and its cross-reference offsets right)."""
    return re.sub(rb"/CreationDate \(D:\d{14}Z\)", b"/CreationDate (D:19700101000000Z)", pdf)


# -- one model -----------------------------------------------------------------------------------
def _emit_view(g, v: View) -> None:
    def emit(container, parent: str | None) -> None:
        for kind, key in v.members.get(parent, []):
            if kind == "box":
                container.node(_id(v, key), **_box_attrs(v.boxes[key]))
                continue
            with _cluster(container, f"cluster_{v.model}/{key}") as sub:
                sub.attr(**_cluster_attrs(v.clusters[key]))
                emit(sub, key)

    emit(g, None)
    for src, dst, shape in v.edges:
        g.edge(_id(v, src), _id(v, dst), label=f" {shape}")


@contextlib.contextmanager
def _cluster(parent: graphviz.Digraph, name: str):
    """A subgraph, added to ``parent`` when the block ends: ``parent.subgraph(name=...)``
    without its copy of the parent's body (a copy per cluster made drawing a model with many
    top-level blocks quadratic). The same DOT text."""
    sub = graphviz.Digraph(name=name)
    yield sub
    parent.subgraph(sub)


def _id(v: View, key: str) -> str:
    return f"{v.model}/{key}"


def _box_attrs(b: Box) -> dict[str, str]:
    io = b.kind in ("input", "output")
    first = [_bold(b.title)] + ([_esc(b.detail)] if b.detail else [])
    label = _table([first] + [[_small(n, IO_NOTE if io else NOTE)] for n in b.notes if n])
    if io:
        return dict(label=label, shape="invhouse" if b.kind == "input" else "house", style="filled",
                    fillcolor=IO_FILL, fontcolor="white", color=IO_FILL, margin="0.1,0.04",
                    **{"class": b.kind})
    attrs = dict(label=label, fillcolor=FAMILY_FILL.get(b.family, "#ffffff"), **{"class": f"{b.kind} {b.family}"})
    if b.kind == "block":
        attrs.update(style="filled,bold" if not b.repeat else "filled", penwidth="1.2")
        if b.repeat:
            attrs.update(shape="box3d")
    return attrs


def _cluster_attrs(c: Cluster) -> dict[str, str]:
    head = [_bold(c.block + (f" ×{c.repeat}" if c.repeat else ""))]  # one run a line: see FONT
    sub = [c.path + (f" · {c.params:,} params" if c.params else "")]
    if c.one_copy:
        sub.append(f"one of {c.repeat} copies drawn")
    if c.shares:
        sub.append(f"shares the weights of {c.shares}")
    attrs = {"label": _table([head] + [[_small(s)] for s in sub if s], align="LEFT"), "labeljust": "l",
             "style": "rounded,filled", "fillcolor": CLUSTER_FILL[min(c.level, len(CLUSTER_FILL) - 1)],
             "color": "#9aa5b1", "fontsize": "10", "margin": "10"}
    if c.repeat:
        attrs.update(style="rounded,filled,bold", color="#37474f", penwidth="1.6", fontsize="11")
    return attrs


def _title(views: list[View], title: str | None) -> str:
    if title:
        return _table([[_bold(title)]])
    if len(views) == 1:
        head, _, rest = views[0].title.partition(" · ")
        return _table([[_bold(head)]] + ([[_small(rest)]] if rest else []))
    return ""


# -- HTML-like labels ----------------------------------------------------------------------------
def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


def _bold(text: str) -> str:
    return f"<B>{_esc(text)}</B>" if text else ""


def _small(text: str, colour: str = NOTE) -> str:
    """A run of small text."""
    return f'<FONT POINT-SIZE="9" COLOR="{colour}">{_esc(text)}</FONT>' if text else ""


def _table(rows: list[list[str]], align: str = "CENTER") -> str:
    """An HTML-like label: one row per line, one cell per run of text, GAP points apart.
    A row with fewer cells than the widest spans it (its last cell takes the rest)."""
    rows = [[c for c in r if c] for r in rows]
    rows = [r for r in rows if r]
    width = max(len(r) for r in rows)
    out = []
    for r in rows:
        cells = [f'<TD ALIGN="{align}">{c}</TD>' for c in r[:-1]]
        span = f' COLSPAN="{width - len(r) + 1}"' if len(r) < width else ""
        cells.append(f'<TD ALIGN="{align}"{span}>{r[-1]}</TD>')
        out.append("<TR>" + "".join(cells) + "</TR>")
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="{GAP}" CELLPADDING="0">{"".join(out)}</TABLE>>'
