"""Convolutions: ``conv1d``, ``conv2d`` and ``conv_transpose2d``, with torch's output sizes.

MACs: one multiply-accumulate per output element per weight it reads,
``numel(y) * (C_in / groups) * prod(kernel)``; for the transposed convolution, one per input
element per weight it scatters to, ``numel(x) * out * prod(kernel)``.

``activation`` (an op with the trait ``activation``: relu, gelu, silu, tanh, sigmoid or
leaky_relu, whose slope is ``activation_slope``) is what the -O2 pass ``fuse_activation``
writes when an activation is the layer's only reader; a spec may set it too.
"""

from __future__ import annotations

from typing import ClassVar

from netc.compiler.dims import product
from netc.compiler.types import ShapeError, TensorType, concrete
from netc.specs import opdef
from netc.specs.opdef import Op, Param, register

from ._util import (
    Activation,
    IntPair,
    Same,
    check_min,
    expect,
    pair,
    spatial_layout,
    transposed_out,
    window_out,
)


def _weights(out: int, fan_in: int, kernel: tuple[int, ...], bias: bool) -> dict[str, Param]:
    return {"weight": Param((out, fan_in, *kernel)), **({"bias": Param((out,))} if bias else {})}


class _Conv(Op):
    """Shared rule of conv1d and conv2d; ``dims`` is the number of spatial dims."""

    dims: ClassVar[int]
    group = "conv"
    traits = frozenset({"has_weights", "layer", "fresh_output"})
    param_names = ("weight", "bias")

    @classmethod
    def shape(cls, xs, a):
        n, c, *size = expect(xs[0], cls.dims + 2, spatial_layout(cls.dims))
        check_min(1, out=a.out, kernel=a.kernel, stride=a.stride, dilation=a.dilation, groups=a.groups)
        if c % a.groups != 0:
            raise ShapeError(f"needs input channels divisible by groups; got {c} channels, groups={a.groups}",
                             hint=f"for a depthwise convolution use groups={c}" if a.out % c == 0 else None)
        if a.out % a.groups:
            raise ShapeError(f"needs out divisible by groups; got out={a.out}, groups={a.groups}")
        k, s, d = (pair(v, cls.dims) for v in (a.kernel, a.stride, a.dilation))
        if a.padding == "same":
            if s != (1,) * cls.dims:
                raise ShapeError(f'needs stride=1 with padding="same"; got stride={a.stride}')
            return TensorType("float", (n, a.out, *size))
        check_min(0, padding=a.padding)
        return TensorType("float", (n, a.out, *window_out(size, k, s, pair(a.padding, cls.dims), d)))

    @classmethod
    def params(cls, xs, a):
        c = concrete(xs[0].shape[1], "the input channel count")
        return _weights(a.out, c // a.groups, pair(a.kernel, cls.dims), a.bias)

    @classmethod
    def macs(cls, xs, ys, a):
        return ys[0].numel() * (xs[0].shape[1] // a.groups) * product(pair(a.kernel, cls.dims))


@register
class Conv1d(_Conv):
    """1-d convolution over [N, C, L], then ``activation`` if set."""

    name = "conv1d"
    dims = 1
    signature = 'conv1d(out, kernel, stride=1, padding=0 or "same", dilation=1, groups=1, bias=true)'

    class Attrs(opdef.Attrs):
        out: int
        kernel: int
        stride: int = 1
        padding: int | Same = 0
        dilation: int = 1
        groups: int = 1
        bias: bool = True
        activation: Activation | None = None  # fused by -O2 (fuse_activation)
        activation_slope: float = 0.01  # leaky_relu's slope


@register
class Conv2d(_Conv):
    """2-d convolution over [N, C, H, W] (each size an int or (h, w)), then ``activation`` if set."""

    name = "conv2d"
    dims = 2
    traits = _Conv.traits | {"channels_last"}
    signature = 'conv2d(out, kernel, stride=1, padding=0 or "same", dilation=1, groups=1, bias=true)'

    class Attrs(opdef.Attrs):
        out: int
        kernel: IntPair
        stride: IntPair = 1
        padding: IntPair | Same = 0
        dilation: IntPair = 1
        groups: int = 1
        bias: bool = True
        activation: Activation | None = None  # fused by -O2 (fuse_activation)
        activation_slope: float = 0.01  # leaky_relu's slope


@register
class ConvTranspose2d(Op):
    """Transposed 2-d convolution over [N, C, H, W] (conv2d's gradient; upsamples), then ``activation``."""

    name = "conv_transpose2d"
    group = "conv"
    traits = frozenset({"has_weights", "layer", "channels_last", "fresh_output"})
    param_names = ("weight", "bias")
    weight_out_axis = 1  # weight: [in, out, kh, kw]
    signature = "conv_transpose2d(out, kernel, stride=1, padding=0, output_padding=0, bias=true)"

    class Attrs(opdef.Attrs):
        out: int
        kernel: IntPair
        stride: IntPair = 1
        padding: IntPair = 0
        output_padding: IntPair = 0
        bias: bool = True
        activation: Activation | None = None  # fused by -O2 (fuse_activation)
        activation_slope: float = 0.01  # leaky_relu's slope

    @classmethod
    def shape(cls, xs, a):
        n, _, *size = expect(xs[0], 4, spatial_layout(2))
        check_min(1, out=a.out, kernel=a.kernel, stride=a.stride)
        check_min(0, padding=a.padding, output_padding=a.output_padding)
        s, op = pair(a.stride), pair(a.output_padding)
        if any(o >= st for o, st in zip(op, s)):
            raise ShapeError(f"needs output_padding < stride; got output_padding={a.output_padding}, "
                             f"stride={a.stride}")
        return TensorType("float", (n, a.out, *transposed_out(size, pair(a.kernel), s, pair(a.padding), op)))

    @classmethod
    def params(cls, xs, a):
        c = concrete(xs[0].shape[1], "the input channel count")
        w = _weights(c, a.out, pair(a.kernel), False)
        return {**w, **({"bias": Param((a.out,))} if a.bias else {})}

    @classmethod
    def macs(cls, xs, ys, a):
        return xs[0].numel() * a.out * product(pair(a.kernel))
