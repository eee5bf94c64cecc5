"""Arithmetic kernels: the operators ``+ - * / @``, unary minus, literals and ``sqrt exp log
abs``. NumPy's broadcasting and ``matmul`` rules are torch's for these ops.
"""

from __future__ import annotations

import numpy as np

from ._table import kernel


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
    """True division: ints give floats."""
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
