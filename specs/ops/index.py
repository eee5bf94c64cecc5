"""Learned free tensors and indexing: ``parameter`` (written ``param name: [dims] = init``)
and ``index`` (written ``x[:, 0]``, ``x[..., :k]``, ``x[:, None]``). MACs: 0."""

from __future__ import annotations

from typing import Literal

from netc.compiler.dims import Expr, floordiv
from netc.compiler.types import ShapeError, TensorType, concrete
from netc.specs import opdef
from netc.specs.init import Init
from netc.specs.opdef import Op, Param, register

from ._util import fmt_shape

SliceItem = tuple[int | None, int | None, int | None]  # start, stop, step
IndexItem = int | SliceItem | Literal["...", "new"]


@register
class Parameter(Op):
    """A learned tensor of its own (a class token, a position table, a LayerScale gain), started by ``init``. Its one weight is named by the tensor itself (``encoder.pos``)."""

    name = "parameter"
    weight_is_table = True
    group = "math"  # written as syntax (`param name: ...`), not a call, as `x + y` is
    arity = (0, 0)
    traits = frozenset({"has_weights"})
    param_names = ("",)
    signature = "param name: [dims] = init"

    class Attrs(opdef.Attrs):
        shape: tuple[int | Expr, ...]
        init: Init

    @classmethod
    def shape(cls, xs, a):
        for d in a.shape:
            concrete(d, "a param's size")
            if d < 1:
                raise ShapeError(f"needs sizes of at least 1; got {fmt_shape(a.shape)}")
        return TensorType("float", a.shape)

    @classmethod
    def params(cls, xs, a):
        return {"": Param(tuple(a.shape))}


@register
class Index(Op):
    """Python's indexing and slicing: an int picks one position and drops the dim, a slice ``start:stop:step`` keeps a range, ``...`` stands for the dims not named, ``None`` adds a dim of size 1. Constant indices are checked against concrete sizes; a slice of a symbolic size is taken to fit inside it."""

    name = "index"
    group = "math"  # written as syntax (`x[...]`), not a call, as `x + y` is
    signature = "x[i, start:stop:step, ..., None]"

    class Attrs(opdef.Attrs):
        items: tuple[IndexItem, ...]

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        return x.with_shape(_indexed(x, a.items))


def expand_ellipsis(items, rank: int, x: TensorType | None = None) -> list:
    """``items`` with ``...`` replaced by full slices (one added at the end when it is
    missing), so that each item but ``new`` takes one dim of a tensor of ``rank`` dims."""
    taking = sum(1 for i in items if i not in ("...", "new"))
    if sum(1 for i in items if i == "...") > 1:
        raise ShapeError("more than one `...`", hint="keep one `...`")
    if taking > rank:
        raise ShapeError(f"{taking} indices for a {rank}-d tensor{f' {x}' if x is not None else ''}",
                         hint=f"a {rank}-d tensor takes at most {rank} ind{'ex' if rank == 1 else 'ices'}: drop "
                              f"{taking - rank} (is it the tensor you meant?)")
    full = (None, None, None)
    if "..." not in items:
        return list(items) + [full] * (rank - taking)
    at = items.index("...")
    return list(items[:at]) + [full] * (rank - taking) + list(items[at + 1:])


def _indexed(x: TensorType, items) -> tuple:
    out, axis = [], 0
    for item in expand_ellipsis(items, x.rank, x):
        if item == "new":
            out.append(1)
            continue
        d = x.shape[axis]
        if isinstance(item, int):
            _check_index(item, d, axis, x)
        else:
            out.append(_slice_size(item, d, axis, x))
        axis += 1
    return tuple(out)


def _check_index(i: int, d, axis: int, x: TensorType) -> None:
    if isinstance(d, int) and not -d <= i < d:
        raise ShapeError(f"index {i} is out of range for dim {axis} of {x}, which has size {d}",
                         hint=f"indices of that dim are 0 to {d - 1} (or -{d} to -1 from the end)")


def _slice_size(s, d, axis: int, x: TensorType):
    start, stop, step = s
    step = 1 if step is None else step
    if step < 1:
        raise ShapeError(f"a slice step must be at least 1; got {step}",
                         hint="to reverse a dim, use `flip`" if step < 0 else None)
    if isinstance(d, int):
        n = len(range(*slice(start, stop, step).indices(d)))
        if n == 0:
            raise ShapeError(f"slice {_fmt(s)} of dim {axis} of {x}, which has size {d}, is empty",
                             hint=f"that dim's indices are 0 to {d - 1}")
        return n
    lo = 0 if start is None else (start if start >= 0 else d + start)
    hi = d if stop is None else (stop if stop >= 0 else d + stop)
    return floordiv(hi - lo + step - 1, step) if step > 1 else hi - lo


def _fmt(s) -> str:
    start, stop, step = ("" if v is None else str(v) for v in s)
    return f"{start}:{stop}" + (f":{step}" if step else "")


def index_code(items) -> str:
    """The subscript as Python writes it: ``:, 0, ..., None`` (for both backends)."""
    parts = []
    for item in items:
        if item == "new":
            parts.append("None")
        elif item == "...":
            parts.append("...")
        elif isinstance(item, int):
            parts.append(str(item))
        else:
            parts.append(_fmt(item))
    return ", ".join(parts)
