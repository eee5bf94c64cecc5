"""Pooling and resampling: ``maxpool1d/2d``, ``avgpool1d/2d``, ``adaptive_avgpool2d``,
``global_avgpool``, ``upsample``.

MACs: max pooling compares and counts 0; average pooling accumulates each window element once
(``numel(y) * prod(kernel)``, or ``numel(x)`` for the adaptive and global forms); upsampling 0.
"""

from __future__ import annotations

from contextlib import suppress
from fractions import Fraction
from typing import ClassVar, Literal

from netc.compiler.dims import DimError, exact_div, product
from netc.compiler.types import ShapeError
from netc.specs import opdef
from netc.specs.opdef import Op, register

from ._util import IntPair, check_min, expect, pair, spatial_layout, window_out


class _Pool(Op):
    """Shared rule of the windowed pools; ``dims`` is the number of spatial dims."""

    dims: ClassVar[int]
    group = "pool"

    @classmethod
    def shape(cls, xs, a):
        n, c, *size = expect(xs[0], cls.dims + 2, spatial_layout(cls.dims))
        k, p = pair(a.kernel, cls.dims), pair(a.padding, cls.dims)
        stride = a.kernel if a.stride is None else a.stride
        check_min(1, kernel=a.kernel, stride=stride)
        check_min(0, padding=a.padding)
        if any(2 * pp > kk for pp, kk in zip(p, k)):
            raise ShapeError(f"needs padding at most half the kernel; "
                             f"got padding={a.padding}, kernel={a.kernel}")
        if a.ceil_mode:
            return xs[0].with_shape((n, c, *ceil_window_out(size, k, pair(stride, cls.dims), p)))
        return xs[0].with_shape((n, c, *window_out(size, k, pair(stride, cls.dims), p, (1,) * cls.dims)))


def ceil_window_out(sizes, kernel, stride, padding) -> tuple:
    """Output sizes of a pool with ``ceil_mode=true``, as torch computes them: the window count
    rounded up, less one when the last window would start past the input and its left padding.
    A window may be longer than the padded input (size 1, kernel 2, stride 2 gives 1).
    That correction never applies when kernel - padding >= stride (some window start lies
    between the last full window's and the end of the input); otherwise it needs the size."""
    out = []
    for i, k, s, p in zip(sizes, kernel, stride, padding):
        span = i + 2 * p - k
        o = (span + s - 1) // s + 1  # floor division, as torch's: a window may reach past the end
        if isinstance(o, int) and o <= 0:
            raise ShapeError(f"output size would be 0 (input {i}, kernel {k}, stride {s}, padding {p}, "
                             f"ceil_mode=true)", hint=f"a kernel of at most {i + 2 * p + s - 1} fits this input")
        if k - p < s:
            if not isinstance(i, int):
                raise ShapeError(f"with ceil_mode=true and stride {s} > kernel {k} - padding {p}, the output "
                                 f"size depends on the value of {i}", hint="give that dim a concrete size")
            o -= (o - 1) * s >= i + p
        out.append(o)
    return tuple(out)


class _Pool1dAttrs(opdef.Attrs):
    kernel: int
    stride: int | None = None  # None: the kernel size, as torch
    padding: int = 0
    ceil_mode: bool = False


class _Pool2dAttrs(opdef.Attrs):
    kernel: IntPair
    stride: IntPair | None = None
    padding: IntPair = 0
    ceil_mode: bool = False


class _AvgPool1dAttrs(_Pool1dAttrs):
    count_include_pad: bool = True


class _AvgPool2dAttrs(_Pool2dAttrs):
    count_include_pad: bool = True


class _AvgPool(_Pool):
    @classmethod
    def macs(cls, xs, ys, a):
        return ys[0].numel() * product(pair(a.kernel, cls.dims))


@register
class MaxPool1d(_Pool):
    """Max over sliding windows of [N, C, L]; ``ceil_mode=true`` rounds the output size up (a last, partial window), as torch."""

    name = "maxpool1d"
    dims = 1
    Attrs = _Pool1dAttrs
    signature = "maxpool1d(kernel, stride=kernel, padding=0, ceil_mode=false)"


@register
class MaxPool2d(_Pool):
    """Max over sliding windows of [N, C, H, W]; ``ceil_mode=true`` rounds the output size up (a last, partial window), as torch."""

    name = "maxpool2d"
    dims = 2
    traits = frozenset({"keeps_layout", "layout_costed"})
    Attrs = _Pool2dAttrs
    signature = "maxpool2d(kernel, stride=kernel, padding=0, ceil_mode=false)"


@register
class AvgPool1d(_AvgPool):
    """Mean over sliding windows of [N, C, L]; zero padding counts in the mean unless ``count_include_pad=false`` (a window past the end with ``ceil_mode=true`` never counts it)."""

    name = "avgpool1d"
    dims = 1
    Attrs = _AvgPool1dAttrs
    signature = "avgpool1d(kernel, stride=kernel, padding=0, ceil_mode=false, count_include_pad=true)"


@register
class AvgPool2d(_AvgPool):
    """Mean over sliding windows of [N, C, H, W]; zero padding counts in the mean unless ``count_include_pad=false`` (a window past the end with ``ceil_mode=true`` never counts it)."""

    name = "avgpool2d"
    dims = 2
    traits = frozenset({"keeps_layout", "layout_costed"})
    Attrs = _AvgPool2dAttrs
    signature = "avgpool2d(kernel, stride=kernel, padding=0, ceil_mode=false, count_include_pad=true)"


@register
class AdaptiveAvgPool2d(Op):
    """Mean over a grid of windows chosen so that the output is [N, C, *size]."""

    name = "adaptive_avgpool2d"
    group = "pool"
    traits = frozenset({"keeps_layout"})
    signature = "adaptive_avgpool2d(size)"

    class Attrs(opdef.Attrs):
        size: IntPair

    @classmethod
    def shape(cls, xs, a):
        n, c, _, _ = expect(xs[0], 4, spatial_layout(2))
        check_min(1, size=a.size)
        return xs[0].with_shape((n, c, *pair(a.size)))

    @classmethod
    def macs(cls, xs, ys, a):
        return xs[0].numel()


@register
class GlobalAvgPool(Op):
    """Mean over all spatial positions: [N, C, H, W] or [N, C, L] -> [N, C]."""

    name = "global_avgpool"
    group = "pool"
    signature = "global_avgpool"

    @classmethod
    def shape(cls, xs, a):
        n, c, *_ = expect(xs[0], (3, 4), "[N, C, L] or [N, C, H, W]")
        return xs[0].with_shape((n, c))

    @classmethod
    def macs(cls, xs, ys, a):
        return xs[0].numel()


@register
class Upsample(Op):
    """Resize the spatial dims of [N, C, L] or [N, C, H, W] by ``scale``."""

    name = "upsample"
    group = "pool"
    traits = frozenset({"keeps_layout"})
    signature = 'upsample(scale, mode="nearest")'

    class Attrs(opdef.Attrs):
        scale: int | float
        mode: Literal["nearest", "bilinear"] = "nearest"

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        n, c, *size = expect(x, (3, 4), "[N, C, L] or [N, C, H, W]")
        if a.mode == "bilinear" and x.rank != 4:
            raise ShapeError(f'needs a 4-d input [N, C, H, W] with mode="bilinear"; got {x}')
        if a.scale <= 0:
            raise ShapeError(f"needs scale > 0; got scale={a.scale}")
        return x.with_shape((n, c, *(_scaled(d, a.scale) for d in size)))


def _scaled(d, scale):
    """``d * scale``, which must come out a whole number (torch would round it down)."""
    if isinstance(scale, int):
        return d * scale
    if isinstance(d, int):
        if (d * scale).is_integer():  # torch's own float arithmetic
            return int(d * scale)
    else:
        f = Fraction(scale).limit_denominator(1 << 16)
        with suppress(DimError):
            return exact_div(d * f.numerator, f.denominator)
    raise ShapeError(f"needs a scale that gives whole sizes; {d} * {scale} is not whole")
