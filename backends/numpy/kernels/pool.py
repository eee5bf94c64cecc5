"""Pooling and resampling kernels: max and average pools (one strided slice of the input per
kernel offset), adaptive and global average pools, nearest and bilinear upsampling (as
separable index maps / matmuls).
"""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel
from .conv import _ntuple, _pad_into, _scratch


@helper
def _pool(x, kernel, stride, padding, fill, combine, ceil_mode=False):
    """Combine (np.maximum, np.add) the windows of x [N, C, *size], padded with ``fill``, into
    [N, C, *out], one spatial dim at a time (both are separable): along each dim, one strided
    slice per kernel offset folded into one buffer. The first dims select whole rows, which
    are contiguous, and the window is k reads per dim rather than k**nd strided reads (a
    reduction over a window view's small trailing axes is several times slower still)."""
    nd = x.ndim - 2
    kernel = _ntuple(kernel, nd)
    stride = kernel if stride is None else _ntuple(stride, nd)
    pads = _ntuple(padding, nd)
    outs = _pool_sizes(x.shape[2:], kernel, stride, pads, ceil_mode)
    padded = None
    # the padded length each dim needs: both paddings, and past them a last partial window
    shape = (*x.shape[:2], *(max(m + 2 * p, (o - 1) * s + k) for m, p, o, s, k in
                             zip(x.shape[2:], pads, outs, stride, kernel)))
    if shape != x.shape:
        x = padded = _pad_into(_scratch(shape, x.dtype), x, pads, fill)
    for d, (k, s, m) in enumerate(zip(kernel, stride, outs)):
        lead = (slice(None),) * (d + 2)
        acc = x[(*lead, slice(0, (m - 1) * s + 1, s))].copy()
        for o in range(1, k):
            combine(acc, x[(*lead, slice(o, o + (m - 1) * s + 1, s))], out=acc)
        x = acc
    if padded is not None:
        _scratch(None, None, back=padded)
    return x


@helper
def _pool_sizes(sizes, kernel, stride, pads, ceil_mode):
    """Output sizes, torch's rule: with ceil_mode the count rounds up, but the last window
    must start inside the input or its left padding."""
    outs = []
    for m, k, s, p in zip(sizes, kernel, stride, pads):
        o = -(-(m + 2 * p - k) // s) + 1 if ceil_mode else (m + 2 * p - k) // s + 1
        if ceil_mode and (o - 1) * s >= m + p:
            o -= 1
        outs.append(o)
    return outs


@helper
def _avg_divisor(sizes, kernel, stride, padding, ceil_mode, count_include_pad, dtype):
    """How many elements each output of an average pool divides by, as torch counts them:
    its window clipped to the padded input (count_include_pad) or to the input itself. The
    windows are boxes, so the count is the outer product of one count per dim."""
    nd = len(sizes)
    kernel = _ntuple(kernel, nd)
    stride = kernel if stride is None else _ntuple(stride, nd)
    pads = _ntuple(padding, nd)
    divisor = np.ones((), dtype=dtype)
    for m, k, s, p, o in zip(sizes, kernel, stride, pads, _pool_sizes(sizes, kernel, stride, pads, ceil_mode)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, m + p)
        count = end - start if count_include_pad else np.minimum(end, m) - np.maximum(start, 0)
        divisor = np.multiply.outer(divisor, count.astype(dtype))
    return divisor


@kernel("maxpool1d")
def maxpool1d(x, kernel, stride=None, padding=0, ceil_mode=False):
    """Max over windows of [N, C, L]; padding never wins (it is -inf)."""
    return _pool(x, kernel, stride, padding, -np.inf, np.maximum, ceil_mode)


@kernel("maxpool2d")
def maxpool2d(x, kernel, stride=None, padding=0, ceil_mode=False):
    """Max over windows of [N, C, H, W]; padding never wins (it is -inf)."""
    return _pool(x, kernel, stride, padding, -np.inf, np.maximum, ceil_mode)


@kernel("avgpool1d")
def avgpool1d(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over windows of [N, C, L]; zero padding counts unless count_include_pad=False."""
    total = _pool(x, kernel, stride, padding, 0, np.add, ceil_mode)
    if count_include_pad and not ceil_mode:  # every window is whole
        return np.divide(total, int(np.prod(_ntuple(kernel, 1))), out=total)
    return np.divide(total, _avg_divisor(x.shape[2:], kernel, stride, padding, ceil_mode, count_include_pad,
                                         x.dtype), out=total)


@kernel("avgpool2d")
def avgpool2d(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over windows of [N, C, H, W]; zero padding counts unless count_include_pad=False."""
    total = _pool(x, kernel, stride, padding, 0, np.add, ceil_mode)
    if count_include_pad and not ceil_mode:  # every window is whole
        return np.divide(total, int(np.prod(_ntuple(kernel, 2))), out=total)
    return np.divide(total, _avg_divisor(x.shape[2:], kernel, stride, padding, ceil_mode, count_include_pad,
                                         x.dtype), out=total)


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
