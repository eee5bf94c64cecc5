"""A real LSP client (pygls's LanguageClient) driving ``python -m netc lsp`` over stdio, on
an event loop of its own in a thread of its own, with blocking calls for tests and
benchmarks. (Its own thread: a pytest worker that ran a browser test holds Playwright's sync
API, whose event loop counts as running in the main thread.)"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]


class Client:
    def __init__(self, init_options: dict | None = None):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="lsp-client", daemon=True)
        self.thread.start()
        self.lc = LanguageClient("netc-tests", "1")
        self.published: dict[str, list[lsp.PublishDiagnosticsParams]] = {}
        self.logs: list[str] = []
        self.versions: dict[str, int] = {}

        @self.lc.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diags(ls, params):
            self.published.setdefault(params.uri, []).append(params)

        @self.lc.feature(lsp.WINDOW_LOG_MESSAGE)
        def _log(ls, params):
            self.logs.append(params.message)

        @self.lc.feature(lsp.WINDOW_SHOW_MESSAGE)
        def _show(ls, params):
            self.logs.append(params.message)

        self.run(lambda: self.lc.start_io(sys.executable, "-m", "netc", "lsp", cwd=str(ROOT)))
        caps = lsp.ClientCapabilities(general=lsp.GeneralClientCapabilities(
            position_encodings=[lsp.PositionEncodingKind.Utf16]))
        self.run(lambda: self.lc.initialize_async(lsp.InitializeParams(
            capabilities=caps, root_uri=ROOT.as_uri(), initialization_options=init_options or {})))
        self.send(self.lc.initialized, lsp.InitializedParams())

    @property
    def process(self):
        return self.lc._server

    def run(self, make, timeout: float = 30):
        """Await what ``make()`` returns, made and awaited on the client's loop."""

        async def go():
            return await asyncio.wait_for(make(), timeout)

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout + 5)

    def send(self, notify, params) -> None:
        """A notification, sent from the client's loop (its transport is not thread-safe)."""

        async def go():
            notify(params)

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)

    def pump(self, seconds: float = 0.0) -> None:
        time.sleep(seconds)

    # -- documents ---------------------------------------------------------------------------
    def open(self, path: Path, text: str | None = None) -> str:
        uri = Path(path).resolve().as_uri()
        self.versions[uri] = 1
        self.published.pop(uri, None)
        self.send(self.lc.text_document_did_open, lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
            uri=uri, language_id="netc", version=1, text=Path(path).read_text() if text is None else text)))
        return uri

    def change(self, uri: str, text: str) -> int:
        self.versions[uri] += 1
        v = self.versions[uri]
        self.send(self.lc.text_document_did_change, lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=v),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))
        return v

    def close(self, uri: str) -> None:
        self.send(self.lc.text_document_did_close, lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))

    def diagnostics(self, uri: str, timeout: float = 20) -> list[lsp.Diagnostic]:
        """The diagnostics published for the document's newest version."""
        want = self.versions[uri]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = [p for p in self.published.get(uri, []) if p.version == want]
            if got:
                return list(got[-1].diagnostics)
            self.pump(0.002)
        raise TimeoutError(f"no diagnostics for {uri} version {want}; logs: {self.logs}")

    # -- requests --------------------------------------------------------------------------
    def hover(self, uri: str, line: int, char: int):
        return self.run(lambda: self.lc.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=char))))

    def definition(self, uri: str, line: int, char: int):
        return self.run(lambda: self.lc.text_document_definition_async(lsp.DefinitionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=char))))

    def references(self, uri: str, line: int, char: int, declaration: bool = True):
        return _listed(self.run(lambda: self.lc.text_document_references_async(lsp.ReferenceParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=char),
            context=lsp.ReferenceContext(include_declaration=declaration)))))

    def completion(self, uri: str, line: int, char: int):
        return self.run(lambda: self.lc.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=char))))

    def symbols(self, uri: str):
        return _listed(self.run(lambda: self.lc.text_document_document_symbol_async(lsp.DocumentSymbolParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri)))))

    def inlay_hints(self, uri: str, lines: int):
        return _listed(self.run(lambda: self.lc.text_document_inlay_hint_async(lsp.InlayHintParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=lines, character=0))))))

    def formatting(self, uri: str):
        return _listed(self.run(lambda: self.lc.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))))

    def configure(self, settings: dict) -> None:
        self.send(self.lc.workspace_did_change_configuration, lsp.DidChangeConfigurationParams(settings=settings))

    def stop(self) -> int | None:
        try:
            self.run(lambda: self.lc.shutdown_async(None), timeout=10)
            self.send(self.lc.exit, None)
            self.run(self.process.wait, timeout=10)
        finally:
            if self.process.returncode is None:
                self.process.kill()
            self.run(lambda: self.lc.stop(), timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
        return self.process.returncode


def _listed(x):
    """A sequence the protocol decoded as a tuple, as a list (None stays None)."""
    return list(x) if isinstance(x, tuple) else x
