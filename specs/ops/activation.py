"""Activations: shape-preserving functions of a float tensor. MACs: 0."""

from __future__ import annotations

from netc.compiler.types import normalize_axis
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
    """Gaussian error linear unit, x * Φ(x) (exact, with erf)."""

    name = "gelu"
    signature = "gelu"


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
