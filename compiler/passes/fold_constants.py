"""Constant folding and neutral operands.

    c = sqrt(4.0) * 3.0; y = x + c                 ==>   y = x + 6.0
    y = x * 1.0;  y = x + 0.0;  y = x / 1.0        ==>   readers of y read x

Elementwise math on scalar constants only (an op whose catalogue entry gives ``scalar``, the
op on Python numbers: add sub mul div neg abs sqrt exp log) becomes one constant, computed as
the backends would (Python numbers, the result's dtype). A binary op with a neutral scalar
(the entry's ``neutral``: ``x * 1``, ``1 * x``, ``x + 0``, ``0 + x``, ``x - 0``, ``x / 1``) is
dropped when its result has ``x``'s type: ``int x * 1.0`` is a float tensor, so it stays.
Bool operands, and values that are not finite (``1.0 / 0.0``, ``log(0.0)``) or overflow int64,
are left alone.
"""

from __future__ import annotations

import math

from netc.specs.catalogue import get

from .. import records
from ._util import bypass, drop_if_unused
from .base import PassContext, PassResult, each_node, register

CAST = {"float": float, "int": int}


@register("fold_constants", level=1, purpose="compute arithmetic on constants; drop x * 1, x + 0, x / 1")
def fold_constants(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    for n in each_node(g):
        op = get(n.op)
        if op is None or op.scalar is None:
            continue
        args = [g.producer(r) for r in n.inputs]
        if all(a.op == "constant" for a in args):
            _fold(g, n, args, result)
        elif op.neutral is not None:
            _neutral(g, n, args, result)
    return result


def _fold(g, n, args, result: PassResult) -> None:
    op = get(n.op)
    values = [a.attrs.value for a in args]
    text = f"{n.op}({', '.join(map(repr, values))})" if op.symbol is None else \
        f" {op.symbol} ".join(map(repr, values))
    if any(a.attrs.dtype == "bool" for a in args) or n.type.dtype == "bool":
        result.skip(f"kept {n.op} `{n.id}`: {text} is bool arithmetic", n.span)
        return
    try:
        value = CAST[n.type.dtype](op.scalar(*values))
    except (ArithmeticError, ValueError):
        value = math.nan
    if isinstance(value, float) and not math.isfinite(value):
        result.skip(f"kept {n.op} `{n.id}`: {text} is not a finite number", n.span)
        return
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        result.skip(f"kept {n.op} `{n.id}`: {text} overflows a 64-bit int", n.span)
        return
    attrs = get("constant").Attrs(value=value, dtype=n.type.dtype)
    g.replace(records.replace(n, op="constant", inputs=(), attrs=attrs, macs=0))
    for a in args:
        drop_if_unused(g, a.id)
    result.rewrote(f"folded {n.op} `{n.id}` ({text}) into the constant {value!r}", n.span)


def _neutral(g, n, args, result: PassResult) -> None:
    symbol = get(n.op).symbol
    neutral, positions = get(n.op).neutral
    for i in positions:
        c, other = args[i], n.inputs[1 - i]
        if c.op != "constant" or c.attrs.dtype == "bool" or c.attrs.value != neutral:
            continue
        x = g.type_of(other)
        if x != n.type:
            result.skip(f"kept {n.op} `{n.id}`: its result {n.type} is not its operand's type {x}", n.span)
            return
        bypass(g, n, [other])
        drop_if_unused(g, c.id)
        what = f"x {symbol} {c.attrs.value!r}" if i == 1 else f"{c.attrs.value!r} {symbol} x"
        result.rewrote(f"removed {n.op} `{n.id}` ({what}): readers read `{other[0]}`", n.span)
        return
