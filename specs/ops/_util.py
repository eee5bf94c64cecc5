"""Helpers shared by the op declarations: int-or-tuple attributes,
sliding-window output sizes, broadcasting and dtype promotion.

Shape rules are written with plain arithmetic on dims, so they hold for concrete sizes and
symbolic ones alike; checks that need a concrete value (an output size that would be empty)
run only when the value is concrete.
"""

from __future__ import annotations

from typing import Literal

from netc.compiler.dims import Dim, Expr
from netc.compiler.limits import MAX_KERNEL_INT
from netc.compiler.types import ShapeError, TensorType
from netc.specs.opdef import op_with

IntPair = int | tuple[int, int]
Same = Literal["same"]
# What a layer may apply to its own output, an op with the trait "activation" (the -O2 pass
# fuse_activation sets it; a spec may too).
Activation = op_with("activation")

# Names of the spatial axes in messages: "output height would be 0".
_AXES = {1: ("length",), 2: ("height", "width")}


def pair(v: int | tuple[int, ...], n: int = 2) -> tuple[int, ...]:
    """An int-or-tuple attribute as an ``n``-tuple: ``pair(3) == (3, 3)``."""
    return (v,) * n if isinstance(v, int) else tuple(v)


def fmt_shape(dims) -> str:
    return f"[{', '.join(str(d) for d in dims)}]"


WINDOW_ATTRS = frozenset({"kernel", "stride", "padding", "dilation", "output_padding"})


def check_min(low: int, **attrs) -> None:
    """Each attribute (an int or a tuple of ints) is at least ``low``; a window attribute
    (kernel, stride, padding, dilation, output_padding) is also at most ``MAX_KERNEL_INT``
    (2**31 - 1): torch's convolution and pooling kernels take them as 32-bit ints and fail
    past it (``could not create a primitive descriptor``, ``cannot be converted to type int
    without overflow``)."""
    for name, v in attrs.items():
        if any(x < low for x in (v if isinstance(v, tuple) else (v,))):
            raise ShapeError(f"needs {name} >= {low}; got {name}={v}")
        if name in WINDOW_ATTRS and any(x > MAX_KERNEL_INT for x in (v if isinstance(v, tuple) else (v,))):
            raise ShapeError(f"needs {name} <= 2**31 - 1 (the largest size torch's kernels take); got {name}={v}")


def check_prob(name: str, p: float) -> None:
    if not 0 <= p < 1:
        raise ShapeError(f"needs 0 <= {name} < 1; got {name}={p}")


def expect(x: TensorType, ranks: int | tuple[int, ...], layout: str = "", dtype: str = "float") -> tuple:
    """The dims of ``x`` after checking its rank (one of ``ranks``) and its dtype."""
    dims = x.expect_rank(*(ranks if isinstance(ranks, tuple) else (ranks,)), layout=layout)
    if dtype and x.dtype != dtype:
        raise ShapeError(f"needs a{'n' if dtype == 'int' else ''} {dtype} input; got {x}")
    return dims


def expect_min_rank(x: TensorType, rank: int, layout: str, dtype: str = "float") -> tuple:
    """The dims of ``x`` after checking it has at least ``rank`` dims and the dtype."""
    if x.rank < rank:
        raise ShapeError(f"needs an input of at least {rank} dims {layout}; got {x}")
    return expect(x, x.rank, layout, dtype)


def spatial_layout(n: int) -> str:
    return "[N, C, L]" if n == 1 else "[N, C, H, W]"


def window_out(sizes, kernel, stride, padding, dilation) -> tuple[Dim, ...]:
    """Output sizes of a sliding window (convolution, pooling), exactly as torch computes them."""
    out = []
    for axis, i, k, s, p, d in zip(_AXES[len(sizes)], sizes, kernel, stride, padding, dilation):
        o = (i + 2 * p - d * (k - 1) - 1) // s + 1
        if isinstance(o, int) and o < 1:
            detail = "".join(f", {n} {v}" for n, v, dflt in
                             (("dilation", d, 1), ("padding", p, 0), ("stride", s, 1)) if v != dflt)
            fits = (i + 2 * p - 1) // d + 1  # the largest kernel that gives an output
            hint = f"a kernel of at most {fits} fits this input" if isinstance(fits, int) and fits >= 1 else None
            raise ShapeError(f"output {axis} would be {max(o, 0)} (input {i}, kernel {k}{detail})", hint=hint)
        out.append(o)
    return tuple(out)


def transposed_out(sizes, kernel, stride, padding, output_padding) -> tuple[Dim, ...]:
    """Output sizes of a transposed convolution (dilation 1), as torch computes them."""
    out = []
    for axis, i, k, s, p, op in zip(_AXES[len(sizes)], sizes, kernel, stride, padding, output_padding):
        o = (i - 1) * s - 2 * p + k + op
        if isinstance(o, int) and o < 1:
            raise ShapeError(f"output {axis} would be {max(o, 0)} (input {i}, kernel {k}, padding {p})")
        out.append(o)
    return tuple(out)


def broadcast(a: tuple[Dim, ...], b: tuple[Dim, ...], what: str = "") -> tuple[Dim, ...]:
    """NumPy broadcasting: align from the right; equal dims, or one of them 1."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            raise ShapeError(f"cannot broadcast {what}{fmt_shape(a)} with {fmt_shape(b)}")
    return tuple(reversed(out))


_RANK = {"bool": 0, "int": 1, "float": 2}


def promote(*dtypes: str) -> str:
    """The result dtype of arithmetic: float if any is float, else int if any is int, else bool."""
    return max(dtypes, key=_RANK.__getitem__)


def is_int(d: Dim, value: int) -> bool:
    """``d`` is the concrete size ``value`` (a symbolic dim never is)."""
    return not isinstance(d, Expr) and d == value
