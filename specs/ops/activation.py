"""Activations: shape-preserving functions of a float tensor. MACs: 0."""

from __future__ import annotations

from typing import Literal

from netc.compiler.types import ShapeError, normalize_axis
from netc.specs import opdef
from netc.specs.opdef import Op, register


class _Activation(Op):
    group = "activation"
    traits = frozenset({"elementwise", "unary_elementwise", "activation"})

    @classmethod
    def shape(cls, xs, a):
        xs[0].expect_float()
        return xs[0]


@register
class Relu(_Activation):
    """max(x, 0), elementwise."""

    name = "relu"
    signature = "relu"


@register
class LeakyRelu(_Activation):
    """x where x > 0, else slope * x."""

    name = "leaky_relu"
    signature = "leaky_relu(slope=0.01)"

    class Attrs(opdef.Attrs):
        slope: float = 0.01


@register
class Gelu(_Activation):
    """Gaussian error linear unit, x * Φ(x): exact (with erf) by default; ``approximate="tanh"`` is torch's (and GPT-2's) tanh form, 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""

    name = "gelu"
    signature = 'gelu(approximate="none")'

    class Attrs(opdef.Attrs):
        approximate: Literal["none", "tanh"] = "none"


@register
class Relu6(_Activation):
    """min(max(x, 0), 6), elementwise (MobileNet)."""

    name = "relu6"
    signature = "relu6"


@register
class Hardsigmoid(_Activation):
    """relu6(x + 3) / 6, elementwise: a piecewise-linear sigmoid (MobileNetV3)."""

    name = "hardsigmoid"
    signature = "hardsigmoid"


@register
class Hardswish(_Activation):
    """x * relu6(x + 3) / 6, elementwise: a piecewise-linear silu (MobileNetV3)."""

    name = "hardswish"
    signature = "hardswish"


@register
class Clamp(Op):
    """x limited to [min, max], elementwise; either bound may be left out, not both. (Elementwise, but not a fused step: it has two attributes.)"""

    name = "clamp"
    group = "activation"
    traits = frozenset({"elementwise"})
    signature = "clamp(min=none, max=none)"

    class Attrs(opdef.Attrs):
        min: float | None = None
        max: float | None = None

    @classmethod
    def shape(cls, xs, a):
        xs[0].expect_float()
        if a.min is None and a.max is None:
            raise ShapeError("needs a bound; got neither min nor max", hint="write `clamp(min=0.0, max=6.0)`, "
                             "or one of them")
        if a.min is not None and a.max is not None and a.min > a.max:
            raise ShapeError(f"needs min <= max; got min={a.min}, max={a.max}")
        return xs[0]


@register
class Silu(_Activation):
    """x * sigmoid(x) (also called swish)."""

    name = "silu"
    signature = "silu"


@register
class Tanh(_Activation):
    """Hyperbolic tangent, elementwise."""

    name = "tanh"
    signature = "tanh"


@register
class Sigmoid(_Activation):
    """1 / (1 + exp(-x)), elementwise."""

    name = "sigmoid"
    signature = "sigmoid"


class _AlongDim(_Activation):
    """Activations that normalise along one dim: not elementwise."""

    traits = frozenset()

    class Attrs(opdef.Attrs):
        dim: int = -1

    @classmethod
    def shape(cls, xs, a):
        normalize_axis(a.dim, xs[0].rank)
        return super().shape(xs, a)


@register
class Softmax(_AlongDim):
    """exp(x) normalised to sum to 1 along ``dim``."""

    name = "softmax"
    signature = "softmax(dim=-1)"


@register
class LogSoftmax(_AlongDim):
    """log(softmax(x)) along ``dim``, computed stably."""

    name = "log_softmax"
    signature = "log_softmax(dim=-1)"
