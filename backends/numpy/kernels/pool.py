"""Pooling and resampling kernels: max and average pools (one strided slice of the input per
kernel offset), adaptive and global average pools, nearest and bilinear upsampling (as
separable index maps / matmuls).
"""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel
from .conv import _ntuple, _pad_into, _scratch


@helper
def _pool(x, kernel, stride, padding, fill, combine):
    """Combine (np.maximum, np.add) the windows of x [N, C, *size], padded with ``fill``, into
    [N, C, *out], one spatial dim at a time (both are separable): along each dim, one strided
    slice per kernel offset folded into one buffer. The first dims select whole rows, which
    are contiguous, and the window is k reads per dim rather than k**nd strided reads (a
    reduction over a window view's small trailing axes is several times slower still)."""
    nd = x.ndim - 2
    kernel = _ntuple(kernel, nd)
    stride = kernel if stride is None else _ntuple(stride, nd)
    pads = _ntuple(padding, nd)
    padded = None
    if any(pads):
        shape = (*x.shape[:2], *(m + 2 * p for m, p in zip(x.shape[2:], pads)))
        x = padded = _pad_into(_scratch(shape, x.dtype), x, pads, fill)
    for d, (k, s) in enumerate(zip(kernel, stride)):
        m = (x.shape[d + 2] - k) // s + 1
        lead = (slice(None),) * (d + 2)
        acc = x[(*lead, slice(0, (m - 1) * s + 1, s))].copy()
        for o in range(1, k):
            combine(acc, x[(*lead, slice(o, o + (m - 1) * s + 1, s))], out=acc)
        x = acc
    if padded is not None:
        _scratch(None, None, back=padded)
    return x


@kernel("maxpool1d")
def maxpool1d(x, kernel, stride=None, padding=0):
    """Max over windows of [N, C, L]; padding never wins (it is -inf)."""
    return _pool(x, kernel, stride, padding, -np.inf, np.maximum)


@kernel("maxpool2d")
def maxpool2d(x, kernel, stride=None, padding=0):
    """Max over windows of [N, C, H, W]; padding never wins (it is -inf)."""
    return _pool(x, kernel, stride, padding, -np.inf, np.maximum)


@kernel("avgpool1d")
def avgpool1d(x, kernel, stride=None, padding=0):
    """Mean over windows of [N, C, L]; zero padding counts (count_include_pad=True)."""
    total = _pool(x, kernel, stride, padding, 0, np.add)
    return np.divide(total, int(np.prod(_ntuple(kernel, 1))), out=total)


@kernel("avgpool2d")
def avgpool2d(x, kernel, stride=None, padding=0):
    """Mean over windows of [N, C, H, W]; zero padding counts (count_include_pad=True)."""
    total = _pool(x, kernel, stride, padding, 0, np.add)
    return np.divide(total, int(np.prod(_ntuple(kernel, 2))), out=total)


@helper
def _adaptive_matrix(size, out, dtype):
    """[out, size]: row i averages torch's window floor(i*size/out) .. ceil((i+1)*size/out)."""
    m = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


@kernel("adaptive_avgpool2d")
def adaptive_avgpool2d(x, size):
    """Mean over a grid of windows so that the output is [N, C, *size]."""
    n, c, h, w = x.shape
    oh, ow = _ntuple(size, 2)
    if h % oh == 0 and w % ow == 0:  # equal windows: one reshaped mean
        return x.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5))
    return _adaptive_matrix(h, oh, x.dtype) @ x @ _adaptive_matrix(w, ow, x.dtype).T


@kernel("global_avgpool")
def global_avgpool(x):
    """Mean over all spatial positions: [N, C, ...] -> [N, C]."""
    return x.mean(axis=tuple(range(2, x.ndim)))


@helper
def _nearest_index(size, out, scale):
    """Source index of each output position, as torch's nearest mode computes it (float32)."""
    if out == size:
        return np.arange(out)
    if out == 2 * size:
        return np.arange(out) // 2
    step = np.float32(1.0 / scale)
    return np.minimum(np.floor(np.arange(out, dtype=np.float32) * step).astype(np.int64), size - 1)


@helper
def _bilinear_matrix(size, out, scale, dtype):
    """[out, size] linear interpolation weights, align_corners=False, as torch computes them."""
    src = (np.arange(out, dtype=dtype) + dtype.type(0.5)) * dtype.type(1.0 / scale) - dtype.type(0.5)
    src = np.maximum(src, 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    i1 = np.minimum(i0 + 1, size - 1)
    lam = np.clip(src - i0, 0, 1).astype(dtype)
    m = np.zeros((out, size), dtype=dtype)
    rows = np.arange(out)
    m[rows, i0] = 1 - lam
    m[rows, i1] += lam
    return m


@kernel("upsample")
def upsample(x, scale, mode="nearest"):
    """Resize the spatial dims of [N, C, L] or [N, C, H, W] by ``scale``."""
    outs = [int(s * scale) for s in x.shape[2:]]
    if mode == "nearest":
        for axis, (size, out) in enumerate(zip(x.shape[2:], outs), start=2):
            x = np.take(x, _nearest_index(size, out, scale), axis=axis)
        return x
    (h, w), (oh, ow) = x.shape[2:], outs
    return _bilinear_matrix(h, oh, scale, x.dtype) @ x @ _bilinear_matrix(w, ow, scale, x.dtype).T
