"""Dense layers: ``linear``, ``embedding`` and the tied output projection ``unembed``.

``activation`` (an op with the trait ``activation``: relu, gelu, silu, tanh, sigmoid or
leaky_relu, whose slope is ``activation_slope``) is what the -O2 pass ``fuse_activation``
writes when an activation is the layer's only reader; a spec may set it too.
"""

from __future__ import annotations

from netc.compiler.types import ShapeError, TensorType, concrete
from netc.specs import opdef
from netc.specs.opdef import LayerRef, Op, Param, register

from ._util import Activation, check_min


@register
class Linear(Op):
    """Affine map of the last dim: ``y = x Wᵀ + b``, then ``activation`` if set."""

    name = "linear"
    group = "dense"
    traits = frozenset({"has_weights", "layer", "fresh_output"})
    param_names = ("weight", "bias")
    signature = "linear(out, bias=true)"

    class Attrs(opdef.Attrs):
        out: int
        bias: bool = True
        activation: Activation | None = None  # fused by -O2 (fuse_activation)
        activation_slope: float = 0.01  # leaky_relu's slope

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        if x.rank >= 4:
            raise ShapeError(f"needs a 2-d input [N, F]; got {x}", hint="put `flatten` before `linear`")
        if x.rank < 2:
            raise ShapeError(f"needs a 2-d input [N, F] or a 3-d input [N, T, F]; got {x}")
        if x.dtype != "float":
            raise ShapeError(f"needs a float input; got {x}", hint="put `embedding` before `linear`")
        check_min(1, out=a.out)
        return x.with_shape(x.shape[:-1] + (a.out,))

    @classmethod
    def params(cls, xs, a):
        f = concrete(xs[0].shape[-1], "the input feature size")
        return {"weight": Param((a.out, f)), **({"bias": Param((a.out,))} if a.bias else {})}

    @classmethod
    def macs(cls, xs, ys, a):
        return ys[0].numel() * xs[0].shape[-1]


@register
class Embedding(Op):
    """Lookup table: each int id becomes a learned vector of size ``dim``."""

    name = "embedding"
    weight_is_table = True
    group = "dense"
    traits = frozenset({"has_weights"})
    param_names = ("weight",)
    signature = "embedding(num, dim)"

    class Attrs(opdef.Attrs):
        num: int
        dim: int

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        if x.dtype != "int":
            raise ShapeError(f"needs an int input (token ids); got {x}")
        check_min(1, num=a.num, dim=a.dim)
        return TensorType("float", x.shape + (a.dim,))

    @classmethod
    def params(cls, xs, a):
        return {"weight": Param((a.num, a.dim))}


@register
class Unembed(Op):
    """Tied output projection ``x @ layer.weightᵀ`` (the weights belong to ``layer``)."""

    name = "unembed"
    group = "dense"
    signature = "unembed(layer)"

    class Attrs(opdef.Attrs):
        layer: LayerRef

    @classmethod
    def shape(cls, xs, a):
        num, dim = _table(a.layer)
        x = xs[0]
        if x.rank < 1 or x.dtype != "float" or x.shape[-1] != dim:
            raise ShapeError(f"needs a float input [..., {dim}] (the width of `{a.layer.scope}`); got {x}")
        return x.with_shape(x.shape[:-1] + (num,))

    @classmethod
    def macs(cls, xs, ys, a):
        return ys[0].numel() * xs[0].shape[-1]


def _table(layer: LayerRef) -> tuple[int, int]:
    w = layer.params.get("weight")
    if w is None or len(w.shape) != 2:
        raise ShapeError(f"needs a layer with a 2-d weight, like an embedding; "
                         f"got `{layer.scope}` ({layer.op})")
    return w.shape
