"""Data movement and reduction kernels."""

from __future__ import annotations

import numpy as np

from ._table import kernel


@kernel("memory_format")
def memory_format(x, format="contiguous", min_batch=1, threads=()):
    """The identity: a memory layout is the torch backend's concern (NumPy arrays here keep
    the layout each kernel gives them)."""
    return x


@kernel("flatten")
def flatten(x, start=1, end=-1):
    """Merge dims ``start`` to ``end`` (inclusive) into one."""
    start, end = start % x.ndim, end % x.ndim
    return x.reshape(*x.shape[:start], -1, *x.shape[end + 1:])


@kernel("reshape")
def reshape(x, shape):
    return x.reshape(shape)


@kernel("transpose")
def transpose(x, a, b):
    """Swap dims ``a`` and ``b``."""
    return np.swapaxes(x, a, b) if x.ndim else x


@kernel("permute")
def permute(x, dims):
    return np.transpose(x, dims)


@kernel("concat")
def concat(*xs, dim=-1):
    return np.concatenate(xs, axis=dim)


@kernel("split")
def split(x, sizes, dim=-1):
    """Cut along ``dim`` into chunks of ``sizes`` (an int: equal chunks, the last may be smaller)."""
    n = x.shape[dim]
    if isinstance(sizes, int):
        sizes = [sizes] * (n // sizes) + ([n % sizes] if n % sizes else [])
    cuts = np.cumsum(sizes)[:-1]
    return tuple(np.split(x, cuts, axis=dim))


@kernel("mean")
def mean(x, dim, keepdim=False):
    return np.mean(x, axis=dim, keepdims=keepdim)


@kernel("sum")
def sum_(x, dim, keepdim=False):
    """Sum over ``dim``; bools count as ints."""
    return np.sum(x, axis=dim, keepdims=keepdim)


@kernel("positions")
def positions(x):
    """0 .. T-1 for a sequence [N, T, ...], as int64."""
    return np.arange(x.shape[1], dtype=np.int64)


@kernel("index")
def index(x, items):
    """Python's indexing: ``"new"`` is ``None`` (a new axis), a triple is a slice."""
    key = tuple(None if i == "new" else Ellipsis if i == "..." else slice(*i) if isinstance(i, tuple) else i
                for i in items)
    return x[key]


@kernel("parameter")
def parameter(own_weight):
    """A learned tensor: its weight."""
    return own_weight


@kernel("pad")
def pad(x, widths, mode="constant", value=0.0):
    """F.pad: (left, right) widths of the last dim first; negative widths crop."""
    k = len(widths) // 2
    pads = [(0, 0)] * (x.ndim - k) + [(widths[2 * i], widths[2 * i + 1]) for i in reversed(range(k))]
    x = x[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(x.shape, pads))]
    pads = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    if mode == "constant":
        return np.pad(x, pads, mode="constant", constant_values=value)
    return np.pad(x, pads, mode="reflect" if mode == "reflect" else "edge")


@kernel("expand")
def expand(x, sizes):
    """Dims of size 1 grown to ``sizes`` (-1 keeps a dim), as a read-only view."""
    new = len(sizes) - x.ndim
    return np.broadcast_to(x, tuple(x.shape[i - new] if s == -1 else s for i, s in enumerate(sizes)))


@kernel("broadcast_to")
def broadcast_to(x, sizes):
    """As expand."""
    return expand(x, sizes)


@kernel("repeat")
def repeat(x, times):
    """Tensor.repeat: tiled ``times[i]`` times along dim i."""
    return np.tile(x, times)
