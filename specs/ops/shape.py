"""Data movement and reductions: ``flatten``, ``reshape``, ``transpose``, ``permute``,
``concat``, ``split``, ``mean``, ``sum``, ``positions``, ``memory_format``. MACs: 0.
"""

from __future__ import annotations

from typing import Literal

from netc.compiler.dims import DimError, Expr, exact_div, product
from netc.compiler.limits import MAX_OUTPUTS
from netc.compiler.types import ShapeError, TensorType, normalize_axis
from netc.specs import opdef
from netc.specs.opdef import Op, register

from ._util import check_min, fmt_shape, is_int

DimAttr = int | Expr


class _Shape(Op):
    group = "shape"


@register
class MemoryFormat(_Shape):
    """The same values stored in another layout: ``channels_last`` (N, H, W, C) or ``contiguous``."""

    # Made by -O2's use_channels_last: channels-last is the layout convolution kernels run
    # fastest on. The NumPy executor treats it as the identity. Where the cost model's
    # decision depends on the thread count, ``threads`` gives the first thread count of each
    # range and ``min_batch`` one batch per range (0: keep the layout at any batch):
    # ``threads=(1, 2), min_batch=(6, 1)`` converts from batch 6 at one thread, at every
    # batch from two threads (torch.get_num_threads() at run time).

    name = "memory_format"
    signature = 'memory_format(format="contiguous", min_batch=1, threads=())'

    class Attrs(opdef.Attrs):
        format: Literal["contiguous", "channels_last"] = "contiguous"
        min_batch: int | tuple[int, ...] = 1  # channels_last from this batch (dim 0) on; below it the layout is kept
        threads: tuple[int, ...] = ()  # the first thread count of each range min_batch gives a batch for

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        if a.threads:
            if not isinstance(a.min_batch, tuple) or len(a.min_batch) != len(a.threads):
                raise ShapeError(f"needs one min_batch per thread range; got threads={a.threads}, "
                                 f"min_batch={a.min_batch}")
            if a.threads[0] != 1 or any(p >= q for p, q in zip(a.threads, a.threads[1:])):
                raise ShapeError(f"needs threads ascending from 1; got threads={a.threads}")
            check_min(0, min_batch=a.min_batch)
        elif isinstance(a.min_batch, tuple):
            raise ShapeError(f"needs threads=(...) for a min_batch per thread range; got min_batch={a.min_batch}")
        else:
            check_min(1, min_batch=a.min_batch)
        if a.format == "channels_last" and x.rank != 4:
            raise ShapeError(f"channels_last needs a 4-d input [N, C, H, W]; got {x}")
        return x

    @staticmethod
    def min_batch_at(a, threads: int) -> int:
        """The batch from which the value is converted when torch runs ``threads`` threads
        (0: never)."""
        if not a.threads:
            return a.min_batch
        return a.min_batch[max(i for i, t in enumerate(a.threads) if t <= threads)]


@register
class Flatten(_Shape):
    """Merge dims ``start`` to ``end`` (inclusive) into one."""

    name = "flatten"
    traits = frozenset({"reshape"})
    signature = "flatten(start=1, end=-1)"

    class Attrs(opdef.Attrs):
        start: int = 1
        end: int = -1

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        s, e = normalize_axis(a.start, x.rank), normalize_axis(a.end, x.rank)
        if s > e:
            raise ShapeError(f"needs start <= end; got start={a.start}, end={a.end} for {x}")
        return x.with_shape(x.shape[:s] + (product(x.shape[s:e + 1]),) + x.shape[e + 1:])


@register
class Reshape(_Shape):
    """View the elements in a new shape; one dim may be -1 (inferred)."""

    name = "reshape"
    traits = frozenset({"reshape"})
    varargs = "shape"
    signature = "reshape(*shape)"

    class Attrs(opdef.Attrs):
        shape: tuple[DimAttr, ...]

    @classmethod
    def shape(cls, xs, a):
        x, dims = xs[0], a.shape
        holes = [i for i, d in enumerate(dims) if is_int(d, -1)]
        if len(holes) > 1 or any(isinstance(d, int) and d < -1 for d in dims):
            raise ShapeError(f"needs sizes >= 0 and at most one -1; got {fmt_shape(dims)}")
        total = x.numel()
        if holes:
            known = product(d for i, d in enumerate(dims) if i != holes[0])
            try:
                fill = exact_div(total, known)
            except DimError:
                raise ShapeError(f"cannot infer -1 in {fmt_shape(dims)}: {x} has {total} elements, "
                                 f"not a multiple of {known}") from None
            dims = dims[:holes[0]] + (fill,) + dims[holes[0] + 1:]
        elif product(dims) != total:
            raise ShapeError(f"needs the same number of elements; got {x} ({total}) "
                             f"to {fmt_shape(dims)} ({product(dims)})")
        return x.with_shape(dims)


@register
class Transpose(_Shape):
    """Swap two dims."""

    name = "transpose"
    traits = frozenset({"permute"})
    signature = "transpose(a, b)"

    class Attrs(opdef.Attrs):
        a: int
        b: int

    @classmethod
    def permutation(cls, a, rank):
        order = list(range(rank))
        if rank:
            i, j = normalize_axis(a.a, rank), normalize_axis(a.b, rank)
            order[i], order[j] = order[j], order[i]
        return order

    @classmethod
    def shape(cls, xs, attrs):
        x = xs[0]
        i, j = normalize_axis(attrs.a, x.rank), normalize_axis(attrs.b, x.rank)
        if x.rank == 0:
            return x  # a 0-d tensor: dims 0 and -1 name it, and swapping changes nothing
        dims = list(x.shape)
        dims[i], dims[j] = dims[j], dims[i]
        return x.with_shape(dims)


@register
class Permute(_Shape):
    """Reorder the dims: output dim i is input dim ``dims[i]``."""

    name = "permute"
    traits = frozenset({"permute"})
    varargs = "dims"
    signature = "permute(*dims)"

    class Attrs(opdef.Attrs):
        dims: tuple[int, ...]

    @classmethod
    def permutation(cls, a, rank):
        return [normalize_axis(d, rank) for d in a.dims]

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        order = [normalize_axis(d, x.rank) for d in a.dims] if len(a.dims) == x.rank else None
        if order is None or sorted(order) != list(range(x.rank)):
            raise ShapeError(f"needs a permutation of the {x.rank} dims of {x}; got {a.dims}")
        return x.with_shape(x.shape[i] for i in order)


@register
class Concat(_Shape):
    """Join tensors along ``dim``; every other dim must match."""

    name = "concat"
    arity = (1, None)
    signature = "concat(*tensors, dim=-1)"

    class Attrs(opdef.Attrs):
        dim: int = -1

    @classmethod
    def shape(cls, xs, a):
        first = xs[0]
        axis = normalize_axis(a.dim, first.rank)
        for x in xs[1:]:
            same = x.rank == first.rank and all(
                d == e for i, (d, e) in enumerate(zip(x.shape, first.shape)) if i != axis)
            if not same or x.dtype != first.dtype:
                raise ShapeError(f"needs inputs of one dtype and rank, equal except along dim {a.dim}; "
                                 f"got {first} and {x}")
        total = sum((x.shape[axis] for x in xs[1:]), first.shape[axis])
        return first.with_shape(first.shape[:axis] + (total,) + first.shape[axis + 1:])


@register
class Split(_Shape):
    """Cut along ``dim`` into chunks of ``sizes`` (an int: equal chunks, the last may be smaller)."""

    name = "split"
    signature = "split(sizes, dim=-1)"

    class Attrs(opdef.Attrs):
        sizes: int | tuple[DimAttr, ...]
        dim: int = -1

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        axis = normalize_axis(a.dim, x.rank)
        n = x.shape[axis]
        parts = _chunks(n, a.sizes, a.dim) if isinstance(a.sizes, int) else a.sizes
        if any(isinstance(p, int) and p < 0 for p in parts) or sum(parts, 0) != n:
            raise ShapeError(f"needs sizes that add up to {n} (dim {a.dim} of {x}); got {a.sizes}")
        return tuple(x.with_shape(x.shape[:axis] + (p,) + x.shape[axis + 1:]) for p in parts)

    @classmethod
    def pack(cls, outs):
        return tuple(outs)


def _chunks(n, size: int, dim: int) -> tuple[int, ...]:
    if size < 1:
        raise ShapeError(f"needs sizes >= 1; got sizes={size}")
    if isinstance(n, Expr):
        raise ShapeError(f"needs a concrete size along dim {dim} to cut into chunks of {size}; got {n}",
                         hint="give the sizes as a tuple")
    if -(-n // size) > MAX_OUTPUTS:
        raise ShapeError(f"would cut {n} into {-(-n // size)} chunks of {size}; at most {MAX_OUTPUTS} (the limit)")
    return (size,) * (n // size) + ((n % size,) if n % size else ())


class _Reduce(_Shape):
    """Shared rule of the reductions over ``dim`` (an int or a tuple of ints)."""

    class Attrs(opdef.Attrs):
        dim: int | tuple[int, ...]
        keepdim: bool = False

    @classmethod
    def reduced(cls, x: TensorType, a) -> tuple:
        dims = a.dim if isinstance(a.dim, tuple) else (a.dim,)
        axes = {normalize_axis(d, x.rank) for d in dims}
        if not dims or len(axes) != len(dims):
            raise ShapeError(f"needs one or more distinct dims; got dim={a.dim}")
        if a.keepdim:
            return tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        return tuple(d for i, d in enumerate(x.shape) if i not in axes)


@register
class Mean(_Reduce):
    """Mean over ``dim`` (int or tuple), dropping it unless ``keepdim``."""

    name = "mean"
    signature = "mean(dim, keepdim=false)"

    @classmethod
    def shape(cls, xs, a):
        xs[0].expect_float()
        return xs[0].with_shape(cls.reduced(xs[0], a))


@register
class Sum(_Reduce):
    """Sum over ``dim`` (int or tuple), dropping it unless ``keepdim``; bools count as ints."""

    name = "sum"
    signature = "sum(dim, keepdim=false)"

    @classmethod
    def shape(cls, xs, a):
        dtype = "int" if xs[0].dtype == "bool" else xs[0].dtype
        return TensorType(dtype, cls.reduced(xs[0], a))


@register
class Positions(_Shape):
    """The positions 0..T-1 of a sequence [N, T, ...], as int[T] (for learned position embeddings)."""

    name = "positions"
    signature = "positions(x)"

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        if x.rank < 2:
            raise ShapeError(f"needs a sequence [N, T, ...]; got {x}")
        return TensorType("int", (x.shape[1],))
