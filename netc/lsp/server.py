"""``netc lsp``: the language server, over stdio (pygls).

Each open document is compiled as ``netc check`` compiles a file, in a worker thread, a
short while after the last change (``debounceMs``, default 25): one compilation at a time,
the newest text wins. Its diagnostics are published; the analysis is kept (the latest, and
the last one that had graphs) so that hover, definitions, references, completion, symbols and
inlay hints answer from it at once. Every handler is guarded: an exception becomes a log
message and an empty answer, never a dead server.

Settings (``initializationOptions``, or ``workspace/didChangeConfiguration`` under ``netc``):
``inlayHints`` (bool, default true): the shape after each pipeline stage; ``debounceMs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from netc import __version__
from netc.compiler import ast

from .analysis import Analysis, analyse
from .complete import completions
from .documents import Doc, cursor, diagnostics, location, to_range, views, zero_range
from .hover import hover, stage_types

_KINDS = {"op": lsp.CompletionItemKind.Function, "block": lsp.CompletionItemKind.Class,
          "cell": lsp.CompletionItemKind.Class, "model": lsp.CompletionItemKind.Module,
          "layer": lsp.CompletionItemKind.Field, "value": lsp.CompletionItemKind.Variable,
          "const": lsp.CompletionItemKind.Constant, "keyword": lsp.CompletionItemKind.Keyword,
          "kwarg": lsp.CompletionItemKind.Property}
_SYMBOLS = {"model": lsp.SymbolKind.Class, "block": lsp.SymbolKind.Function, "cell": lsp.SymbolKind.Function}


class NetcServer(LanguageServer):
    def __init__(self):
        super().__init__("netc", __version__)
        self.docs: dict[str, Doc] = {}
        self.inlay_hints = True
        self.debounce = 0.025
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netc-check")

    def log(self, message: str, kind: lsp.MessageType = lsp.MessageType.Log) -> None:
        self.window_log_message(lsp.LogMessageParams(type=kind, message=message))

    def settings(self, options) -> None:
        if not isinstance(options, dict):
            return
        options = options.get("netc", options)
        if isinstance(options.get("inlayHints"), bool):
            self.inlay_hints = options["inlayHints"]
        if isinstance(options.get("debounceMs"), (int, float)) and options["debounceMs"] >= 0:
            self.debounce = options["debounceMs"] / 1000


server = NetcServer()


def guarded(empty=None):
    """A handler whose exceptions become a log message and ``empty``."""

    def wrap(fn):
        if asyncio.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(ls, params):
                try:
                    return await fn(ls, params)
                except Exception as e:  # noqa: BLE001
                    _report(ls, fn, e)
                    return empty
            return run_async

        @functools.wraps(fn)
        def run(ls, params):
            try:
                return fn(ls, params)
            except Exception as e:  # noqa: BLE001
                _report(ls, fn, e)
                return empty
        return run
    return wrap


def _report(ls: NetcServer, fn, e: Exception) -> None:
    tail = "".join(traceback.format_exception(e)[-3:])
    ls.log(f"netc lsp: internal error in {fn.__name__}: {type(e).__name__}: {e}\n{tail}", lsp.MessageType.Error)


# -- documents and diagnostics -------------------------------------------------------------

def _doc(ls: NetcServer, uri: str) -> Doc:
    doc = ls.docs.get(uri)
    if doc is None:
        path = to_fs_path(uri) if uri.startswith("file:") else None
        doc = ls.docs[uri] = Doc(uri, path or os.path.join(os.getcwd(), os.path.basename(uri) or "untitled.net"))
    return doc


@server.feature(lsp.INITIALIZE)
@guarded()
def initialize(ls: NetcServer, params: lsp.InitializeParams):
    ls.settings(params.initialization_options)


@server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
@guarded()
def did_change_configuration(ls: NetcServer, params: lsp.DidChangeConfigurationParams):
    ls.settings(params.settings)


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
@guarded()
def did_open(ls: NetcServer, params: lsp.DidOpenTextDocumentParams):
    _schedule(ls, _doc(ls, params.text_document.uri), now=True)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
@guarded()
def did_change(ls: NetcServer, params: lsp.DidChangeTextDocumentParams):
    _schedule(ls, _doc(ls, params.text_document.uri))


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
@guarded()
def did_save(ls: NetcServer, params: lsp.DidSaveTextDocumentParams):
    for doc in ls.docs.values():  # a saved file may be imported by another open one
        if doc.uri != params.text_document.uri:
            _schedule(ls, doc)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
@guarded()
def did_close(ls: NetcServer, params: lsp.DidCloseTextDocumentParams):
    doc = ls.docs.pop(params.text_document.uri, None)
    if doc is not None and doc.timer is not None:
        doc.timer.cancel()
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


def _schedule(ls: NetcServer, doc: Doc, now: bool = False) -> None:
    """Check the document: at once after a pause in the changes (a first keystroke is checked
    without waiting), else once they pause for ``debounce`` seconds; one check at a time, of
    the newest text."""
    loop = asyncio.get_running_loop()
    quiet = loop.time() - doc.changed >= ls.debounce
    doc.changed = loop.time()
    if doc.timer is not None:
        doc.timer.cancel()
    delay = 0 if now or (quiet and not doc.running) else ls.debounce
    doc.timer = loop.call_later(delay, lambda: loop.create_task(_check(ls, doc)))


async def _check(ls: NetcServer, doc: Doc) -> None:
    doc.timer = None
    if doc.running:
        doc.again = True
        return
    if ls.docs.get(doc.uri) is not doc or doc.uri not in ls.workspace.text_documents:
        return  # closed meanwhile (pygls would read a closed document from disk)
    doc.running = True
    loop = asyncio.get_running_loop()
    a = None
    try:
        td = ls.workspace.get_text_document(doc.uri)
        text, version = td.source, td.version
        a = await loop.run_in_executor(ls.pool, analyse, doc.path, text)
        if ls.docs.get(doc.uri) is not doc or doc.uri not in ls.workspace.text_documents:
            return  # closed while it was checked: nothing to publish (pygls would read the file from disk)
        if a.failure:
            ls.log(f"netc lsp: {a.failure}", lsp.MessageType.Error)
        doc.latest = a
        if a.graphs or doc.good is None:
            doc.good = a
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=doc.uri, version=version, diagnostics=diagnostics(ls, doc, a)))
    except Exception as e:  # noqa: BLE001
        _report(ls, _check, e)
    finally:
        doc.running = False
        if doc.again:
            doc.again = False
            _schedule(ls, doc, now=True)
    if a is not None and doc.timer is None:
        # what hover needs, made now rather than at the first hover, unless a newer text waits
        # to be checked (a request that comes first makes what it needs itself)
        await loop.run_in_executor(ls.pool, _warm, a)


def _warm(a: Analysis) -> None:
    with contextlib.suppress(Exception):  # the request that needs it then reports it
        a.entries, a.rows, a.files, a.index  # noqa: B018


# -- features ------------------------------------------------------------------------------

@server.feature(lsp.TEXT_DOCUMENT_HOVER)
@guarded()
def on_hover(ls: NetcServer, params: lsp.HoverParams):
    doc = ls.docs.get(params.text_document.uri)
    if doc is None:
        return None
    line, col = cursor(ls, doc.uri, params.position)
    for a, index in views(doc):
        found = hover(a, index, line, col)
        if found is not None:
            text, (start, end) = found
            span = a.source.span(start, end)
            return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text),
                             range=to_range(ls, doc, span) if a is doc.latest else None)
    return None


def _occ(ls: NetcServer, uri: str, position: lsp.Position):
    doc = ls.docs.get(uri)
    if doc is None:
        return None
    line, col = cursor(ls, uri, position)
    for a, index in views(doc):
        if index is None:
            continue
        o = index.at(a.key, line, col)
        if o is not None:
            return doc, a, index, o
        imp = _import_at(a, line, col)
        if imp is not None:
            return doc, a, index, imp
    return None


def _import_at(a: Analysis, line: int, col: int) -> ast.Import | None:
    for imp in a.module.imports if a.module is not None else ():
        s = imp.span
        if s.line <= line <= s.end_line and (line, col) >= (s.line, s.column) and (line, col) <= (s.end_line,
                                                                                                 s.end_column):
            return imp
    return None


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
@guarded()
def on_definition(ls: NetcServer, params: lsp.DefinitionParams):
    found = _occ(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    doc, a, index, o = found
    if isinstance(o, ast.Import):
        target = a.workspace.targets.get(id(o)) if a.workspace is not None else None
        return lsp.Location(uri=Path(target).as_uri(), range=zero_range()) if target else None
    span = index.target_span(index.resolve(a.key, o))
    if span is None:
        return None
    return location(ls, a, span, doc if a is doc.latest else None)


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
@guarded()
def on_references(ls: NetcServer, params: lsp.ReferenceParams):
    found = _occ(ls, params.text_document.uri, params.position)
    if found is None or isinstance(found[3], ast.Import):
        return None
    doc, a, index, o = found
    spans = index.references(a.key, o)
    if not params.context.include_declaration:
        head = index.target_span(index.resolve(a.key, o))
        spans = [s for s in spans if s != head]
    return [location(ls, a, s, doc if a is doc.latest else None) for s in spans]


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[">", "(", ",", " "]))
@guarded()
def on_completion(ls: NetcServer, params: lsp.CompletionParams):
    doc = ls.docs.get(params.text_document.uri)
    if doc is None:
        return None
    td = ls.workspace.get_text_document(doc.uri)
    line, col = cursor(ls, doc.uri, params.position)
    offset = sum(len(x) for x in td.lines[: line - 1]) + col - 1
    known = views(doc)
    # the newest analysis that parsed (a half-written line does not): its names are in scope
    a, index = next(((a, i) for a, i in known if i is not None and a.key in i.ws.namespaces), (None, None))
    items = completions(td.source, offset, index, a.key if a else os.path.realpath(doc.path),
                        a.module if a else None)
    return lsp.CompletionList(is_incomplete=False, items=[
        lsp.CompletionItem(label=it.label, kind=_KINDS.get(it.kind), detail=it.detail,
                           label_details=lsp.CompletionItemLabelDetails(description=it.kind),
                           documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=it.doc)
                           if it.doc else None,
                           insert_text=it.insert, sort_text=f"{it.sort}{it.label}") for it in items])


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded()
def on_symbols(ls: NetcServer, params: lsp.DocumentSymbolParams):
    doc = ls.docs.get(params.text_document.uri)
    if doc is None:
        return None
    a = next((a for a, _ in views(doc) if a.module is not None), None)
    if a is None:
        return []
    fresh = doc if a is doc.latest else None
    from .names import decl_name_span

    out = []
    for d in a.module.decls:
        children = []
        if isinstance(d, ast.FuncDecl):
            kind, detail = _SYMBOLS.get(d.kind, lsp.SymbolKind.Function), d.kind
            for stmt in d.body:
                if isinstance(stmt, (ast.Let, ast.ParamStmt)):
                    what = lsp.SymbolKind.Field if isinstance(stmt, ast.Let) else lsp.SymbolKind.Variable
                    children.append(lsp.DocumentSymbol(
                        name=stmt.name.id, kind=what, range=to_range(ls, fresh, stmt.span),
                        selection_range=to_range(ls, fresh, stmt.name.span),
                        detail="let" if isinstance(stmt, ast.Let) else "param"))
        elif isinstance(d, ast.PairDecl):
            kind, detail = lsp.SymbolKind.Struct, "pair"
        else:
            kind, detail = lsp.SymbolKind.Constant, "const"
        out.append(lsp.DocumentSymbol(name=d.name, kind=kind, detail=detail, range=to_range(ls, fresh, d.span),
                                      selection_range=to_range(ls, fresh, decl_name_span(d)),
                                      children=children or None))
    return out


@server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT, lsp.InlayHintOptions(resolve_provider=False))
@guarded(empty=[])
def on_inlay_hints(ls: NetcServer, params: lsp.InlayHintParams):
    doc = ls.docs.get(params.text_document.uri)
    if doc is None or not ls.inlay_hints or doc.latest is None:
        return []
    a = doc.latest
    td = ls.workspace.get_text_document(doc.uri)
    if td.source != a.text:
        return []  # the hints of an older text would land in the wrong places
    lines, codec = td.lines, ls.workspace.position_codec
    first, last = params.range.start.line, params.range.end.line
    out = []
    for offset, ty in stage_types(a):
        line, col = a.position(offset)
        if first <= line - 1 <= last:
            pos = codec.position_to_client_units(lines, lsp.Position(line=line - 1, character=col - 1))
            out.append(lsp.InlayHint(position=pos, label=f": {ty}", kind=lsp.InlayHintKind.Type,
                                     padding_left=False, padding_right=True))
    return out


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
@guarded(empty=[])
def on_formatting(ls: NetcServer, params: lsp.DocumentFormattingParams):
    doc = _doc(ls, params.text_document.uri)
    td = ls.workspace.get_text_document(doc.uri)
    from netc.compiler.source import SpecError
    from netc.fmt import format_source

    try:
        formatted = format_source(td.source, doc.path)
    except SpecError as e:  # a spec that does not parse (or would not keep its AST) is left as it is
        ls.log(f"netc lsp: not formatted: {e}", lsp.MessageType.Info)
        return []
    if formatted == td.source:
        return []
    whole = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=len(td.lines), character=0))
    return [lsp.TextEdit(range=whole, new_text=formatted)]


def main() -> int:
    server.start_io()
    return 0
