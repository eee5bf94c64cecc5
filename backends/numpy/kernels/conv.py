"""Convolution kernels: ``conv1d``, ``conv2d``, ``conv_transpose2d``.

A convolution pads, gathers its input columns with one strided slice per kernel offset
(im2col, laid out [C*kernel, N*positions]), and contracts them with the weights in one
matmul per group; a transposed convolution
multiplies every input pixel by the kernel in one matmul and adds the products into place
with one strided slice per kernel position.
"""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel
from .activation import _activate


@helper
def _ntuple(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


@helper
def _conv(x, weight, bias, stride, padding, dilation, groups):
    """N-d convolution of x [N, C, *size] with weight [O, C/groups, *kernel], torch's rules."""
    nd = x.ndim - 2
    k = weight.shape[2:]
    stride, dilation = _ntuple(stride, nd), _ntuple(dilation, nd)
    if padding == "same":  # torch puts the odd one out at the end
        total = [d * (kk - 1) for d, kk in zip(dilation, k)]
        pads = [(t // 2, t - t // 2) for t in total]
    else:
        pads = [(p, p) for p in _ntuple(padding, nd)]
    if any(p for pair in pads for p in pair):
        x = np.pad(x, [(0, 0), (0, 0), *pads])
    n, c = x.shape[:2]
    out = [(size - d * (kk - 1) - 1) // s + 1 for size, kk, s, d in zip(x.shape[2:], k, stride, dilation)]
    o, g = weight.shape[0], groups
    # im2col as [C, *kernel, N, *out], one strided slice of x per kernel offset: then one
    # matmul per group covers the whole batch (one large BLAS call rather than one per sample,
    # which costs more in thread hand-offs than the output transpose it would save).
    cols = np.empty((c, *k, n, *out), dtype=x.dtype)
    xt = x.swapaxes(0, 1)
    for offset in np.ndindex(*k):
        cols[(slice(None), *offset)] = xt[(slice(None), slice(None)) + tuple(
            slice(i * d, i * d + (m - 1) * s + 1, s) for i, d, m, s in zip(offset, dilation, out, stride))]
    cols = cols.reshape(g, -1, n * int(np.prod(out)))  # [G, C/G*prod(kernel), N*prod(out)]
    y = np.matmul(weight.reshape(g, o // g, -1), cols)  # [G, O/G, N*prod(out)]
    y = y.reshape(o, n, *out).swapaxes(0, 1)  # [N, O, *out], written out in C order below
    return np.ascontiguousarray(y) if bias is None else np.add(y, bias.reshape(o, *(1,) * nd), order="C")


@kernel("conv1d")
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
           activation_slope=0.01):
    """1-d convolution over [N, C, L]; then ``activation``, if fused, in place."""
    return _activate(_conv(x, weight, bias, stride, padding, dilation, groups), activation, activation_slope)


@kernel("conv2d")
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
           activation_slope=0.01):
    """2-d convolution over [N, C, H, W]; then ``activation``, if fused, in place."""
    return _activate(_conv(x, weight, bias, stride, padding, dilation, groups), activation, activation_slope)


@kernel("conv_transpose2d")
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, activation=None,
                     activation_slope=0.01):
    """Transposed 2-d convolution of x [N, C, H, W] with weight [C, O, kh, kw]; then
    ``activation``, if fused, in place."""
    (sh, sw), (ph, pw), (oh, ow) = _ntuple(stride, 2), _ntuple(padding, 2), _ntuple(output_padding, 2)
    n, c, h, w = x.shape
    o, kh, kw = weight.shape[1:]
    # Every input pixel times the whole kernel: [N, H, W, O, kh, kw].
    cols = (x.transpose(0, 2, 3, 1).reshape(-1, c) @ weight.reshape(c, -1)).reshape(n, h, w, o, kh, kw)
    cols = cols.transpose(0, 3, 4, 5, 1, 2)  # [N, O, kh, kw, H, W]
    full = np.zeros((n, o, (h - 1) * sh + kh + oh, (w - 1) * sw + kw + ow), dtype=cols.dtype)
    for i in range(kh):  # kernel position (i, j) lands on rows i, i+sh, ... and columns j, j+sw, ...
        for j in range(kw):
            full[:, :, i:i + (h - 1) * sh + 1:sh, j:j + (w - 1) * sw + 1:sw] += cols[:, :, i, j]
    ho, wo = (h - 1) * sh - 2 * ph + kh + oh, (w - 1) * sw - 2 * pw + kw + ow
    y = full[:, :, ph:ph + ho, pw:pw + wo]
    return _activate(y if bias is None else y + bias.reshape(o, 1, 1), activation, activation_slope)
