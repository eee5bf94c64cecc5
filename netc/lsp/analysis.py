"""One compilation of an editor's buffer, and what the language server asks of it.

:func:`analyse` compiles a document's text (its imports from disk) exactly as ``netc check``
compiles the file, and keeps what the features need even when the spec has errors: the
diagnostics, the loader's workspace (every parsed file and its namespace: definitions,
references, symbols, completion) and the graphs of the models that elaborated (hover, inlay
hints), with their summary rows. Nothing here imports pygls.
"""

from __future__ import annotations

import bisect
import functools
import os
from dataclasses import dataclass, field

from netc.compiler import ast
from netc.compiler.ir import BlockInstance, Graph, Node
from netc.compiler.limits import DEFAULT_MAX_PARAMS
from netc.compiler.loader import Workspace, display_path
from netc.compiler.parse import parse
from netc.compiler.pipeline import Compiled, compile_spec
from netc.compiler.source import Diagnostic, SourceFile, Span, SpecError
from netc.compiler.summary import Row, summarize

from .names import Index

Pos = tuple[int, int]  # (line, column), both from 1, in characters: as a Span counts


@dataclass
class Entry:
    """An IR node or block instance whose span lies in the document."""

    graph: Graph
    item: Node | BlockInstance
    start: int  # character offsets in the document's text
    end: int

    @property
    def is_block(self) -> bool:
        return isinstance(self.item, BlockInstance)


@dataclass
class Analysis:
    path: str  # the document's file system path (it need not exist)
    text: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    more: int = 0
    stopped: bool = False
    workspace: Workspace | None = None
    compiled: Compiled | None = None  # filled as far as the compilation got (graphs of the good models)
    module: ast.Module | None = None  # the document's AST (None: a syntax error)
    failure: str | None = None  # an internal error, reported as a log message

    @functools.cached_property
    def source(self) -> SourceFile:
        if self.module is not None:
            return self.module.span.source
        return SourceFile(display_path(self.path), self.text)

    @property
    def key(self) -> str:
        return os.path.realpath(self.path)

    @property
    def graphs(self) -> dict[str, Graph]:
        return dict(self.compiled.graphs) if self.compiled is not None else {}

    @functools.cached_property
    def files(self) -> dict[str, str]:
        """A span's shown path -> the real path of its file."""
        out = {display_path(self.path): self.key}
        if self.workspace is not None:
            for key, module in self.workspace.modules.items():
                out[module.span.source.path] = key
        return out

    @functools.cached_property
    def index(self) -> Index | None:
        """Where each name of the spec and its imports is declared and used."""
        return Index(self.workspace) if self.workspace is not None else None

    @functools.cached_property
    def rows(self) -> dict[str, dict[str, Row]]:
        """model -> scope (node id or block path) -> its summary row."""
        return {name: {r.name: r for r in summarize(g).rows} for name, g in self.graphs.items()}

    @functools.cached_property
    def entries(self) -> list[Entry]:
        """The IR nodes and block instances written in this document, by start offset."""
        path, out = self.source.path, []
        for g in self.graphs.values():
            for n in g.nodes():
                if n.span is not None and n.span.path == path and n.op != "constant":
                    out.append(Entry(g, n, *self.offsets(n.span)))
            for b in g.blocks.values():
                if b.span is not None and b.span.path == path:
                    out.append(Entry(g, b, *self.offsets(b.span)))
        out.sort(key=lambda e: (e.start, -e.end))
        return out

    def offsets(self, span: Span) -> tuple[int, int]:
        return self.offset((span.line, span.column)), self.offset((span.end_line, span.end_column))

    def offset(self, pos: Pos) -> int:
        starts = self.source.line_starts
        line = min(max(pos[0], 1), len(starts))
        return starts[line - 1] + pos[1] - 1

    def position(self, offset: int) -> Pos:
        return self.source.position(offset)

    def at(self, offset: int) -> list[Entry]:
        """The entries of the smallest span holding ``offset`` (several: a block body's node in
        every instance, a stack and its copies)."""
        starts = [e.start for e in self.entries]
        hi = bisect.bisect_right(starts, offset)
        best, size = [], None
        for e in self.entries[:hi]:
            if e.start <= offset < e.end or (e.start == e.end == offset):
                s = e.end - e.start
                if size is None or s < size:
                    best, size = [e], s
                elif s == size and (e.start == best[0].start):
                    best.append(e)
        return best

    def with_span(self, start: int, end: int) -> list[Entry]:
        """The entries whose span is exactly ``text[start:end]``."""
        lo = bisect.bisect_left([e.start for e in self.entries], start)
        out = []
        for e in self.entries[lo:]:
            if e.start != start:
                break
            if e.end == end:
                out.append(e)
        return out


def analyse(path: str, text: str, max_params: int = DEFAULT_MAX_PARAMS) -> Analysis:
    """Compile ``text`` as the spec at ``path``: never raises (an internal error becomes
    ``failure``, with the diagnostics found so far)."""
    out = Analysis(path, text)

    def on_load(ws: Workspace, compiled: Compiled) -> None:
        out.workspace, out.compiled = ws, compiled
        module = ws.modules.get(ws.root) if ws.root else None
        out.module = module

    try:
        out.compiled = compile_spec(path, None, None, max_params=max_params, text=text, on_load=on_load)
    except SpecError as e:
        out.diagnostics, out.more, out.stopped = e.diagnostics, e.more, e.stopped
    except RecursionError:
        out.diagnostics = [Diagnostic("the spec nests too deeply to compile", Span(out.source, 1, 1, 1, 1))]
    except Exception as e:  # noqa: BLE001 -- a bug in netc must not end the server
        out.failure = f"internal error while checking {display_path(path)}: {type(e).__name__}: {e}"
    if out.module is None and out.workspace is None:
        module = _parse_only(path, text)
        out.module = module
    return out


def _parse_only(path: str, text: str) -> ast.Module | None:
    try:
        module = parse(SourceFile(display_path(path), text))
    except Exception:  # noqa: BLE001
        return None
    return module if isinstance(module, ast.Module) else None
