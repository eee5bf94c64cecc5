"""``netc fmt``: one layout for .net files, comments kept where they are.

The file is parsed (a file with a syntax error is not formatted), split into units at the
starts of its declarations and statements (their offsets from the parse tree), and each unit
is laid out from its tokens, comments included (:mod:`compiler.format_layout`):

- four spaces per level of braces; one statement, role or declaration header a line;
- spaces around operators, `->`, `=` and after `,` and `:`, none inside brackets, none around
  a keyword argument's `=` (nor in `defaults`) or a slice's `:`;
- a pipeline keeps the line breaks its author put before (or after) a `->`, and breaks
  before more `->` where a line would pass 110 columns; continuation lines are indented one
  level more than the statement (a header's results two levels). Argument and parameter lists
  too long for a line are filled, the next line aligned after the bracket;
- one blank line between declarations (and before a declaration's leading comments), blank
  lines inside a body and between imports or consts kept but never more than one;
- a comment stays in its place: on its own line (indented as the code around it) or after the
  code of its line, where the trailing comments of consecutive lines share a column.

It is safe: the formatted text must parse to the same AST (spans aside) with the same
comments in the same order, else :class:`FormatError` and nothing is written.
"""

from __future__ import annotations

import dataclasses

from . import ast
from .format_layout import INDENT, Line, Tok, align_comments, next_code, tokens
from .parse import parse
from .source import Diagnostic, SourceFile, Span, SpecError


class FormatError(SpecError):
    """The formatted text would not mean what the source meant (a bug in the formatter): the
    file is left as it is."""


def format_source(text: str, path: str = "<text>") -> str:
    """``text`` in netc's layout. Raises :class:`~compiler.source.SpecError` with the syntax
    error when it does not parse, :class:`FormatError` when the layout would change its AST
    or its comments."""
    source = SourceFile(path, text)
    if "\x00" in text:  # as the loader says of a file (lark would take it inside a string)
        line, col = source.position(text.index("\x00"))
        raise SpecError([Diagnostic(f"{path} is not a text file (a NUL character)", Span(source, line, col, line, col + 1))])
    before = parse(source)
    if isinstance(before, Diagnostic):
        raise SpecError([before])
    toks = tokens(text)
    out = _Layout(toks, _starts(source, before)).render()
    _check(source, before, toks, out)
    return out


def _starts(source: SourceFile, module: ast.Module) -> dict[int, str]:
    """Offset of each declaration, statement and role -> its kind: header (a declaration with a
    body), small (an import or const), stmt or role. From the AST's spans: no second parse."""

    def offset(span: Span) -> int:
        return source.line_starts[span.line - 1] + span.column - 1

    starts: dict[int, str] = {offset(i.span): "small" for i in module.imports}
    for d in module.decls:
        starts[offset(d.span)] = "small" if isinstance(d, ast.ConstDecl) else "header"
        for stmt in getattr(d, "body", ()):
            starts[offset(stmt.span)] = "stmt"
        for role in getattr(d, "roles", ()):
            starts[offset(role.span)] = "role"
    return starts


@dataclasses.dataclass
class _Unit:
    kind: str  # header, small, stmt, role, comment, close
    level: int
    blanks: int  # blank lines before it in the source
    toks: list[Tok]
    closed: bool = False  # a header whose body is empty: `{}`


class _Layout:
    def __init__(self, toks: list[Tok], starts: dict[int, str]):
        self.toks = toks
        self.starts = starts

    def units(self) -> list[_Unit]:
        units: list[_Unit] = []
        cur: _Unit | None = None
        level = 0
        toks = self.toks
        after = next_code(toks)
        i = 0
        while i < len(toks):
            t = toks[i]
            blanks = max(t.breaks - 1, 0)
            if t.comment:
                nxt = toks[after[i]] if after[i] < len(toks) else None
                if t.breaks == 0 and i > 0:  # after code on its line
                    (cur or units[-1]).toks.append(t)
                elif cur is not None and nxt is not None and nxt.start not in self.starts and nxt.text != "}":
                    cur.toks.append(t)  # a line of its own inside a statement
                else:
                    cur = None
                    units.append(_Unit("comment", level, blanks, [t]))
            elif t.start in self.starts:
                cur = _Unit(self.starts[t.start], level, blanks, [t])
                units.append(cur)
            elif t.kind == "op" and t.text == "}":
                level -= 1
                cur = _Unit("close", level, blanks, [t])
                units.append(cur)
            else:
                cur.toks.append(t)
                if t.kind == "op" and t.text == "{":
                    if i + 1 < len(toks) and toks[i + 1].text == "}" and toks[i + 1].kind == "op":
                        cur.toks.append(toks[i + 1])
                        cur.closed = True
                        i += 1
                    else:
                        level += 1
                        cur = None
            i += 1
        return units

    def render(self) -> str:
        units = self.units()
        lines: list[tuple[str, str | None]] = []
        for k, u in enumerate(units):
            if k > 0 and self._blank(units, k):
                lines.append(("", None))
            indent = u.level * INDENT
            if u.kind == "comment":
                lines.append((" " * indent + u.toks[0].text, None))
            else:
                lines += Line(u.toks, indent, u.kind).lines()
        text = "\n".join(align_comments(lines))
        return text + "\n" if text else ""

    @staticmethod
    def _blank(units: list[_Unit], k: int) -> bool:
        """Whether a blank line goes before unit k (not the first)."""
        u, prev = units[k], units[k - 1]
        if u.kind == "close" or (prev.kind == "header" and not prev.closed):
            return False  # none after `{` nor before `}`
        if u.level == 0:
            if prev.kind == "close" or (prev.kind == "header" and prev.closed):
                return True  # after a declaration
            if prev.kind != "comment" and _leads_to_big(units, k):
                return True  # before a declaration and its comments
        return u.blanks > 0


def _leads_to_big(units: list[_Unit], k: int) -> bool:
    """Whether unit k is a declaration with a body, or a comment right above one (comments on
    the lines just above it, no blank line between)."""
    while units[k].kind == "comment":
        if k + 1 == len(units) or units[k + 1].blanks > 0:
            return False
        k += 1
    return units[k].kind == "header"


# -- the safety checks --------------------------------------------------------------------


def _check(source: SourceFile, before, toks: list[Tok], out: str) -> None:
    path = source.path
    after = parse(SourceFile(path, out))
    if isinstance(after, Diagnostic):
        raise FormatError([Diagnostic(f"netc fmt would break this file: its formatted form does not parse "
                                      f"({after.message}); the file is left as it is", Span(source, 1, 1, 1, 1),
                                      hint="this is a bug in netc fmt; please report it with the file")])
    differs = _first_difference(before, after)
    if differs is not None:
        raise FormatError([Diagnostic("netc fmt would change the meaning of this file (its formatted form "
                                      "parses to a different syntax tree here); the file is left as it is",
                                      differs, hint="this is a bug in netc fmt; please report it with the file")])
    if [t.text for t in toks if t.comment] != [t.text for t in tokens(out) if t.comment]:
        raise FormatError([Diagnostic("netc fmt would lose or reorder a comment of this file; the file is left "
                                      "as it is", Span(source, 1, 1, 1, 1),
                                      hint="this is a bug in netc fmt; please report it with the file")])


def same_tree(a, b) -> bool:
    """Whether two ASTs are equal, spans aside."""
    return _first_difference(a, b) is None


def _first_difference(a, b) -> Span | None:
    """The span (in ``a``) of the first node where the two trees differ, or None. Iterative: a
    pipeline nests as deep as it is long."""
    stack = [(a, b, None)]
    while stack:
        x, y, where = stack.pop()
        if isinstance(x, ast.Node):
            where = x.span
            if type(x) is not type(y):
                return where
            stack += [(getattr(x, f), getattr(y, f), where) for f in reversed(x._compared)]
        elif isinstance(x, (tuple, list)):
            if not isinstance(y, (tuple, list)) or len(x) != len(y):
                return where
            stack += [(p, q, where) for p, q in reversed(list(zip(x, y)))]
        elif type(x) is not type(y) or x != y:
            return where or Span(None, 1, 1, 1, 1)
    return None
