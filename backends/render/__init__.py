"""Architecture diagrams: the graph IR drawn with graphviz (``netc render``).

``fold`` decides what is drawn (boxes, block clusters, folded blocks, edges with shapes),
``labels`` the words in the boxes, ``dot`` the graphviz source and the call to ``dot``.

Example:
    >>> import netc
    >>> from netc.backends.render import diagram
    >>> prog = netc.compile_file("examples/lenet.net")
    >>> g = diagram({"LeNet": prog.graph("LeNet")})   # a graphviz.Digraph
    >>> g.source.splitlines()[0]
    'digraph LeNet {'
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from netc.compiler.ir import Graph
from netc.compiler.limits import MAX_DRAWN_BOXES

from ..emit_kit import write_atomic
from .errors import RenderError, RenderWarning, TooLarge

FORMATS = ("svg", "png", "pdf", "dot", "html")
RANKDIRS = ("TB", "LR")
SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".html": "html",
            ".htm": "html"}


def format_for(path: str, fmt: str | None = None) -> str:
    """The format asked for, else the one the file name ends with, else svg (no suffix, or
    ``-``). Another suffix is a ``RenderError`` listing the formats (never SVG in a .jpg)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
        return fmt
    ext = os.path.splitext(os.path.basename(str(path)))[1].lower()
    if not ext:
        return "svg"
    if ext not in SUFFIXES:
        raise RenderError(f"cannot write {ext} files; the formats are {', '.join(SUFFIXES)} "
                          f"(or name one with --format {'|'.join(FORMATS)})")
    return SUFFIXES[ext]


def diagram(graphs: dict[str, Graph], pairs: Iterable = (), depth: int | str | None = None,
            rankdir: str = "TB"):
    """A ``graphviz.Digraph`` of ``graphs`` (name -> Graph), side by side when more than one.

    ``pairs`` (``compiler.pipeline.Pair``) whose two models are both drawn get their hand-off
    edge, from the first model's outputs to the second's inputs. ``depth``: None (every
    block unfolded, one copy of each repeated stack), an int k (blocks nested deeper than k
    levels folded into one box, like ``netc summary --depth k``), or "all" (every node).
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}; got {rankdir!r}")
    from .fold import Depth, fold  # here: `netc check` and `summary` load no drawing code

    dot = _dot()
    d = Depth.of(depth)
    views = [fold(g, d) for g in graphs.values()]
    boxes = sum(len(v.boxes) for v in views)
    if boxes > MAX_DRAWN_BOXES:
        raise RenderError(f"the drawing would have {boxes:,} boxes; graphviz lays out at most {MAX_DRAWN_BOXES:,} "
                          "in reasonable time (the limit): fold blocks with --depth K"
                          + (", or pick one model with --model" if len(views) > 1 else ""))
    handoffs, roles, titles = [], {}, []
    for p in pairs:
        (r1, m1), (r2, m2) = p.roles
        if m1 in graphs and m2 in graphs:
            roles.setdefault(m1, r1)
            roles.setdefault(m2, r2)
            handoffs += _handoffs(graphs[m1], graphs[m2])
            titles.append(f"{p.name}: {r1} {m1} → {r2} {m2}")
    title = titles[0] if len(titles) == 1 and len(graphs) == 2 else None
    return dot.digraph(views, handoffs, roles, rankdir, title)


def to_bytes(g, fmt: str, deadline=None) -> bytes:
    """Draw a ``diagram`` in ``fmt`` (svg, png, pdf) with ``dot``; "dot" gives the source.
    ``deadline`` (a ``limits.Deadline``): dot runs for what is left of it (default: DOT_TIMEOUT)."""
    return _dot().pipe(g, format_for("", fmt), deadline)


def draw(graphs: dict[str, Graph], fmt: str, pairs: Iterable = (), depth: int | str | None = None,
         rankdir: str = "TB", deadline=None) -> tuple[bytes, str | None]:
    """The drawing in ``fmt`` and a note (None, or what was folded to keep it within graphviz's
    limits). A PNG that dot would shrink to fit its bitmap limit is drawn again with blocks
    folded (--depth K, deepest first); if even the top-level blocks folded are too large, a
    ``TooLarge`` error says to write SVG or PDF, or to draw less."""
    pairs = list(pairs)
    try:
        return to_bytes(diagram(graphs, pairs, depth, rankdir), fmt, deadline), None
    except TooLarge as e:
        first = e
    levels = max((len(g.chain(p)) for g in graphs.values() for p in g.blocks), default=0)
    start = levels if depth in (None, "all") else min(levels, int(depth) - 1)
    for k in range(start, 0, -1):
        try:
            data = to_bytes(diagram(graphs, pairs, k, rankdir), fmt, deadline)
        except TooLarge:
            continue
        return data, f"{first}; drew it with blocks folded instead (--depth {k})"
    raise TooLarge(f"{first}{', even with every block folded' if levels else ''}: write SVG or PDF "
                   "(no size limit), or draw less (--model, --depth K)")


def render(graphs: dict[str, Graph], path: str, pairs: Iterable = (), fmt: str | None = None,
           depth: int | str | None = None, rankdir: str = "TB") -> str:
    """Draw and write ``path``; nothing is written when drawing fails. Returns ``path``.
    A note on folding (see :func:`draw`) is a ``RenderWarning``."""
    fmt = format_for(path, fmt)
    if fmt == "html":
        from .explore import explorer_html

        data = explorer_html({0: graphs}, pairs).encode()  # (Program.render adds the -O2 graphs)
    else:
        data, note = draw(graphs, fmt, pairs, depth, rankdir)
        if note:
            import warnings

            warnings.warn(note, RenderWarning, stacklevel=2)
    write_atomic(str(path), data)
    return str(path)


def _handoffs(first: Graph, second: Graph) -> list[tuple[str, str, str]]:
    """Outputs of ``first`` to inputs of ``second``: by name when every output is named after
    an input, else in order (as the pair check matches them)."""
    ins = [n.id for n in second.input_nodes()]
    names = [name for name, _ in first.outputs]
    targets = names if all(n in ins for n in names) else ins[:len(names)]
    return [(f"{first.name}/return.{i}", f"{second.name}/{t}", first.type_of(ref).shape_str())
            for i, ((_, ref), t) in enumerate(zip(first.outputs, targets))]


def _dot():
    try:
        from . import dot
    except ModuleNotFoundError as e:
        if e.name != "graphviz":
            raise
        raise RenderError("diagrams need the graphviz Python package: pip install 'netc[render]'") from None
    return dot


def __getattr__(name: str):
    if name == "Depth":  # loaded when asked for: `netc check` and `summary` load no drawing code
        from .fold import Depth

        return Depth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FORMATS", "Depth", "RenderError", "RenderWarning", "TooLarge", "diagram", "draw", "format_for", "render",
           "to_bytes"]
