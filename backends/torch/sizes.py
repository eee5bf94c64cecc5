"""A block's sizes as the spec writes them: a size expression of the spec (``k // 2``, an
AST that ``compiler.ast.size_names`` accepts) evaluated for one instance, and printed as
Python over the class's constructor arguments (``padding=k // 2`` in ``__init__``,
``self.k // 2`` in ``forward``)."""

from __future__ import annotations

from collections.abc import Callable

from netc.compiler import ast

_PREC = {"+": 1, "-": 1, "*": 2, "//": 2, "%": 2}


def evaluate(e, env: dict) -> int | None:
    """The value of size expression ``e`` where its names have the ints of ``env`` (None when
    a name is not an int there, or on division by zero)."""
    if isinstance(e, ast.Name):
        v = env.get(e.id)
        return v if isinstance(v, int) and not isinstance(v, bool) else None
    if isinstance(e, ast.Lit):
        return e.value
    if isinstance(e, ast.Unary):
        v = evaluate(e.operand, env)
        return None if v is None else -v
    a, b = evaluate(e.left, env), evaluate(e.right, env)
    if a is None or b is None or (e.op in ("//", "%") and b == 0):
        return None
    return {"+": a + b, "-": a - b, "*": a * b, "//": a // b, "%": a % b}[e.op]


def code(e, name: Callable[[str], str]) -> str:
    """``e`` as Python, each name written as ``name(it)``; parentheses only where needed."""
    if isinstance(e, ast.Name):
        return name(e.id)
    if isinstance(e, ast.Lit):
        return str(e.value)
    if isinstance(e, ast.Unary):
        inner = code(e.operand, name)
        return f"-({inner})" if isinstance(e.operand, ast.BinOp) else f"-{inner}"
    left, right = code(e.left, name), code(e.right, name)
    if isinstance(e.left, ast.BinOp) and _PREC[e.left.op] < _PREC[e.op]:
        left = f"({left})"
    if isinstance(e.right, ast.BinOp) and _PREC[e.right.op] <= _PREC[e.op]:
        right = f"({right})"
    return f"{left} {e.op} {right}"
