"""Ops that grow (or crop) a tensor by copying its elements: ``pad``, ``expand``,
``broadcast_to``, ``repeat``. Sizes and widths may be size expressions of symbolic dims
(``pad((0, W2 - W))``); checks that need a number run where the number is known. MACs: 0.
"""

from __future__ import annotations

from typing import Literal

from netc.compiler.dims import Expr
from netc.compiler.types import ShapeError
from netc.specs import opdef
from netc.specs.opdef import Op, register

from ._util import fmt_shape

DimAttr = int | Expr


def _known(d) -> bool:
    return not isinstance(d, Expr)


@register
class Pad(Op):
    """Pad with ``F.pad``'s meaning: ``widths`` is (left, right) of the last dim, then of the one before it, and so on; a negative width crops (``mode="constant"`` only). ``"constant"`` fills with ``value``, ``"reflect"`` mirrors the tensor without repeating its edge (each width below the dim's size), ``"replicate"`` repeats the edge; these two pad the last 1, 2 or 3 dims of a tensor with one or two dims more."""

    name = "pad"
    group = "shape"
    signature = 'pad(widths, mode="constant", value=0.0)'

    class Attrs(opdef.Attrs):
        widths: tuple[DimAttr, ...]
        mode: Literal["constant", "reflect", "replicate"] = "constant"
        value: float = 0.0

    @classmethod
    def shape(cls, xs, a):
        x, w = xs[0], a.widths
        k = len(w) // 2
        if not w or len(w) % 2 or k > x.rank:
            raise ShapeError(f"needs (left, right) widths for 1 to {x.rank} dims, last dim first: an even "
                             f"number, at most {2 * x.rank}; got {len(w)} widths for {x}",
                             hint=f"pad the last dim of {x} with `pad((1, 1))`")
        if a.mode != "constant":
            cls.check_mode(x, a, k)
        shape = list(x.shape)
        for i in range(k):
            axis = x.rank - 1 - i
            d, lo, hi = shape[axis], w[2 * i], w[2 * i + 1]
            if a.mode == "reflect" and _known(d) and any(_known(p) and p >= d for p in (lo, hi)):
                raise ShapeError(f'reflect padding needs widths below the size of the dim they pad; got '
                                 f"({lo}, {hi}) for dim {axis} of size {d}",
                                 hint=f'use mode="replicate" or "constant", or widths of at most {d - 1}')
            out = d + lo + hi
            if _known(out) and out <= 0:
                raise ShapeError(f"would leave dim {axis} empty: size {d} with widths ({lo}, {hi}) gives {out}",
                                 hint=f"negative widths crop: together at most {d - 1}, so that the dim keeps "
                                      "at least 1")
            shape[axis] = out
        return x.with_shape(tuple(shape))

    @classmethod
    def check_mode(cls, x, a, k):
        if not (1 <= k <= 3 and x.rank in (k + 1, k + 2)):
            raise ShapeError(f'mode="{a.mode}" pads the last 1, 2 or 3 dims of a tensor with 1 or 2 dims more; '
                             f"got {2 * k} widths for {x}", hint='mode="constant" pads any dims')
        if any(_known(p) and p < 0 for p in a.widths):
            raise ShapeError(f'mode="{a.mode}" needs widths >= 0 (only mode="constant" crops); got {a.widths}')
        if a.value != 0.0:
            raise ShapeError(f'value fills only with mode="constant"; got value={a.value} with mode="{a.mode}"')
        x.expect_float()


class _Expand(Op):
    """Shared rule of ``expand`` and ``broadcast_to``."""

    group = "shape"
    varargs = "sizes"

    class Attrs(opdef.Attrs):
        sizes: tuple[DimAttr, ...]

    @classmethod
    def shape(cls, xs, a):
        x, sizes = xs[0], a.sizes
        new = len(sizes) - x.rank
        if new < 0:
            raise ShapeError(f"needs at least as many sizes as {x} has dims; got {len(sizes)}: {fmt_shape(sizes)}",
                             hint=f"give {x.rank} sizes; -1 keeps a dim")
        out = []
        for i, s in enumerate(sizes):
            d = x.shape[i - new] if i >= new else None
            if _known(s) and s < 0 and (s != -1 or d is None):
                where = "a new leading dim" if d is None else f"dim {i}"
                raise ShapeError(f"needs sizes >= 0 (-1 keeps a dim of the input); got {s} for {where}")
            if d is None or s == -1 or s == d:
                out.append(d if s == -1 else s)
            elif d == 1:
                out.append(s)
            else:
                raise ShapeError(f"cannot expand dim {i - new} of {x} (size {d}) to {s}: only a dim of size 1 "
                                 f"grows", hint=f"keep it with -1, or use `repeat` to tile it {s} / {d} times")
        return x.with_shape(tuple(out))


@register
class Expand(_Expand):
    """A view of x with dims of size 1 grown to ``sizes`` (``Tensor.expand``): -1 keeps a dim, extra sizes add leading dims; no copy in torch."""

    name = "expand"
    signature = "expand(*sizes)"


@register
class BroadcastTo(_Expand):
    """x broadcast to the shape ``sizes`` (``torch.broadcast_to``), as ``expand``: -1 keeps a dim, extra sizes add leading dims."""

    name = "broadcast_to"
    signature = "broadcast_to(*sizes)"


@register
class Repeat(Op):
    """x tiled ``times[i]`` times along dim i (``Tensor.repeat``); extra counts add leading dims."""

    name = "repeat"
    group = "shape"
    varargs = "times"
    signature = "repeat(*times)"

    class Attrs(opdef.Attrs):
        times: tuple[DimAttr, ...]

    @classmethod
    def shape(cls, xs, a):
        x, times = xs[0], a.times
        new = len(times) - x.rank
        if new < 0:
            raise ShapeError(f"needs a count for each of the {x.rank} dims of {x}; got {len(times)}: "
                             f"{fmt_shape(times)}", hint="a count of 1 keeps a dim")
        if any(_known(t) and t < 1 for t in times):
            raise ShapeError(f"needs counts >= 1; got {fmt_shape(times)}")
        return x.with_shape(tuple(t if i < new else t * x.shape[i - new] for i, t in enumerate(times)))
