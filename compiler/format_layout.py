"""The layout half of ``netc fmt``: the tokens of a .net file (comments included), the spaces
between two tokens, and how the tokens of one statement are laid out into lines within the
width. :mod:`compiler.format` splits a file into statements and checks the result."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .parse import KEYWORDS

WIDTH = 110  # as ruff's line-length for the Python of this project
INDENT = 4

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\f\r\n]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"[^"\\\n]*(?:\\.[^"\\\n]*)*")
  | (?P<op>->|\.\.\.)
  | (?P<float>[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+|\.[0-9]+(?:[eE][-+]?[0-9]+)?)
  | (?P<int>[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op2>==|!=|<=|>=|//|[-+*/%@<>=()\[\]{},:])
""", re.VERBOSE)
_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class Tok:
    kind: str  # comment, string, op, float, int, name
    text: str
    start: int  # offset in the source
    breaks: int  # line breaks between the previous token and this one (all of them at the file's start)
    unary: bool = False  # a `-` that negates

    @property
    def comment(self) -> bool:
        return self.kind == "comment"


def tokens(text: str) -> list[Tok]:
    """Every token of ``text``, comments included, with the line breaks before each. The text
    has parsed, so every character belongs to a token or to white space."""
    out: list[Tok] = []
    pos, breaks = 0, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"no token at offset {pos}")
        kind = m.lastgroup
        if kind == "ws":
            breaks += len(_BREAK.findall(m.group()))
        else:
            value = m.group().rstrip() if kind == "comment" else m.group()
            out.append(Tok("op" if kind == "op2" else kind, value, pos, breaks))
            breaks = 0
        pos = m.end()
    return out


def next_code(toks: list[Tok]) -> list[int]:
    """For each token, the index of the first code token (not a comment) after it, or len(toks)."""
    out = [len(toks)] * len(toks)
    nxt = len(toks)
    for i in range(len(toks) - 1, -1, -1):
        out[i] = nxt
        if not toks[i].comment:
            nxt = i
    return out


def _is_word(t: Tok | None) -> bool:
    return t is not None and t.kind == "name" and t.text not in KEYWORDS


def _tight(prev: Tok, t: Tok, inner: str) -> bool:
    """No space between ``prev`` and ``t`` (inside a bracket of kind ``inner``; "call" for a
    `defaults` statement's arguments)."""
    p = prev.text
    return (t.text in (",", ")", "]") or (t.text == ":" and p != ",") or p in ("(", "[") or (p, t.text) == ("{", "}")
            or (t.text == "(" and _is_word(prev))  # a call
            or (t.text == "[" and (_is_word(prev) or p in (")", "]")))  # an index or a tensor type
            or (p == ":" and inner == "index")  # a slice
            or ((t.text == "=" or p == "=") and inner == "call")  # a keyword argument
            or (p == "-" and prev.unary))


def _ends_value(t: Tok | None) -> bool:
    """Whether ``t`` can end an operand: a `-` after it is binary."""
    if t is None:
        return False
    if t.kind == "name":
        return t.text not in KEYWORDS or t.text in ("true", "false")
    return t.kind in ("int", "float", "string") or t.text in (")", "]")


class Line:
    """Lays out the tokens of one statement (or declaration header): the spaces between them,
    then line breaks before a pipeline's `->` (kept where the source had one, added where the
    line would pass the width) and after the commas of a bracket (filled to the width, the next
    line aligned after the bracket), and after every comment."""

    def __init__(self, toks: list[Tok], indent: int, kind: str):
        self.toks = toks
        self.indent = indent
        self.kind = kind  # "stmt", "header" (of a block, model, cell or pair), "small" (import, const), "role"
        self.cont = indent + (2 * INDENT if kind == "header" else INDENT)
        self._spacing()

    def _spacing(self) -> None:
        """``sep[i]``: the space before token i on a line it shares with the previous token;
        ``depth[i]``: how many brackets are open before it (a closer counts as inside)."""
        n = len(self.toks)
        self.sep, self.depth = [""] * n, [0] * n
        self.inner = [""] * n  # the kind of the innermost open bracket
        self.skip = [False] * n  # a trailing comma dropped: `f(a, b,)` is `f(a, b)` (not in a tuple)
        stack: list[str] = []  # kinds of the open brackets: params, call, group, index
        prev = prev2 = None
        defaults = bool(self.toks) and self.toks[0].text == "defaults"
        after = next_code(self.toks)
        for i, t in enumerate(self.toks):
            self.depth[i] = len(stack)
            self.inner[i] = stack[-1] if stack else ""
            if t.comment:
                continue
            inner = stack[-1] if stack else ("call" if defaults else "")
            s = "" if prev is None or _tight(prev, t, inner) else " "
            self.sep[i] = s
            if t.kind == "op":
                if t.text == "," and stack and stack[-1] != "group":
                    self.skip[i] = after[i] < n and self.toks[after[i]].text in (")", "]")
                if t.text == "-":
                    t.unary = not _ends_value(prev)
                elif t.text == "(":
                    if _is_word(prev):
                        stack.append("params" if prev2 is not None and prev2.text in ("block", "model", "cell")
                                     else "call")
                    else:
                        stack.append("group")
                elif t.text == "[":
                    stack.append("index" if _is_word(prev) or (prev is not None and prev.text in (")", "]"))
                                 else "type")
                elif t.text in (")", "]") and stack:
                    stack.pop()
            prev2, prev = prev, t

    def _breaks_at(self, i: int) -> bool:
        """Whether a `->` at token i is a place to break the line: one of the statement itself
        or of a parenthesised pipeline (not in an argument list), in a statement or before a
        header's results."""
        t = self.toks[i]
        return t.text == "->" and t.kind == "op" and self.kind in ("stmt", "header", "small") \
            and (self.depth[i] == 0 or (self.inner[i] == "group" and self.kind != "header"))

    def _flat(self, i: int, j: int) -> int:
        """The width of tokens i..j-1 on one line, without the space before token i."""
        return sum(len(self.sep[k]) + len(self.toks[k].text) for k in range(i, j) if not self.skip[k]) \
            - len(self.sep[i])

    def _run(self, i: int) -> int:
        """The width of the pipeline stage starting at token i (a `->`): up to the next place
        to break or a comment."""
        j = i + 1
        while j < len(self.toks) and not self.toks[j].comment and not self._breaks_at(j):
            j += 1
        return self._flat(i, j)

    def _item(self, i: int) -> int:
        """The width of the bracket item starting at token i (after a comma), with its own
        comma, or with what follows the closing bracket up to the next place to break."""
        d = self.depth[i - 1]
        j = i
        while j < len(self.toks):
            t = self.toks[j]
            if t.comment or self._breaks_at(j):
                break
            j += 1
            if t.text == "," and t.kind == "op" and self.depth[j - 1] <= d:
                break
        return self._flat(i, j)

    def _source_break(self, i: int) -> bool:
        """A line break next to this `->` in the source (before or after it): kept in a statement."""
        if self.kind != "stmt":
            return False
        nxt = self.toks[i + 1] if i + 1 < len(self.toks) else None
        return self.toks[i].breaks > 0 or (nxt is not None and not nxt.comment and nxt.breaks > 0)

    def lines(self) -> list[tuple[str, str | None]]:
        """(code, trailing comment or None) for each line."""
        out: list[tuple[str, str | None]] = []
        code: str | None = " " * self.indent
        fresh = True  # the line has only its indentation
        stack: list[int] = []  # the column after each open bracket
        for i, t in enumerate(self.toks):
            if self.skip[i]:
                continue
            if t.comment:
                if code is None:  # a comment right after a comment
                    code, fresh = " " * (stack[-1] if stack else self.cont), True
                if t.breaks > 0 and not fresh:
                    out.append((code, None))
                    code, fresh = " " * (stack[-1] if stack else self.cont), True
                out.append((code + t.text, None) if fresh else (code, t.text))
                code = None
                continue
            if code is None:  # after a comment
                col = stack[-1] if stack else self.cont
                code, fresh = " " * col, True
            elif not fresh:
                col = None
                if self._breaks_at(i):
                    if self._source_break(i) or len(code) + 1 + self._run(i) > WIDTH:
                        col = stack[-1] if stack else self.cont
                elif i > 0 and self.toks[i - 1].text == "," and not self.skip[i - 1] and stack and stack[-1] < len(code) \
                        and len(code) + len(self.sep[i]) + self._item(i) > WIDTH:
                    col = stack[-1]
                if col is not None:
                    out.append((code, None))
                    code, fresh = " " * col, True
            code += ("" if fresh else self.sep[i]) + t.text
            fresh = False
            if t.kind == "op" and t.text in ("(", "["):
                stack.append(len(code))
            elif t.kind == "op" and t.text in (")", "]") and stack:
                stack.pop()
        if code is not None and not fresh:
            out.append((code, None))
        return [(c.rstrip(), comment) for c, comment in out]


def align_comments(lines: list[tuple[str, str | None]]) -> list[str]:
    """The lines as text, the trailing comments of consecutive lines in one column, two spaces
    after the longest code among them."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i][1] is None:
            out.append(lines[i][0])
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j][1] is not None:
            j += 1
        col = max(len(code) for code, _ in lines[i:j]) + 2
        out += [f"{code.ljust(col)}{comment}" for code, comment in lines[i:j]]
        i = j
    return out
