"""Tensor arithmetic, as the elaborator emits it for ``+ - * / @``, unary ``-`` and literals,
and the unary functions ``sqrt exp log abs``; and ``fused_elementwise``, which the optimiser
(``-O2``, pass ``fuse_elementwise``) makes of a chain of elementwise ops.

Binary operators broadcast like NumPy. MACs: ``matmul`` counts ``numel(y) * K``; elementwise
arithmetic counts 0.
"""

from __future__ import annotations

import math
import operator
from typing import Literal

from netc.compiler.types import ShapeError, TensorType
from netc.specs import opdef
from netc.specs.opdef import Op, register

from ._util import broadcast, promote


class _Math(Op):
    group = "math"
    traits = frozenset({"elementwise"})


class _Binary(_Math):
    """``x <op> y`` elementwise, with NumPy broadcasting; the dtype is promoted."""

    arity = (2, 2)
    traits = frozenset({"elementwise", "binary_elementwise", "fresh_output"})

    @classmethod
    def shape(cls, xs, a):
        x, y = xs
        return TensorType(cls.dtype(x.dtype, y.dtype), broadcast(x.shape, y.shape))

    @classmethod
    def dtype(cls, a: str, b: str) -> str:
        return promote(a, b)


@register
class Add(_Binary):
    """x + y, elementwise with broadcasting."""

    name = "add"
    signature = "x + y"
    traits = _Binary.traits | {"commutative"}
    scalar, symbol, neutral = operator.add, "+", (0, (0, 1))


@register
class Sub(_Binary):
    """x - y, elementwise with broadcasting."""

    name = "sub"
    signature = "x - y"
    scalar, symbol, neutral = operator.sub, "-", (0, (1,))

    @classmethod
    def dtype(cls, a, b):
        if "bool" in (a, b):
            raise ShapeError("cannot subtract bool tensors")
        return promote(a, b)


@register
class Mul(_Binary):
    """x * y, elementwise with broadcasting."""

    name = "mul"
    signature = "x * y"
    traits = _Binary.traits | {"commutative"}
    scalar, symbol, neutral = operator.mul, "*", (1, (0, 1))


@register
class Div(_Binary):
    """x / y (true division: the result is float), elementwise with broadcasting."""

    name = "div"
    signature = "x / y"
    traits = _Binary.traits - {"fresh_output"}  # (the torch backend has never written over its result)
    scalar, symbol, neutral = operator.truediv, "/", (1, (1,))

    @classmethod
    def dtype(cls, a, b):
        return "float"


@register
class Matmul(Op):
    """x @ y with torch.matmul's rules: 1-d operands are vectors, leading dims broadcast."""

    name = "matmul"
    group = "math"
    arity = (2, 2)
    traits = frozenset({"fresh_output"})
    signature = "x @ y"
    symbol = "@"

    @classmethod
    def shape(cls, xs, a):
        x, y = xs
        for t in xs:
            if t.rank == 0 or t.dtype != "float":
                raise ShapeError(f"needs float inputs of at least 1 dim; got {x} @ {y}")
        sx = (1,) + x.shape if x.rank == 1 else x.shape
        sy = y.shape + (1,) if y.rank == 1 else y.shape
        if sx[-1] != sy[-2]:
            which = "first" if y.rank == 1 else "second-last"
            hint = "transpose the right operand: `x @ transpose(y, -2, -1)`" if y.rank > 1 and sx[-1] == sy[-1] else None
            raise ShapeError(f"needs the last dim of x equal to the {which} dim of y; got {x} @ {y}", hint=hint)
        batch = broadcast(sx[:-2], sy[:-2], what="the batch dims ")
        rows = () if x.rank == 1 else (sx[-2],)
        cols = () if y.rank == 1 else (sy[-1],)
        return TensorType("float", batch + rows + cols)

    @classmethod
    def macs(cls, xs, ys, a):
        return ys[0].numel() * xs[0].shape[-1]


@register
class Constant(_Math):
    """A scalar literal in tensor arithmetic (``x * 2``), as a 0-d tensor."""

    name = "constant"
    arity = (0, 0)
    traits = frozenset()
    signature = "constant(value, dtype=\"float\")"

    class Attrs(opdef.Attrs):
        value: bool | int | float
        dtype: Literal["float", "int", "bool"] = "float"

    @classmethod
    def shape(cls, xs, a):
        if isinstance(a.value, float) and a.dtype != "float":
            raise ShapeError(f"needs dtype float for the value {a.value}; got dtype={a.dtype}")
        return TensorType(a.dtype, ())


class _Unary(_Math):
    """``f(x)`` elementwise; ``result`` is the output dtype, None to keep the input's."""

    traits = frozenset({"elementwise", "unary_elementwise"})
    result = None

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        if x.dtype == "bool":
            raise ShapeError(f"needs a numeric input; got {x}")
        return TensorType(cls.result or x.dtype, x.shape)


@register
class Neg(_Unary):
    """-x, elementwise."""

    name = "neg"
    signature = "-x"
    scalar = operator.neg


@register
class Abs(_Unary):
    """|x|, elementwise."""

    name = "abs"
    signature = "abs(x)"
    scalar = abs


@register
class Sqrt(_Unary):
    """Square root, elementwise (int inputs give float)."""

    name = "sqrt"
    result = "float"
    signature = "sqrt(x)"
    scalar = math.sqrt


@register
class Exp(_Unary):
    """e ** x, elementwise (int inputs give float)."""

    name = "exp"
    result = "float"
    signature = "exp(x)"
    scalar = math.exp


@register
class Log(_Unary):
    """Natural logarithm, elementwise (int inputs give float)."""

    name = "log"
    result = "float"
    signature = "log(x)"
    scalar = math.log


@register
class Sin(_Unary):
    """Sine (radians), elementwise (int inputs give float)."""

    name = "sin"
    result = "float"
    signature = "sin(x)"
    scalar = math.sin


@register
class Cos(_Unary):
    """Cosine (radians), elementwise (int inputs give float)."""

    name = "cos"
    result = "float"
    signature = "cos(x)"
    scalar = math.cos


@register
class Rsqrt(_Unary):
    """1 / sqrt(x), elementwise (int inputs give float)."""

    name = "rsqrt"
    result = "float"
    signature = "rsqrt(x)"

    @staticmethod
    def scalar(x):
        return 1 / math.sqrt(x)


# -- a fused chain of elementwise ops --------------------------------------------------------

# A step is an op with the trait unary_elementwise or binary_elementwise; "r" + a binary op
# that is not commutative ("rsub", "rdiv") takes the running value as the right operand:
# ("rsub", 1.0) is 1.0 - y.
Step = tuple[str, str | float | None]


@register
class FusedElementwise(_Math):
    """A chain of elementwise steps on x0 run as one op (made by -O2's fuse_elementwise)."""

    name = "fused_elementwise"
    arity = (1, None)
    signature = "fused_elementwise(x0, *xs, steps)"

    class Attrs(opdef.Attrs):
        # Each step applies an op to the running value y, which starts as x0:
        #   (unary, None): relu, sigmoid, neg, ... of y (an op with attributes at its defaults)
        #   (unary, value): an op with one float attribute, leaky_relu's slope
        #   (binary, operand): y + operand, ..., ("rsub", o) is o - y; the operand is a tensor
        #   input "x<i>" (which broadcasts to x0's shape) or a scalar constant
        steps: tuple[Step, ...]

    @classmethod
    def shape(cls, xs, a):
        x0 = xs[0]
        for i, x in enumerate(xs):
            if x.dtype != "float" or broadcast(x0.shape, x.shape) != x0.shape:
                raise ShapeError(f"needs float inputs that broadcast to x0 {x0}; got x{i}: {x}")
        if not a.steps:
            raise ShapeError("needs at least one step")
        used = {0}
        for op, arg in a.steps:
            used.add(_check_step(op, arg, len(xs)))
        if len(used) != len(xs):
            raise ShapeError(f"does not use the inputs {', '.join(f'x{i}' for i in range(len(xs)) if i not in used)}")
        return x0

    @classmethod
    def chain(cls, a) -> str:
        """The ops of the chain as a summary shows them: ``mul+add+sigmoid``."""
        return "+".join(reversed_op(op) or op for op, _ in a.steps)


def reversed_op(step: str) -> str | None:
    """The binary op a reversed step applies with swapped operands ("rsub": "sub"), or None."""
    if step[:1] != "r" or opdef.lookup(step) is not None:
        return None
    op = opdef.lookup(step[1:])
    binary = op is not None and "binary_elementwise" in op.traits and "commutative" not in op.traits
    return step[1:] if binary else None


def _check_step(op: str, arg, n_inputs: int) -> int:
    """Check one step; the index of the tensor input it reads (0 when none)."""
    decl = opdef.lookup(op)
    if decl is not None and "unary_elementwise" in decl.traits:
        fields = list(decl.Attrs.model_fields.values())
        if (arg is None and all(not f.is_required() for f in fields)) or (  # None: at its defaults
                isinstance(arg, float) and len(fields) == 1 and fields[0].annotation is float):
            return 0
    elif decl is not None and "binary_elementwise" in decl.traits or reversed_op(op):
        if isinstance(arg, float):
            return 0
        if isinstance(arg, str) and arg[:1] == "x" and arg[1:].isdigit() and int(arg[1:]) < n_inputs:
            return int(arg[1:])
    raise ShapeError(f"has a step it cannot run: ({op!r}, {arg!r})")
