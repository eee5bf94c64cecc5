"""Shape inference and checking: op shape rules, declared types, patterns, unification.

Shape rules live beside each op in the catalogue and raise plain ``ShapeError``; here they
are run for a node, and declared types (signatures, annotated assignments, pair hand-offs)
are matched against inferred ones. A type pattern binds the names of its dims the first
time they are seen (``x: [N, C, H, W]`` binds C) and checks them every time after.
"""

from __future__ import annotations

from collections.abc import Callable

from . import ast
from .dims import Dim, Expr, is_dim, sym
from .ir import IRError
from .records import Record
from .types import DTYPES, ShapeError, TensorType


class Inferred(Record):
    types: tuple[TensorType, ...]
    params: dict
    macs: Dim


def infer_op(op, xs: list[TensorType], attrs) -> Inferred:
    """Run an op's shape rule, parameter and MAC counts. Raises ShapeError."""
    out = op.shape(xs, attrs)
    types = out if isinstance(out, tuple) else (out,)
    params = op.params(xs, attrs)
    return Inferred(types, params, op.macs(xs, types, attrs))


def infer(graph) -> None:
    """Re-run every node's shape rule and check it agrees with the recorded types."""
    from netc.specs.catalogue import get

    for n in graph.nodes():
        if n.op == "input":
            continue
        xs = [graph.type_of(r) for r in n.inputs]
        got = infer_op(get(n.op), xs, n.attrs).types
        if got != n.types:
            raise IRError(f"{n.id}: recorded {n.types}, inferred {got}")


# -- declared types ------------------------------------------------------------------------

EvalDim = Callable[[ast.Expr], Dim]


def declare(pattern: ast.TensorTypeExpr, env: dict, ev: EvalDim, default_dtype="float",
            lookup: Callable[[str], bool] = lambda name: False) -> TensorType:
    """The type a model input declares: its unbound dim names become symbols (and bound), also
    inside expressions (``float[N, 2 * D]``). ``lookup(name)`` says whether a name is bound
    outside ``env`` (a const), which then keeps its value."""
    dims = []
    for d in pattern.dims:
        for name in _names(d):
            if name not in env and not lookup(name):
                env[name] = sym(name)
        dims.append(ev(d))
    return TensorType(pattern.dtype or default_dtype, tuple(dims))


def _names(e) -> list[str]:
    """The names an expression reads, in order (not the functions it calls)."""
    if isinstance(e, ast.Name):
        return [e.id]
    if isinstance(e, ast.BinOp):
        return _names(e.left) + _names(e.right)
    if isinstance(e, ast.Unary):
        return _names(e.operand)
    return []


def match(pattern: ast.TensorTypeExpr, actual: TensorType, env: dict, ev: EvalDim,
          lookup: Callable[[str], bool] = lambda name: False) -> str | None:
    """Check ``actual`` against ``pattern``, binding unbound dim names in ``env``.

    Returns None when it matches, else a message saying where not. ``lookup(name)`` says
    whether a name is bound outside ``env`` (a const), in which case it is checked, not bound.
    """
    if pattern.dtype and pattern.dtype not in DTYPES:
        return f"unknown element type `{pattern.dtype}`; the element types are float, int and bool"
    if pattern.dtype and pattern.dtype != actual.dtype:
        return f"expected {pattern.dtype} elements, got {actual.dtype}"
    if len(pattern.dims) != actual.rank:
        return f"expected a {len(pattern.dims)}-d tensor, got {actual.rank}-d {actual}"
    for i, (d, got) in enumerate(zip(pattern.dims, actual.shape)):
        if isinstance(d, ast.Name) and d.id not in env and not lookup(d.id):
            env[d.id] = got
            continue
        want = ev(d)
        if not is_dim(want):
            return f"dim {i} of the pattern is not a size"
        if want != got:
            name = f" ({d.id})" if isinstance(d, ast.Name) else ""
            return f"dim {i} is {got}, expected {want}{name}"
    return None


def unify(want: TensorType, got: TensorType, env: dict[str, Dim]) -> str | None:
    """Unify two inferred types where ``want``'s lone symbols may bind (pair hand-offs)."""
    if want.dtype != got.dtype:
        return f"expected {want.dtype} elements, got {got.dtype}"
    if want.rank != got.rank:
        return f"expected a {want.rank}-d tensor {want}, got {got.rank}-d {got}"
    from .dims import subs

    for i, (w, g) in enumerate(zip(want.shape, got.shape)):
        w = subs(w, env)
        if isinstance(w, Expr) and len(w.terms) == 1 and w.terms[0][1] == 1 and len(w.terms[0][0]) == 1 \
                and isinstance(w.terms[0][0][0], str):
            env[w.terms[0][0][0]] = g
            continue
        if w != g:
            return f"dim {i} is {g}, expected {w}"
    return None


__all__ = ["Inferred", "ShapeError", "declare", "infer", "infer_op", "match", "unify"]
