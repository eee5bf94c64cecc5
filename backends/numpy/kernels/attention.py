"""Attention kernels: multi-head self and cross attention with nn.MultiheadAttention's
weights (``in_proj_weight`` packs q, k, v), scaled dot-product ``attention`` and the
sinusoidal ``positional_encoding``.
"""

from __future__ import annotations

import math

import numpy as np

from ._table import helper, kernel
from .dense import _affine


@helper
def _sdpa(q, k, v, mask=None, causal=False, scale=None, padding=None):
    """softmax(q kᵀ * scale + mask) v over the last two dims; batch dims broadcast.

    A bool mask says which positions take part; a float mask is added. ``padding`` [N, S]
    (bool, true: a real key) masks keys per sequence, N being q's first dim. ``causal`` masks
    position j > i, aligned top-left (torch's is_causal). A query that no key may attend gets
    zeros, as in torch's SDPA. k and v with fewer heads (dim -3)
    than q serve groups of q's heads (grouped-query attention). The scores are a fresh array,
    so scaling and the softmax (softmax's arithmetic) run in place: no [..., T, S] copies.
    """
    if q.ndim >= 3 and k.ndim >= 3 and k.shape[-3] not in (1, q.shape[-3]):
        k = np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
    if q.ndim >= 3 and v.ndim >= 3 and v.shape[-3] not in (1, q.shape[-3]):
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.matmul(q, np.swapaxes(k, -1, -2))
    s *= scale
    if causal:
        t, n = s.shape[-2:]
        s[..., np.triu(np.ones((t, n), dtype=bool), 1)] = -np.inf
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    if padding is not None:
        s = np.where(padding.reshape((padding.shape[0],) + (1,) * (q.ndim - 2) + (padding.shape[1],)), s, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    top[top == -np.inf] = 0  # a query no key may attend: exp gives zeros, and so does the result (torch's)
    s -= top
    np.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    s /= total
    return np.matmul(s, v)


@helper
def _rotate(x, base):
    """RoPE on x [..., T, d]: features i and i + d/2 at position t turn by t * base^(-2i/d)."""
    t, d = x.shape[-2:]
    angle = np.arange(t)[:, None] * base ** (-np.arange(0, d, 2) / d)
    angle = np.concatenate((angle, angle), axis=-1)
    x1, x2 = np.split(x, 2, axis=-1)
    rotated = np.concatenate((-x2, x1), axis=-1)
    return (x * np.cos(angle) + rotated * np.sin(angle)).astype(x.dtype)


@helper
def _heads(q, k, v, heads, kv_heads, out_weight, out_bias, extra, masks, causal, rotary, base):
    """Split q [N, T, D], k and v [N, S, kv_heads * D / heads] into heads, attend, merge, project."""
    n, t, d = q.shape
    q = q.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3)
    k, v = (a.reshape(n, a.shape[1], kv_heads, d // heads).transpose(0, 2, 1, 3) for a in (k, v))
    if rotary:
        q, k = _rotate(q, base), _rotate(k, base)
    given = dict(zip(masks, extra))
    y = _sdpa(q, k, v, given.get("mask"), causal, padding=given.get("padding"))
    return _affine(y.transpose(0, 2, 1, 3).reshape(n, t, d), out_weight, out_bias)


@kernel("self_attention")
def self_attention(x, *extra, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, heads, kv_heads=None,
                   causal=False, masks=(), rotary=False, base=10000.0):
    """Multi-head attention of x [N, T, D] to itself; ``extra`` are the masks named by ``masks``."""
    d = x.shape[-1]
    kv = kv_heads or heads
    q, k, v = np.split(_affine(x, in_proj_weight, in_proj_bias), [d, d + d // heads * kv], axis=-1)
    return _heads(q, k, v, heads, kv, out_proj_weight, out_proj_bias, extra, masks, causal, rotary, base)


@kernel("cross_attention")
def cross_attention(x, memory, *extra, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, heads,
                    kv_heads=None, causal=False, masks=()):
    """Multi-head attention of x [N, T, D] (queries) to memory [N, S, D] (keys and values)."""
    d = x.shape[-1]
    b = (None, None) if in_proj_bias is None else (in_proj_bias[:d], in_proj_bias[d:])
    q = _affine(x, in_proj_weight[:d], b[0])
    k, v = np.split(_affine(memory, in_proj_weight[d:], b[1]), 2, axis=-1)
    return _heads(q, k, v, heads, kv_heads or heads, out_proj_weight, out_proj_bias, extra, masks, causal, False,
                  10000.0)


@kernel("attention")
def attention(q, k, v, *extra, causal=False, scale=None, masks=()):
    """Scaled dot-product attention softmax(q kᵀ * scale + mask) v (dropout is off: eval mode)."""
    given = dict(zip(masks or ("mask",) * len(extra), extra))
    return _sdpa(q, k, v, given.get("mask"), causal, scale, given.get("padding"))


@kernel("rotary")
def rotary(x, base=10000.0):
    """Rotary position embedding (RoPE, "rotate half") of x [..., T, d]."""
    return _rotate(x, base)


@kernel("positional_encoding")
def positional_encoding(x):
    """x [N, T, D] plus the sinusoidal table: sin(t / 10000^(2i/D)) at 2i, cos at 2i + 1."""
    t, d = x.shape[1], x.shape[2]
    angle = np.arange(t)[:, None] * 10000.0 ** (-np.arange(0, d, 2) / d)
    pe = np.stack((np.sin(angle), np.cos(angle)), axis=-1).reshape(t, d)
    return x + pe.astype(x.dtype)
