"""Arithmetic: ``+ - * / @``, literals, and -O2's ``fused_elementwise`` chains (each step
through the lowering of its op). Operands of another dtype than the result are cast to it
(``int + float``, ``int / int``), as torch promotes them."""

from __future__ import annotations

from ..table import NUMPY_DTYPES, ONNX_DTYPES, lowering
from .activation import apply

BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div"}


def cast_to(b, x: str, dtype: str) -> str:
    """``x`` as ``dtype`` (a Cast only when its dtype differs)."""
    t = b.types.get(x)
    if t is None or t.dtype == dtype:
        return x
    y = b.add("Cast", [x], to=ONNX_DTYPES[dtype])
    b.types[y] = type(t)(dtype, t.shape)
    return y


@lowering(*BINARY)
def binary(b, node, xs, a):
    dtype = node.type.dtype
    return [b.add(BINARY[node.op], [cast_to(b, x, dtype) for x in xs])]


@lowering("matmul")
def matmul(b, node, xs, a):
    return [b.add("MatMul", [cast_to(b, x, node.type.dtype) for x in xs])]


@lowering("constant")
def constant(b, node, xs, a):
    return [b.const(a.value, NUMPY_DTYPES[a.dtype], "constant")]


@lowering("fused_elementwise")
def fused_elementwise(b, node, xs, a):
    dtype = node.type.dtype
    y = cast_to(b, xs[0], dtype)
    for op, arg in a.steps:
        if isinstance(arg, str):
            v = cast_to(b, xs[int(arg[1:])], dtype)
        elif arg is not None and (op in BINARY or op[:1] == "r" and op[1:] in BINARY):
            v = b.const(arg, NUMPY_DTYPES[dtype], "scalar")
        else:
            v = arg
        if op in BINARY:
            y = b.add(BINARY[op], [y, v])
        elif op.startswith("r") and op[1:] in BINARY:
            y = b.add(BINARY[op[1:]], [v, y])
        else:
            y = apply(b, node, y, op, v)
    return [y]
