"""The abstract syntax tree of a .net file. Every node carries the Span it came from."""

from __future__ import annotations

from typing import Any

from .records import Record
from .source import Span


class Node(Record):
    """Base of every node: an immutable record of its fields, ``span`` first
    (``Name(span, "x")``). Nodes of one class with equal fields are equal and hash alike,
    whatever their spans."""

    _uncompared = ("span", "name_span")  # where a node came from: never compared, hashed or shown
    span: Span


class _Identity:
    """Equal only to itself: a declaration or a pipeline (which can be long) is never compared
    or hashed field by field."""

    __eq__ = object.__eq__
    __hash__ = object.__hash__


# -- expressions -------------------------------------------------------------------------


class Name(Node):
    id: str


class Lit(Node):
    value: Any  # int, float, str or bool


class TupleLit(Node):
    items: tuple[Expr, ...]


class Arg(Node):
    name: str | None  # None for a positional argument
    value: Expr


class Call(Node):
    func: str
    args: tuple[Arg, ...]


class Stage(Node):
    """One stage of a pipeline: ``f``, ``f(a, k=v)`` or ``Block(a) * n``."""

    func: str
    args: tuple[Arg, ...]
    repeat: Expr | None


class Pipe(_Identity, Node):
    head: Expr
    stage: Stage


class BinOp(Node):
    op: str  # + - * / // % @ == != < <= > >= and or
    left: Expr
    right: Expr


class Unary(Node):
    op: str  # - not
    operand: Expr


class Cond(Node):
    test: Expr
    then: Expr
    orelse: Expr


class Slice(Node):
    """``start:stop:step`` inside a subscript; a missing part is None."""

    start: Expr | None
    stop: Expr | None
    step: Expr | None


class EllipsisLit(Node):
    """``...`` inside a subscript: as many full slices as the rank needs."""


class Index(Node):
    """``value[items]``: Python's indexing and slicing on a tensor. An item is an expression
    (an integer index, or ``None`` for a new axis), a Slice or an EllipsisLit."""

    value: Expr
    items: tuple


Expr = Name | Lit | TupleLit | Call | Pipe | BinOp | Unary | Cond | Index


# -- types -------------------------------------------------------------------------------


class ScalarType(Node):
    name: str  # int, float, bool, str, tuple


class TensorTypeExpr(Node):
    dtype: str | None  # None: any dtype (a block parameter pattern)
    dims: tuple[Expr, ...]


TypeExpr = ScalarType | TensorTypeExpr


# -- statements and declarations ---------------------------------------------------------


class Assign(Node):
    targets: tuple[Name, ...]
    annotation: TypeExpr | None
    value: Expr


class Let(Node):
    name: Name
    value: Expr


class Return(Node):
    values: tuple[Expr, ...]


class ParamStmt(Node):
    """``param name: [dims] = init``: a learned tensor of the block, with its initialiser."""

    name: Name
    type: TypeExpr
    init: Expr


class Defaults(Node):
    """``defaults weight_init=normal(0.02), bias_init=zeros``: how the body's layers start."""

    args: tuple[Arg, ...]


Stmt = Assign | Let | ParamStmt | Defaults | Return


class Param(Node):
    name: str
    type: TypeExpr | None
    default: Expr | None

    @property
    def is_tensor(self) -> bool:
        if isinstance(self.type, TensorTypeExpr):
            return True
        return self.type is None and self.default is None


class Result(Node):
    name: str | None
    type: TensorTypeExpr | None


class FuncDecl(_Identity, Node):
    """A ``block``, ``model`` or ``cell``."""

    kind: str
    name: str
    params: tuple[Param, ...]
    results: tuple[Result, ...] | None
    body: tuple[Stmt, ...]
    name_span: Span = None


class Role(Node):
    role: str
    model: str


class PairDecl(_Identity, Node):
    name: str
    roles: tuple[Role, ...]
    name_span: Span = None


class ConstDecl(_Identity, Node):
    name: str
    value: Expr


class Import(Node):
    path: str


Decl = FuncDecl | PairDecl | ConstDecl


class Module(_Identity, Node):
    path: str
    imports: tuple[Import, ...]
    decls: tuple[Decl, ...]


_PREC = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
         "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "@": 6}


def children(e) -> list:
    """The expressions directly inside expression ``e`` (a stage's repeat count too)."""
    if isinstance(e, TupleLit):
        return list(e.items)
    if isinstance(e, (Call, Stage)):
        out = [a.value for a in e.args]
        return out + [e.repeat] if isinstance(e, Stage) and e.repeat is not None else out
    if isinstance(e, Pipe):
        return [e.head, e.stage]
    if isinstance(e, BinOp):
        return [e.left, e.right]
    if isinstance(e, Unary):
        return [e.operand]
    if isinstance(e, Cond):
        return [e.test, e.then, e.orelse]
    if isinstance(e, Index):
        return [e.value, *e.items]
    if isinstance(e, Slice):
        return [x for x in (e.start, e.stop, e.step) if x is not None]
    return []


def walk(exprs):
    """Every expression in ``exprs`` and inside them, walked without recursion (a pipeline
    can be thousands of stages long)."""
    stack = list(exprs)
    while stack:
        e = stack.pop()
        yield e
        stack.extend(children(e))


def names_in(exprs) -> set[str]:
    """Every name the expressions read (``C // 2``: C)."""
    return {e.id for e in walk(exprs) if isinstance(e, Name)}


SIZE_OPS = ("+", "-", "*", "//", "%")


def size_names(e) -> set[str] | None:
    """The names a size expression reads (``k // 2``: k), or None when ``e`` is not one: an
    expression of names, int literals, unary minus and ``+ - * // %`` only (what generated
    code can compute the same way for any value of its names)."""
    out, stack = set(), [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Name):
            out.add(x.id)
        elif isinstance(x, Lit) and isinstance(x.value, int) and not isinstance(x.value, bool):
            pass
        elif isinstance(x, Unary) and x.op == "-":
            stack.append(x.operand)
        elif isinstance(x, BinOp) and x.op in SIZE_OPS:
            stack += [x.left, x.right]
        else:
            return None
    return out


def pattern_str(t: TensorTypeExpr) -> str:
    """A tensor type pattern as written: ``float[N, C, H, W]``."""
    return f"{t.dtype or ''}[{', '.join(expr_str(d) for d in t.dims)}]"


def expr_str(e, prec: int = 0) -> str:
    """Source-like text of an expression (for messages about declared shapes)."""
    if isinstance(e, Name):
        return e.id
    if isinstance(e, Lit):
        return repr(e.value) if isinstance(e.value, str) else str(e.value).lower() if isinstance(e.value, bool) \
            else str(e.value)
    if isinstance(e, BinOp):
        p = _PREC[e.op]
        s = f"{expr_str(e.left, p)} {e.op} {expr_str(e.right, p + 1)}"
        return f"({s})" if p < prec else s
    if isinstance(e, Unary):
        return f"{e.op}{' ' if e.op == 'not' else ''}{expr_str(e.operand, 7)}"
    if isinstance(e, TupleLit):
        return "(" + ", ".join(expr_str(x) for x in e.items) + ("," if len(e.items) == 1 else "") + ")"
    return "..."
