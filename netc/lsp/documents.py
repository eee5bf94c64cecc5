"""The documents the language server holds, and how the compiler's spans and diagnostics
become LSP positions, ranges and diagnostics (in the position encoding agreed with the client:
UTF-16 unless it asks for another)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from netc.compiler import ast
from netc.compiler.source import Diagnostic, Span, more_errors

from .analysis import Analysis
from .names import Index


@dataclass
class Doc:
    uri: str
    path: str
    latest: Analysis | None = None  # of the newest text compiled
    good: Analysis | None = None  # the last one with graphs
    timer: asyncio.TimerHandle | None = None
    changed: float = float("-inf")  # the event loop's time of the last change
    running: bool = False
    again: bool = False


def diagnostics(ls: LanguageServer, doc: Doc, a: Analysis) -> list[lsp.Diagnostic]:
    out = []
    for d in a.diagnostics:
        out.append(_diagnostic(ls, doc, a, d))
    tail = more_errors(a.more, a.stopped)
    if tail:
        out.append(lsp.Diagnostic(range=zero_range(), message=tail, severity=lsp.DiagnosticSeverity.Information,
                                  source="netc"))
    return out


def _diagnostic(ls: LanguageServer, doc: Doc, a: Analysis, d: Diagnostic) -> lsp.Diagnostic:
    message = d.message
    related = []
    for note, span in d.notes:
        if span is not None and span.source is not None:
            related.append(lsp.DiagnosticRelatedInformation(location=location(ls, a, span), message=note))
        else:
            message += f"\nnote: {note}"
    if d.hint:
        message += f"\nhint: {d.hint}"
    rng = zero_range()
    if d.span is not None and d.span.path == a.source.path:
        rng = to_range(ls, doc, d.span)
    elif d.span is not None and d.span.source is not None:  # in an imported file: shown at its import
        message = f"{d.span}: {message}"
        related.insert(0, lsp.DiagnosticRelatedInformation(location=location(ls, a, d.span), message=d.message))
        imp = _import_of(a, d.span)
        if imp is not None:
            rng = to_range(ls, doc, imp.span)
    severity = lsp.DiagnosticSeverity.Error if d.severity == "error" else lsp.DiagnosticSeverity.Warning
    return lsp.Diagnostic(range=rng, message=message, severity=severity, source="netc",
                          related_information=related or None)


def _import_of(a: Analysis, span: Span) -> ast.Import | None:
    ws, key = a.workspace, a.files.get(span.path)
    if ws is None or a.module is None:
        return None
    for imp in a.module.imports:
        if key is not None and ws.targets.get(id(imp)) == key:
            return imp
    return a.module.imports[0] if a.module.imports else None


# -- positions -----------------------------------------------------------------------------

def zero_range() -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))


def _lines(ls: LanguageServer, doc: Doc | None, span: Span) -> list[str]:
    if doc is not None and span.path == (doc.latest or doc.good).source.path:
        return ls.workspace.get_text_document(doc.uri).lines
    return span.source.lines


def to_range(ls: LanguageServer, doc: Doc | None, span: Span) -> lsp.Range:
    lines = _lines(ls, doc, span)
    codec = ls.workspace.position_codec
    start = lsp.Position(line=span.line - 1, character=span.column - 1)
    end = lsp.Position(line=span.end_line - 1, character=span.end_column - 1)
    return lsp.Range(start=codec.position_to_client_units(lines, start), end=codec.position_to_client_units(lines, end))


def location(ls: LanguageServer, a: Analysis, span: Span, doc: Doc | None = None) -> lsp.Location:
    real = a.files.get(span.path) or os.path.realpath(span.path)
    return lsp.Location(uri=Path(real).as_uri(), range=to_range(ls, doc, span))


def cursor(ls: LanguageServer, uri: str, position: lsp.Position) -> tuple[int, int]:
    """An LSP position as (line, column) from 1, in characters."""
    td = ls.workspace.get_text_document(uri)
    p = ls.workspace.position_codec.position_from_client_units(td.lines, position)
    return p.line + 1, p.character + 1


def views(doc: Doc) -> list[tuple[Analysis, Index | None]]:
    """The analyses to answer from: the latest, then the last with graphs."""
    out = []
    if doc.latest is not None:
        out.append((doc.latest, doc.latest.index))
    if doc.good is not None and doc.good is not doc.latest:
        out.append((doc.good, doc.good.index))
    return out
