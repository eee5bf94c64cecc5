"""Convolution kernels: ``conv1d``, ``conv2d``, ``conv_transpose2d``.

A convolution gathers its input columns with one strided slice per kernel offset, padding
included (im2col, laid out [C*kernel, N*positions]), and contracts them with the weights in
one matmul per group; the columns and the matmul's output live in scratch buffers reused
from call to call (``_scratch``), and the result is always a fresh array (when the matmul's
output is already the result's layout, batch 1 or one output channel, the matmul writes the
result itself). A transposed convolution multiplies every input pixel by the kernel in one matmul and adds the products into place
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
def _scratch(shape, dtype, back=None, _free={}):  # noqa: B006  (_free: the cache, kept between calls)
    """A scratch buffer for a kernel's intermediate: one an earlier call gave ``back`` when
    there is one of this shape and dtype, else a new one. Fresh memory costs a page fault per
    4 KB on first touch (about a third of an im2col copy's time); reused memory does not.
    A buffer is taken out of the cache while in use, so concurrent calls never share one,
    and the cache keeps at most 512 MB. ``_scratch(None, None)`` empties it.
    A kernel gives a buffer back only when nothing it returns is the buffer or a view of it
    (a reshape or transpose can be one at degenerate sizes): a result is always fresh memory."""
    if shape is None and back is None:
        _free.clear()
        return None
    if back is not None:
        if sum(b.nbytes for b in _free.values()) + back.nbytes <= 1 << 29:
            _free[(back.shape, back.dtype.str)] = back
        return None
    buf = _free.pop((tuple(shape), np.dtype(dtype).str), None)
    return np.empty(shape, dtype) if buf is None else buf


@helper
def _pad_into(out, x, before, fill=0):
    """``out`` [N, C, *padded] with x in its spatial middle, from ``before`` on in each spatial
    dim, and ``fill`` around it (only the borders are written: ``out`` may be a reused buffer)."""
    for d, b in enumerate(before):
        lead = (slice(None),) * (d + 2)
        out[(*lead, slice(0, b))] = fill
        out[(*lead, slice(b + x.shape[d + 2], None))] = fill
    out[(slice(None), slice(None), *(slice(b, b + m) for b, m in zip(before, x.shape[2:])))] = x
    return out


@helper
def _conv(x, weight, bias, stride, padding, dilation, groups):
    """N-d convolution of x [N, C, *size] with weight [O, C/groups, *kernel], torch's rules."""
    nd = x.ndim - 2
    k = weight.shape[2:]
    stride, dilation = _ntuple(stride, nd), _ntuple(dilation, nd)
    if padding == "same":  # torch puts the odd one out at the end
        total = [d * (kk - 1) for d, kk in zip(dilation, k)]
        before = [t // 2 for t in total]
        after = [t - t // 2 for t in total]
    else:
        before = after = list(_ntuple(padding, nd))
    n, c = x.shape[:2]
    size = x.shape[2:]
    out = [(m + b + a - d * (kk - 1) - 1) // s + 1
           for m, b, a, kk, s, d in zip(size, before, after, k, stride, dilation)]
    o, g = weight.shape[0], groups
    # Over rows laid end to end, where that is faster: when the dropped positions are few
    # (phase width near the output width), every stride phase is used (kernel >= stride), and
    # one sample's matmul is wide enough (at least 512 positions) to run at full speed.
    wq = -(-(size[1] + before[1] + after[1]) // stride[1]) if nd == 2 else 0
    if nd == 2 and g == 1 and dilation == (1, 1) and all(kk >= s for kk, s in zip(k, stride)) and \
            wq <= 1.15 * out[1] and out[0] * wq >= 512:
        return _conv2d_rows(x, weight, bias, stride, before, after, out)
    # im2col as [C, *kernel, N, *out], one strided slice of x per kernel offset, padding
    # included: the window positions an offset puts outside x get zeros. Then one matmul
    # per group covers the whole batch (one large BLAS call rather than one per sample,
    # which costs more in thread hand-offs than the output transpose it would save).
    cols = _scratch((c, *k, n, *out), x.dtype)
    xt = x.swapaxes(0, 1)
    for offset in np.ndindex(*k):
        dst, src = [slice(None), *offset, slice(None)], [slice(None), slice(None)]
        for i, m, b, s, d, full in zip(offset, size, before, stride, dilation, out):
            lo = min(max(0, -((i * d - b) // s)), full)  # first position whose input is inside x
            hi = max(min(full, -((i * d - b - m) // s)), lo)  # one past the last
            start = lo * s + i * d - b
            dst.append(slice(lo, hi))
            src.append(slice(start, start + (hi - lo - 1) * s + 1, s) if hi > lo else slice(0, 0))
            if lo or hi < full:  # the padding: zeros before lo and from hi on
                cols[(*dst[:-1], slice(0, lo))] = 0
                cols[(*dst[:-1], slice(hi, None))] = 0
        cols[tuple(dst)] = xt[tuple(src)]
    positions = n * int(np.prod(out))
    # The matmul's output [G, O/G, N*prod(out)] is [O, N, *out]. With one sample or one output
    # channel that is already the result's layout [N, O, *out]: the matmul writes the result,
    # a fresh array (a scratch buffer there would be handed out, and overwritten by the next
    # call of this shape). Otherwise it goes to scratch, transposed into a fresh result.
    direct = n == 1 or o == 1
    shape, dtype = (g, o // g, positions), np.result_type(x, weight)
    y = np.empty(shape, dtype) if direct else _scratch(shape, dtype)
    np.matmul(weight.reshape(g, o // g, -1), cols.reshape(g, -1, positions), out=y)
    _scratch(None, None, back=cols)
    if direct:
        result = y.reshape(n, o, *out)
        if bias is not None:
            result += bias.reshape(o, *(1,) * nd)
        return result
    t = y.reshape(o, n, *out).swapaxes(0, 1)  # [N, O, *out], written out in C order
    result = np.ascontiguousarray(t) if bias is None else np.add(t, bias.reshape(o, *(1,) * nd), order="C")
    _scratch(None, None, back=y)
    return result


@helper
def _conv2d_rows(x, weight, bias, stride, before, after, out):
    """A 2-d convolution, per sample, on the rows of its padded image laid end to end. For
    stride 1 the input of every output position at kernel offset (i, j) is one contiguous
    slice of that flat image, shifted by i * row + j; so gathering the columns is one
    contiguous copy per offset, and the matmul writes the sample's output [O, positions]
    directly. A stride s first splits the padded image into s * s phases (rows a, a + s, ...;
    columns b, b + s, ...), on which offset (i, j) is a stride-1 shift of phase (i % s, j % s).
    The positions run over the padded (phase) width; the last few of each row read across
    the row's end and are dropped (few when the image is much wider than the kernel: the
    caller checks)."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    (sh, sw), (oh, ow) = stride, out
    hp, wp = h + before[0] + after[0], w + before[1] + after[1]
    hq, wq = -(-hp // sh), -(-wp // sw)  # the size of a phase
    span = oh * wq
    flat = _scratch((n, sh, sw, c, hq * wq + kw), x.dtype)  # kw spare: the last offsets read past the end
    phases = flat[..., :hq * wq].reshape(n, sh, sw, c, hq, wq)
    if (sh, sw) == (1, 1):  # the one phase is the padded image: x goes straight in
        _pad_into(phases[:, 0, 0], x, before)
        flat[..., hq * wq:] = 0
    else:
        image = _pad_into(_scratch((n, c, hp, wp), x.dtype), x, before)
        flat[...] = 0  # a phase's rows and columns past the image, and the spare
        for a in range(sh):
            for b in range(sw):
                part = image[:, :, a::sh, b::sw]
                phases[:, a, b, :, :part.shape[2], :part.shape[3]] = part
        _scratch(None, None, back=image)
    cols = _scratch((kh * kw * c, span), x.dtype)
    wide = _scratch((o, span), np.result_type(x, weight))
    matrix = weight.transpose(0, 2, 3, 1).reshape(o, -1)  # [O, kh*kw*C], offsets outermost like cols
    y = np.empty((n, o, oh, ow), wide.dtype)
    for s in range(n):
        for i in range(kh):
            for j in range(kw):
                k = (i * kw + j) * c
                start = (i // sh) * wq + j // sw
                cols[k:k + c] = flat[s, i % sh, j % sw, :, start:start + span]
        np.matmul(matrix, cols, out=wide)
        rows = wide.reshape(o, oh, wq)[:, :, :ow]
        if bias is None:
            y[s] = rows
        else:
            np.add(rows, bias.reshape(o, 1, 1), out=y[s])
    for buf in (flat, cols, wide):
        _scratch(None, None, back=buf)
    return y


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
