"""Source text, spans and diagnostics.

Every AST and IR node carries a :class:`Span`. Errors are collected as
:class:`Diagnostic` values and rendered the way compilers do::

    examples/lenet.net:7:23: error: linear needs a 2-d input [N, F]; got float[N, 64, 7, 7]
        return features -> linear(128) -> relu -> linear(10)
                           ^^^^^^^^^^^
      note: float[N, 64, 7, 7] comes from maxpool2d at examples/lenet.net:5:49
      hint: put `flatten` before `linear`
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import re
import sys
from dataclasses import field

from .limits import MAX_ERRORS, Budget
from .records import Record

# Every line break that str.splitlines knows ("\r\n" is one break): line numbers, columns and
# the excerpt shown under a diagnostic all count lines this way, so they agree for CR-only
# and CRLF files and for U+2028 and the other separators.
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


class SourceFile(Record):
    path: str  # as shown to the user
    text: str

    @functools.cached_property
    def lines(self) -> list[str]:  # split once: a file with thousands of errors shows thousands of lines
        return self.text.splitlines()

    def line(self, n: int) -> str:
        return self.lines[n - 1] if 0 < n <= len(self.lines) else ""

    @functools.cached_property
    def line_starts(self) -> list[int]:
        return [0] + [m.end() for m in _LINE_BREAK.finditer(self.text)]

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column), both from 1, of a character offset in the text, with lines as
        :attr:`lines` splits them."""
        i = bisect.bisect_right(self.line_starts, offset) - 1
        return i + 1, offset - self.line_starts[i] + 1

    def span(self, start: int, end: int) -> Span:
        """The span of the characters ``text[start:end]``."""
        return Span(self, *self.position(start), *self.position(end))


def escape(text: str, keep_tabs: bool = False) -> str:
    """``text`` with every character that is not printable written as an escape (``\\n``,
    ``\\x1b``, ``\\u2028``): a spec's strings and names cannot start a new diagnostic line or
    send codes to the terminal. ``keep_tabs``: a tab stays (an excerpt's caret line copies it)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or (keep_tabs and ch == "\t") else _escaped(ch) for ch in text)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(ch: str) -> str:
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def closest(name: str, pool, cutoff: float = 0.6) -> str | None:
    """The name in ``pool`` most like ``name`` (for "did you mean"), or None. Looks at no more
    than 500 candidates of about the same length, so that a spec with thousands of names and
    thousands of errors does not make the hints quadratic."""
    import difflib

    # read lazily, up to the 500th candidate: the pool can hold every name of a large spec
    slack = max(2, len(name) // 2)
    near = list(itertools.islice((p for p in _unique(pool) if abs(len(p) - len(name)) <= slack), 500))
    close = difflib.get_close_matches(name, near, n=1, cutoff=cutoff)
    return close[0] if close else None


def _unique(items):
    seen = set()
    for x in items:
        if x not in seen:
            seen.add(x)
            yield x


class Span(Record):
    source: SourceFile | None
    line: int
    column: int
    end_line: int
    end_column: int  # exclusive

    @property
    def path(self) -> str:
        return self.source.path if self.source else "<unknown>"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def union(self, other: Span) -> Span:
        a = min([self, other], key=lambda s: (s.line, s.column))
        end = max([self, other], key=lambda s: (s.end_line, s.end_column))
        return Span(a.source, a.line, a.column, end.end_line, end.end_column)

    def __repr__(self) -> str:
        return f"Span({self})"


class Diagnostic(Record, frozen=False):
    message: str
    span: Span | None
    notes: list[tuple[str, Span | None]] = field(default_factory=list)
    hint: str | None = None
    severity: str = "error"

    def sort_key(self):
        s = self.span
        return (s.path, s.line, s.column) if s else ("", 0, 0)

    def render(self, color: bool = False) -> str:
        c = _Colors(color)
        where = f"{escape(str(self.span))}: " if self.span else "netc: "
        sev = c.red(f"{self.severity}:") if self.severity == "error" else c.yellow(f"{self.severity}:")
        out = [f"{c.bold(where)}{sev} {c.bold(escape(self.message))}"]
        if self.span and self.span.source:
            out += _excerpt(self.span, c)
        for msg, span in self.notes:
            out.append(f"  {c.cyan('note:')} {escape(msg)}" + (f" at {escape(str(span))}" if span else ""))
        if self.hint:
            out.append(f"  {c.green('hint:')} {escape(self.hint)}")
        return "\n".join(out)


EXCERPT_WIDTH = 160  # a longer source line is shown as a window around the span


def _excerpt(span: Span, c: _Colors) -> list[str]:
    text = span.source.line(span.line)
    if not text.strip():
        return []
    end = span.end_column if span.end_line == span.line else len(text) + 1
    width = max(1, min(end, len(text) + 1) - span.column)
    column = span.column
    if len(text) > EXCERPT_WIDTH:
        start = max(0, min(column - 1 - 40, len(text) - EXCERPT_WIDTH))
        shown = text[start:start + EXCERPT_WIDTH]
        head, tail = ("..." if start else ""), ("..." if start + EXCERPT_WIDTH < len(text) else "")
        column = column - start + len(head)
        width = max(1, min(width, len(head) + len(shown) + 1 - column))
        text = head + shown + tail
    # shown escaped, as the message is; the carets stay under the escaped characters
    before, under, after = (escape(part, keep_tabs=True) for part in
                            (text[: column - 1], text[column - 1: column - 1 + width], text[column - 1 + width:]))
    width += len(under) - len(text[column - 1: column - 1 + width])
    pad = "".join(ch if ch == "\t" else " " for ch in before)
    return [f"    {before}{under}{after}", f"    {pad}{c.red('^' * width)}"]


class _Colors:
    def __init__(self, on: bool):
        self.on = on

    def _wrap(self, code: str, s: str) -> str:
        return f"\033[{code}m{s}\033[0m" if self.on else s

    def red(self, s):
        return self._wrap("1;31", s)

    def yellow(self, s):
        return self._wrap("1;33", s)

    def cyan(self, s):
        return self._wrap("1;36", s)

    def green(self, s):
        return self._wrap("1;32", s)

    def bold(self, s):
        return self._wrap("1", s)


def use_color(stream) -> bool:
    """Colour on a terminal, plain when piped, never with NO_COLOR set."""
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


class SpecError(Exception):
    """Raised by the public API when a spec has errors; carries every diagnostic reported (the
    first MAX_ERRORS), ``more``, the number of further errors found but not reported, and
    ``stopped``: True when netc stopped looking for errors at the cap (:class:`TooManyErrors`)."""

    def __init__(self, diagnostics: list[Diagnostic], more: int = 0, stopped: bool = False):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.more = more
        self.stopped = stopped
        super().__init__(self.render())

    def render(self, color: bool = False) -> str:
        tail = more_errors(self.more, self.stopped)
        return "\n".join([d.render(color) for d in self.diagnostics] + ([tail] if tail else []))


def more_errors(more: int, stopped: bool = False) -> str:
    """The line after the reported diagnostics: how many more were found, or that netc stopped
    looking; "" when there is nothing to add."""
    if stopped:
        return (f"netc: ... and more errors, not searched for: netc stops after the first {MAX_ERRORS:,} "
                f"(fix these and run it again)")
    if more:
        return f"netc: ... and {more:,} more error{'s' if more != 1 else ''} (only the first {MAX_ERRORS:,} are reported)"
    return ""


class TooManyErrors(Exception):
    """Raised by :meth:`Diagnostics.add` at the first distinct error past MAX_ERRORS: the
    compilation stops there (:func:`compiler.pipeline.compile_spec` catches it), since finding
    errors that will not be shown costs as much as compiling the rest of the spec (a 990 KB
    spec with 110,000 errors took 22 s to count them)."""


class Diagnostics:
    """A collector: compilation goes on after an error so that all errors are found, up to
    MAX_ERRORS distinct ones (a message at a place, once); the next one raises
    :class:`TooManyErrors` and the compilation stops, so that a spec with 200,000 errors costs
    neither the memory of keeping them, the time of printing them nor that of finding them. It also carries the compilation's :class:`Budget`, as it goes
    everywhere the compiler may report an error."""

    def __init__(self):
        self.items: list[Diagnostic] = []
        self.stopped = False  # an error past the cap was found: TooManyErrors was raised
        self.budget = Budget()
        self._seen: set[int] = set()  # hashes of (message, place)

    def error(self, message: str, span: Span | None, notes=(), hint: str | None = None) -> Diagnostic:
        d = Diagnostic(message, span, list(notes), hint)
        self.add(d)
        return d

    def add(self, d: Diagnostic) -> None:
        key = hash((d.message, d.span and (d.span.path, d.span.line, d.span.column)))
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self.items) >= MAX_ERRORS:
            self.stopped = True
            raise TooManyErrors
        self.items.append(d)

    def closest(self, name: str, pool, cutoff: float = 0.6) -> str | None:
        """:func:`closest`, for the first MAX_HINTS searches of the compilation; then None (a
        spec with thousands of errors among thousands of names would make them quadratic)."""
        return closest(name, pool, cutoff) if self.budget.hint() else None

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(self.items, stopped=self.stopped)


def print_diagnostics(diags: list[Diagnostic], stream=None, more: int = 0, stopped: bool = False) -> None:
    stream = stream if stream is not None else sys.stderr  # looked up now: it may be redirected
    color = use_color(stream)
    for d in sorted(diags, key=Diagnostic.sort_key):
        print(d.render(color), file=stream)
    tail = more_errors(more, stopped)
    if tail:
        print(tail, file=stream)
