"""``netc view SPEC``: the explorer page served on localhost, rebuilt when the spec (or a file
it imports) changes; the page polls ``/version`` and reloads itself. A spec with errors gives
a page of its diagnostics (the same polling: fix the file and the model comes back).

Only the standard library's ``http.server``; it listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import sys
import threading

from netc.compiler.source import SpecError, more_errors
from netc.program import compile_file


class Site:
    """What the server sends: the page of the spec as it is now, built once per version."""

    def __init__(self, spec: str, defines: dict, models: list[str] | None, max_params: int, imports_outside: bool):
        self.spec, self.defines, self.models = spec, defines, models
        self.options = {"max_params": max_params, "allow_imports_outside": imports_outside}
        self.watched: tuple[str, ...] = (spec,)
        self.lock = threading.Lock()
        self.built: tuple[str, bytes] | None = None

    def version(self) -> str:
        """A hash of the size and modification time of every file the spec was read from."""
        stamp = []
        for path in self.watched:
            try:
                st = os.stat(path)
                stamp.append(f"{path}:{st.st_mtime_ns}:{st.st_size}")
            except OSError:
                stamp.append(f"{path}:missing")
        return hashlib.sha1("\n".join(stamp).encode()).hexdigest()[:16]

    def page(self) -> bytes:
        with self.lock:
            v = self.version()
            if self.built is None or self.built[0] != v:
                self.built = (v, self._build(v).encode())
            return self.built[1]

    def _build(self, version: str) -> str:
        from netc.backends.render import RenderError
        from netc.backends.render.explore import error_html

        try:
            prog = compile_file(self.spec, self.defines, self.models, **self.options)
            for name in self.models or []:
                if name not in prog.models:
                    raise RenderError(f"--model {name}: no such model or pair; the spec has "
                                      f"{', '.join(prog.models) or 'none'}")
            self.watched = tuple(dict.fromkeys((self.spec, *prog.sources)))
            return prog.explore(self.models, live=version).html
        except SpecError as e:
            text = "\n".join(d.render(False) for d in sorted(e.diagnostics, key=lambda d: d.sort_key()))
            tail = more_errors(e.more, e.stopped)
            return error_html(self.spec, text + ("\n" + tail if tail else ""), version)
        except (RenderError, OSError) as e:
            return error_html(self.spec, f"netc: error: {e}", version)


def handler(site: Site):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/version":
                self._send(site.version().encode(), "text/plain; charset=utf-8")
            elif path in ("/", "/index.html"):
                self._send(site.page(), "text/html; charset=utf-8")
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away (it reloads while a poll is under way): nothing to say

        def log_message(self, format, *args):  # quiet: a poll every 0.25 s would fill the terminal
            pass

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that hung up is no error; anything else is printed as http.server does."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            super().handle_error(request, client_address)


def serve(args, defines: dict) -> int:
    site = Site(args.spec, defines, args.model, args.max_params, args.allow_imports_outside)
    try:
        server = _Server((args.host, args.port), handler(site))
    except OSError as e:
        print(f"netc: error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/"
    print(f"netc view: serving {args.spec} at {url} (Ctrl-C stops)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
