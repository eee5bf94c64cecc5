"""Convolution kernels: ``conv1d``, ``conv2d``, ``conv_transpose2d``.

A convolution pads, takes a strided window view of the input (no copy), and contracts it
with the weights in one batched matmul (one matrix per group); a transposed convolution
multiplies every input pixel by the kernel in one matmul and adds the products into place
with one strided slice per kernel position.
"""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel


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
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    span = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
    win = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)
              + tuple(slice(None, None, d) for d in dilation)]  # [N, C, *out, *kernel]
    n, c, out = x.shape[0], x.shape[1], win.shape[2:2 + nd]
    o, g = weight.shape[0], groups
    # [N, G, C/G, *out, *kernel] -> [G, N, *out, C/G, *kernel] -> [G, N*prod(out), C/G*prod(kernel)]
    win = win.reshape(n, g, c // g, *out, *k)
    order = (1, 0, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd))
    cols = win.transpose(order).reshape(g, -1, weight[0].size)
    w = weight.reshape(g, o // g, -1).transpose(0, 2, 1)  # [G, C/G*prod(kernel), O/G]
    y = np.matmul(cols, w).reshape(g, n, *out, o // g)
    y = y.transpose(1, 0, nd + 2, *range(2, 2 + nd)).reshape(n, o, *out)
    return y if bias is None else y + bias.reshape(o, *(1,) * nd)


@kernel("conv1d")
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution over [N, C, L]."""
    return _conv(x, weight, bias, stride, padding, dilation, groups)


@kernel("conv2d")
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution over [N, C, H, W]."""
    return _conv(x, weight, bias, stride, padding, dilation, groups)


@kernel("conv_transpose2d")
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """Transposed 2-d convolution of x [N, C, H, W] with weight [C, O, kh, kw]."""
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
    return y if bias is None else y + bias.reshape(o, 1, 1)
