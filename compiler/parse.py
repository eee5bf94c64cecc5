"""Text to AST: the lark LALR parser over specs/grammar.lark, and syntax diagnostics."""

from __future__ import annotations

import ast as pyast
import contextlib
import importlib
import pickle
import re
import types
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer_NonRecursive
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.parsers import lalr_analysis

from . import ast
from .limits import MAX_EXPR_DEPTH, MAX_INT, MAX_NAME_LENGTH, gc_paused
from .source import Diagnostic, SourceFile, Span

KEYWORDS = frozenset({"import", "const", "block", "model", "cell", "pair", "let", "param", "defaults", "return", "if", "then",
                      "else", "and", "or", "not", "true", "false"})




_OPTIONS = {"parser": "lalr", "lexer": "basic", "start": ["start", "expr"], "propagate_positions": True,
            "maybe_placeholders": True}


@lru_cache(maxsize=1)
@gc_paused  # loading the cached parser makes thousands of objects: 5 ms of collections
def parser() -> Lark:
    """The LALR parser. Building its tables takes longer than checking a spec, so the built
    parser is kept in the user's cache folder, under a name that hashes the grammar, its
    options and the lark and Python versions, and read back by the next process; a missing,
    stale or unreadable cache is built again, and a folder that cannot be written to only
    costs the build.

    The cache is the built ``Lark`` object pickled whole (:class:`_ParserPickler`), not lark's
    own ``cache=`` file: lark rebuilds its rules, terminals and callbacks from that one by one
    (6.5 ms of `netc check`'s start-up here), where unpickling the built object takes 2.5."""
    import os

    grammar = resources.files("netc.specs").joinpath("grammar.lark").read_text()
    path = _cache_path(grammar)
    built = None
    if path:
        try:
            with open(path, "rb") as f:
                built = pickle.load(f)
        except Exception:  # noqa: BLE001 -- missing, truncated, damaged or of another lark: build it
            built = None
    if isinstance(built, Lark):
        return built
    built = Lark(grammar, **_OPTIONS)
    if path:
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                _ParserPickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(built)
            os.replace(tmp, path)
        except (OSError, pickle.PicklingError):
            with contextlib.suppress(OSError):
                os.remove(tmp)
    return built


class _ParserPickler(pickle.Pickler):
    """Pickles a built ``Lark``: the modules it holds (its ``re``) by name, and the LALR
    table's actions (lark's ``Shift`` and ``Reduce``, which its parser compares by identity)
    as references to lark's own objects, not copies."""

    def reducer_override(self, obj):
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        if isinstance(obj, lalr_analysis.Action):
            return getattr, (lalr_analysis, obj.name)
        return NotImplemented


def cache_dir() -> str | None:
    """netc's cache folder (``NETC_CACHE_DIR``, else ``$XDG_CACHE_HOME/netc`` or
    ``~/.cache/netc``), made if missing; None when it cannot be made, read or written."""
    import os

    base = os.environ.get("NETC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "netc")
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return base if os.access(base, os.W_OK | os.R_OK) else None


def _cache_path(grammar: str) -> str | None:
    """Where the built parser is kept (its name hashes the grammar, the parser's options and
    the versions of lark and Python), or None without a cache folder."""
    import hashlib
    import os
    import sys

    import lark

    base = cache_dir()
    if base is None:
        return None
    key = hashlib.sha256(f"{grammar}\0{_OPTIONS}\0{lark.__version__}\0{sys.version_info[:2]}".encode())
    return os.path.join(base, f"parser-{key.hexdigest()[:24]}.pickle")


# the code a pickled AST depends on: a change to any of them (or to the grammar) is a new key
_AST_CODE = ("ast.py", "parse.py", "records.py", "source.py", "limits.py")


@lru_cache(maxsize=1)
def _ast_code_hash() -> bytes | None:
    """The hash of the grammar and of the code in _AST_CODE (read once a process), or None
    when that code cannot be read."""
    import hashlib
    import os

    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        for name in _AST_CODE:
            with open(os.path.join(here, name), "rb") as f:
                h.update(f.read())
    except OSError:
        return None
    h.update(resources.files("netc.specs").joinpath("grammar.lark").read_bytes())
    return h.digest()


def parse_cached(source: SourceFile):
    """:func:`parse`, with the AST kept on disk in the cache folder: for the standard
    library's files, which every check of a spec importing them would parse again (GPT-2's
    ``std/transformer.net``: 9 ms to parse, 0.4 ms to load). The key hashes the file's path
    and text, the grammar and the code of the AST's classes and of this parser; a missing,
    damaged or unwritable cache file only costs the parse. Syntax errors are not kept."""
    import hashlib
    import os

    base, code = cache_dir(), _ast_code_hash()
    if base is None or code is None:
        return parse(source)
    h = hashlib.sha256(code)
    h.update(f"\0{source.path}\0{source.text}".encode("utf-8", "surrogatepass"))
    path = os.path.join(base, f"ast-{h.hexdigest()[:32]}.pickle")
    try:
        with open(path, "rb") as f:
            module = pickle.load(f)
    except Exception:  # noqa: BLE001 -- missing, truncated or damaged: parse it again
        module = None
    if isinstance(module, ast.Module) and module.path == source.path:
        return module
    module = parse(source)
    if isinstance(module, ast.Module):
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                pickle.dump(module, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass
    return module


def parse(source: SourceFile, start: str = "start"):
    """Parse one file (or, with start="expr", one expression): its AST, or the Diagnostic of
    its first syntax error."""
    try:
        tree = parser().parse(source.text, start=start)
    except UnexpectedInput as e:
        return _syntax_diagnostic(source, e)
    try:
        # the transform visits every token only to check a name's length: skipped (a third of
        # its time) when no run of name characters in the text is that long
        long_word = _LONG_WORD.search(source.text) is not None
        result = _ToAst(source, visit_tokens=long_word).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, _Limit):
            return e.orig_exc.diagnostic
        raise
    return _too_deep(result) or result


_LONG_WORD = re.compile(f"[A-Za-z0-9_]{{{MAX_NAME_LENGTH + 1}}}")


class _Limit(Exception):
    """A literal or name past a limit, found while building the AST."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


def _too_deep(tree) -> Diagnostic | None:
    """The error for the first expression (in source order) nested deeper than MAX_EXPR_DEPTH.

    The parser and the transform above are iterative; the elaborator recurses over
    expressions, so their nesting is bounded here, where the error can point at them."""
    stack = [(tree, 0)]
    deepest = None
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.Pipe):  # a pipeline is elaborated as a loop: its length is free
            stack += [(node.head, depth), (node.stage, depth)]
            continue
        if isinstance(node, (ast.Call, ast.Stage, ast.BinOp, ast.Unary, ast.Cond, ast.TupleLit, ast.Index)):
            depth += 1
            if depth > MAX_EXPR_DEPTH:
                if deepest is None or (node.span.line, node.span.column) < (deepest.line, deepest.column):
                    deepest = node.span
                continue
        if isinstance(node, tuple):
            stack.extend([(child, depth) for child in node if isinstance(child, _WALKED)])
        elif isinstance(node, ast.Node):
            for f in node._compared:
                child = getattr(node, f)
                if isinstance(child, _WALKED):
                    stack.append((child, depth))
    if deepest is None:
        return None
    return Diagnostic(f"expression nests deeper than {MAX_EXPR_DEPTH} levels (the limit)", deepest,
                      hint="split it into statements, like `h = ...`, and use the names")


_WALKED = (tuple, ast.Node)  # what may hold an expression: names, literals' values and spans do not


# -- syntax errors ------------------------------------------------------------------------

_WORDS = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "COMPOP": "a comparison",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "MULOP": "'/', '//', '%' or '@'",
    "$END": "end of file",
}


def _describe(term: str) -> str:
    if term in _WORDS:
        return _WORDS[term]
    try:
        pattern = parser().get_terminal(term).pattern
    except KeyError:
        return term
    return f"'{pattern.value}'" if pattern.type == "str" else term.lower()


def _keyword_diagnostic(source: SourceFile, word: str, line: int, col: int) -> Diagnostic:
    return Diagnostic(f"syntax error: `{word}` is a keyword; it cannot be used as a name",
                      Span(source, line, col, line, col + len(word)), hint=f"rename it, e.g. `{word}_`")


_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_LOOKALIKES = {"→": "->", "×": "*", "−": "-", "“": '"', "”": '"', "≠": "!=", "≤": "<=", "≥": ">="}
_EXPR_END = re.compile(r"(?:[A-Za-z0-9_)\]\"])$")


def _unclosed(text: str, end: int) -> list[tuple[str, int]]:
    """The brackets opened before ``end`` and not closed by then: (bracket, offset), innermost last."""
    stack: list[tuple[str, int]] = []
    for m in re.finditer(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"?|[()\[\]{}]', text[:end]):
        ch = m.group()
        if ch in _CLOSERS:
            stack.append((ch, m.start()))
        elif ch in _CLOSERS.values() and stack and _CLOSERS[stack[-1][0]] == ch:
            stack.pop()
    return stack


def _syntax_diagnostic(source: SourceFile, e: UnexpectedInput) -> Diagnostic:
    text = source.text
    pos = getattr(e, "pos_in_stream", None)
    line, col = source.position(pos) if pos is not None else (max(e.line, 1), max(e.column, 1))
    width = 1
    hint, notes = None, []
    if isinstance(e, UnexpectedToken) and e.token.type == "$END":
        e = UnexpectedEOF(e.accepts or e.expected)
    expected_terms = set((getattr(e, "accepts", None) or getattr(e, "expected", None)) or ())
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else "?"
        if ch == '"':
            rest = (text[e.pos_in_stream:].splitlines() or [""])[0]
            span = Span(source, line, col, line, col + len(rest))
            return Diagnostic("syntax error: unterminated string", span,
                              hint='close the string with `"` on the same line')
        msg = f"unexpected character {ch!r}"
        if ch == ";":
            hint = "statements need no `;`: remove it"
        elif ch in _LOOKALIKES:
            hint = f"write `{_LOOKALIKES[ch]}`"
        expected_terms = set()  # the lexer's list is every token of the language: no help
    elif isinstance(e, UnexpectedEOF):
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        pos = len(text)
        msg = "unexpected end of file"
    else:
        tok = e.token
        if tok.value in KEYWORDS and "NAME" in expected_terms:  # the lexer reads a keyword as one
            return _keyword_diagnostic(source, tok.value, line, col)
        width = max(1, len(str(tok)))
        before = text[: tok.start_pos].rstrip()
        word = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", before)
        if tok.type in ("EQUAL", "COLON", "COMMA") and word and word.group() in KEYWORDS \
                and word.group() != "let":
            return _keyword_diagnostic(source, word.group(), *source.position(word.start()))
        same_line = before[: word.start()].rsplit("\n", 1)[-1].rstrip(" \t") if word else ""
        if word and expected_terms <= {"COLON", "COMMA", "EQUAL"} and _EXPR_END.search(same_line):
            # `x -> linear(256) relu`: the name was taken as the start of a new statement
            wl, wc = source.position(word.start())
            return Diagnostic(f"syntax error: missing `->` before `{word.group()}`",
                              Span(source, wl, wc, wl, wc + len(word.group())),
                              hint="stages of a pipeline are joined with `->`")
        what = "name" if tok.type == "NAME" else ("number" if tok.type in ("INT", "FLOAT") else "")
        msg = f"unexpected {what + ' ' if what else ''}{str(tok)!r}"
    expected = sorted({_describe(t) for t in expected_terms if t != "$END"})
    if expected:
        shown = ", ".join(expected[:6]) + (", ..." if len(expected) > 6 else "")
        msg += f"; expected {shown}"
    if isinstance(e, UnexpectedToken) and e.token.type == "NAME" and "'->'" in expected:
        hint = "stages of a pipeline are joined with `->`"
    if pos is not None and not isinstance(e, UnexpectedCharacters):
        open_ = _unclosed(text, pos)
        never_closed = {at for _, at in _unclosed(text, len(text))}
        if open_ and open_[-1][1] in never_closed \
                and _CLOSERS[open_[-1][0]] in {_describe(t).strip("'") for t in expected_terms}:
            bracket, at = open_[-1]
            bl, bc = source.position(at)
            notes.append((f"unclosed `{bracket}`", Span(source, bl, bc, bl, bc + 1)))
            hint = hint or f"add the missing `{_CLOSERS[bracket]}`"
        elif isinstance(e, UnexpectedToken) and str(e.token) in _CLOSERS.values() \
                and not (open_ and _CLOSERS[open_[-1][0]] == str(e.token)):
            opener = {v: k for k, v in _CLOSERS.items()}[str(e.token)]
            hint = f"this `{e.token}` has no matching `{opener}`: remove it"
    span = Span(source, line, col, line, col + width)
    return Diagnostic(f"syntax error: {msg}", span, notes, hint)


# -- tree to AST --------------------------------------------------------------------------


class _ToAst(Transformer_NonRecursive):
    """Each rule's method takes (meta, children). They are called from a table, not through
    lark's ``v_args(meta=True)``, whose wrapper builds a new bound function (functools.
    update_wrapper) for every node: a sixth of the time of parsing a large spec."""

    def __init__(self, source: SourceFile, visit_tokens: bool = True):
        super().__init__(visit_tokens=visit_tokens)
        self.source = source

    def _call_userfunc(self, tree, new_children=None):
        children = new_children if new_children is not None else tree.children
        f = _RULES.get(tree.data)
        if f is None:
            return self.__default__(tree.data, children, tree.meta)
        try:
            return f(self, tree.meta, children)
        except Exception as e:  # wrapped as lark does: parse() looks for a _Limit inside
            raise VisitError(tree.data, tree, e) from e

    def NAME(self, tok: Token) -> Token:
        if len(tok) > MAX_NAME_LENGTH:
            span = self.source.span(tok.start_pos, tok.end_pos)
            raise _Limit(Diagnostic(f"name `{tok[:20]}...` is {len(tok)} characters long; names have at most "
                                    f"{MAX_NAME_LENGTH} (the limit)", span, hint="use a shorter name"))
        return tok

    # positions from offsets, not lark's line and column: lark counts only "\n" as a line
    # break, the excerpt under a diagnostic every break that str.splitlines knows
    def _span(self, meta) -> Span:
        return self.source.span(meta.start_pos, meta.end_pos)

    def _tok(self, tok: Token) -> Span:
        return self.source.span(tok.start_pos, tok.end_pos)

    # file level
    def start(self, meta, items):
        imports = tuple(i for i in items if isinstance(i, ast.Import))
        decls = tuple(i for i in items if not isinstance(i, ast.Import))
        return ast.Module(Span(self.source, 1, 1, 1, 1), self.source.path, imports, decls)

    def import_decl(self, meta, c):
        return ast.Import(self._span(meta), _unquote(c[0]))

    def const_decl(self, meta, c):
        return ast.ConstDecl(self._span(meta), str(c[0]), c[1])

    def _func(self, kind, meta, c, results=None):
        params = c[1] or ()
        return ast.FuncDecl(self._span(meta), kind, str(c[0]), tuple(params), results, c[-1], self._tok(c[0]))

    def block_decl(self, meta, c):
        return self._func("block", meta, c)

    def model_decl(self, meta, c):
        return self._func("model", meta, c, c[2])

    def cell_decl(self, meta, c):
        return self._func("cell", meta, c, c[2])

    def pair_decl(self, meta, c):
        return ast.PairDecl(self._span(meta), str(c[0]), tuple(c[1:]), self._tok(c[0]))

    def role(self, meta, c):
        return ast.Role(self._span(meta), str(c[0]), str(c[1]))

    def params(self, meta, c):
        return [p for p in c if p is not None]

    def param(self, meta, c):
        return ast.Param(self._span(meta), str(c[0]), c[1], c[2])

    def scalar_type(self, meta, c):
        return ast.ScalarType(self._span(meta), str(c[0]))

    def tensor_type(self, meta, c):
        return ast.TensorTypeExpr(self._span(meta), str(c[0]) if c[0] is not None else None, tuple(c[1] or ()))

    def dims(self, meta, c):
        return [d for d in c if d is not None]

    def results(self, meta, c):
        return tuple(r for r in c if r is not None)

    def named_result(self, meta, c):
        return ast.Result(self._span(meta), str(c[0]), c[1])

    def bare_result(self, meta, c):
        return ast.Result(self._span(meta), str(c[0]), None)

    def typed_result(self, meta, c):
        return ast.Result(self._span(meta), None, c[0])

    # statements
    def body(self, meta, c):
        return tuple(c)

    def assign(self, meta, c):
        return ast.Assign(self._span(meta), c[0], c[1], c[2])

    def targets(self, meta, c):
        return tuple(ast.Name(self._tok(t), str(t)) for t in c)

    def let_stmt(self, meta, c):
        return ast.Let(self._span(meta), ast.Name(self._tok(c[0]), str(c[0])), c[1])

    def param_stmt(self, meta, c):
        return ast.ParamStmt(self._span(meta), ast.Name(self._tok(c[0]), str(c[0])), c[1], c[2])

    def defaults_stmt(self, meta, c):
        return ast.Defaults(self._span(meta), tuple(c[0]))

    def return_stmt(self, meta, c):
        return ast.Return(self._span(meta), tuple(c))

    # expressions
    def cond(self, meta, c):
        return ast.Cond(self._span(meta), c[0], c[1], c[2])

    def pipe(self, meta, c):
        return ast.Pipe(self._span(meta), c[0], c[1])

    def stage(self, meta, c):
        return ast.Stage(self._span(meta), str(c[0]), tuple(c[1] or ()), c[2])

    def _bin(self, meta, op, a, b):
        return ast.BinOp(self._span(meta), op, a, b)

    def or_(self, meta, c):
        return self._bin(meta, "or", c[0], c[1])

    def and_(self, meta, c):
        return self._bin(meta, "and", c[0], c[1])

    def not_(self, meta, c):
        return ast.Unary(self._span(meta), "not", c[0])

    def compare(self, meta, c):
        return self._bin(meta, str(c[1]), c[0], c[2])

    def binop(self, meta, c):
        return self._bin(meta, str(c[1]), c[0], c[2])

    def neg(self, meta, c):
        return ast.Unary(self._span(meta), "-", c[0])

    def name(self, meta, c):
        return ast.Name(self._span(meta), str(c[0]))

    def int_lit(self, meta, c):
        text = str(c[0]).lstrip("0") or "0"
        if len(text) > len(str(MAX_INT)) or int(text) > MAX_INT:
            shown = text if len(text) <= 30 else f"{text[:12]}...{text[-6:]} ({len(text)} digits)"
            raise _Limit(Diagnostic(f"integer {shown} is too large; integers are at most 2**63 - 1",
                                    self._span(meta)))
        return ast.Lit(self._span(meta), int(text))

    def float_lit(self, meta, c):
        return ast.Lit(self._span(meta), float(c[0]))

    def str_lit(self, meta, c):
        return ast.Lit(self._span(meta), _unquote(c[0]))

    def true_lit(self, meta, c):
        return ast.Lit(self._span(meta), True)

    def false_lit(self, meta, c):
        return ast.Lit(self._span(meta), False)

    def tuple_lit(self, meta, c):
        return ast.TupleLit(self._span(meta), tuple(x for x in c if x is not None))

    def index(self, meta, c):
        return ast.Index(self._span(meta), c[0], c[1])

    def subscripts(self, meta, c):
        return tuple(x for x in c if x is not None)

    def slice(self, meta, c):
        return ast.Slice(self._span(meta), *(list(c) + [None])[:3])

    def ellipsis(self, meta, c):
        return ast.EllipsisLit(self._span(meta))

    def call(self, meta, c):
        return ast.Call(self._span(meta), str(c[0]), tuple(c[1] or ()))

    def args(self, meta, c):
        return [a if isinstance(a, ast.Arg) else ast.Arg(a.span, None, a) for a in c if a is not None]

    def kwarg(self, meta, c):
        return ast.Arg(self._span(meta), str(c[0]), c[1])


_RULES = {name: f for name, f in vars(_ToAst).items()
          if callable(f) and not name.startswith("_") and name != "NAME"}


def _unquote(tok) -> str:
    return pyast.literal_eval(str(tok))
