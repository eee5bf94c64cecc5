"""Arithmetic kernels: the operators ``+ - * / @``, unary minus, literals and ``sqrt rsqrt exp log
abs sin cos``. NumPy's broadcasting and ``matmul`` rules are torch's for these ops.

``fused_elementwise`` runs a chain of elementwise steps in place: one output buffer, each
step a ufunc call with ``out=`` (``np.add(y, x1, out=y)``), so a chain of k ops allocates
one array instead of k. A step whose op ``_elementwise_step`` has no formula for (one not in
``FUSED_STEPS``) comes as that op's own kernel, a function the emitter passes in its place.
"""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel
from .activation import gelu, leaky_relu, sigmoid, silu


@kernel("add")
def add(x, y):
    return np.add(x, y)


@kernel("sub")
def sub(x, y):
    return np.subtract(x, y)


@kernel("mul")
def mul(x, y):
    return np.multiply(x, y)


@kernel("div")
def div(x, y):
    """True division: ints give floats, float32 unless a float array operand says otherwise
    (torch's rule: its default dtype)."""
    if not any(getattr(v, "dtype", np.dtype(int)).kind == "f" for v in (x, y)):
        return np.true_divide(x, y, dtype=np.float32)
    return np.true_divide(x, y)


@kernel("matmul")
def matmul(x, y):
    """torch.matmul's rules: 1-d operands are vectors, leading dims broadcast."""
    return np.matmul(x, y)


@kernel("constant")
def constant(value, dtype="float"):
    """A scalar literal as a Python number, so it takes the dtype of the array it meets."""
    return {"float": float, "int": int, "bool": bool}[dtype](value)


@kernel("neg")
def neg(x):
    return np.negative(x)


@kernel("abs")
def abs_(x):
    return np.abs(x)


@kernel("sqrt")
def sqrt(x):
    return np.sqrt(x)


@kernel("exp")
def exp(x):
    return np.exp(x)


@kernel("log")
def log(x):
    return np.log(x)


@kernel("sin")
def sin(x):
    return np.sin(x)


@kernel("cos")
def cos(x):
    return np.cos(x)


@kernel("rsqrt")
def rsqrt(x):
    """1 / sqrt(x) (ints give float, as sqrt)."""
    return 1 / np.sqrt(x)


# The steps _elementwise_step has a formula for; the emitter passes any other op's kernel.
FUSED_STEPS = frozenset({"add", "sub", "mul", "div", "rsub", "rdiv", "relu", "leaky_relu", "neg", "abs", "sqrt",
                         "exp", "log", "tanh", "sigmoid", "gelu", "silu", "sin", "cos"})


@helper
def _elementwise_step(y, op, arg, xs, out):
    """One step of ``fused_elementwise`` on the running value ``y``, written into ``out``
    (None: a new array). ``arg`` is a tensor input ("x1"), a number, or None; ``op`` a name,
    or the kernel of an op this function has no formula for."""
    v = xs[int(arg[1:])] if isinstance(arg, str) else arg
    binary = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide}
    if op in binary:
        return binary[op](y, v, out=out)
    if op in ("rsub", "rdiv"):
        return binary[op[1:]](v, y, out=out)
    if op == "relu":
        return np.maximum(y, 0, out=out)
    if op == "leaky_relu" and out is not None:
        return np.multiply(y, v, out=out, where=~(y > 0))
    unary = {"neg": np.negative, "abs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "tanh": np.tanh,
             "sin": np.sin, "cos": np.cos}
    if op in unary:
        return unary[op](y, out=out)
    # no single ufunc: the kernel's own formula, copied into the buffer
    if callable(op):
        r = op(y) if arg is None else op(y, v)
    else:
        r = leaky_relu(y, v) if op == "leaky_relu" else {"sigmoid": sigmoid, "gelu": gelu, "silu": silu}[op](y)
    if out is None:
        return r
    out[...] = r
    return out


@kernel("fused_elementwise")
def fused_elementwise(*xs, steps):
    """A chain of elementwise steps in one buffer: the first step allocates it (the output),
    every later step writes into it in place (``out=``)."""
    y = xs[0]
    for i, (op, arg) in enumerate(steps):
        y = _elementwise_step(y, op, arg, xs, y if i else None)
        if i == 0:
            y = np.asarray(y)  # a 0-d result comes as a NumPy scalar, which out= cannot take
    return y
