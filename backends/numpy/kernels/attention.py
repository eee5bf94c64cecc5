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
def _sdpa(q, k, v, mask=None, causal=False, scale=None):
    """softmax(q kᵀ * scale + mask) v over the last two dims; batch dims broadcast.

    A bool mask says which positions take part; a float mask is added. ``causal`` masks
    position j > i, aligned top-left (torch's is_causal). The scores are a fresh array, so
    scaling and the softmax (softmax's arithmetic) run in place: no [..., T, S] copies.
    """
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.matmul(q, np.swapaxes(k, -1, -2))
    s *= scale
    if causal:
        t, n = s.shape[-2:]
        s[..., np.triu(np.ones((t, n), dtype=bool), 1)] = -np.inf
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return np.matmul(s, v)


@helper
def _heads(q, k, v, heads, causal, out_weight, out_bias):
    """Split q [N, T, D], k and v [N, S, D] into heads, attend, merge, project."""
    n, t, d = q.shape
    q, k, v = (a.reshape(n, a.shape[1], heads, d // heads).transpose(0, 2, 1, 3) for a in (q, k, v))
    y = _sdpa(q, k, v, causal=causal).transpose(0, 2, 1, 3).reshape(n, t, d)
    return _affine(y, out_weight, out_bias)


@kernel("self_attention")
def self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, heads, causal=False):
    """Multi-head attention of x [N, T, D] to itself."""
    q, k, v = np.split(_affine(x, in_proj_weight, in_proj_bias), 3, axis=-1)
    return _heads(q, k, v, heads, causal, out_proj_weight, out_proj_bias)


@kernel("cross_attention")
def cross_attention(x, memory, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, heads,
                    causal=False):
    """Multi-head attention of x [N, T, D] (queries) to memory [N, S, D] (keys and values)."""
    d = x.shape[-1]
    b = (None, None) if in_proj_bias is None else (in_proj_bias[:d], in_proj_bias[d:])
    q = _affine(x, in_proj_weight[:d], b[0])
    k, v = np.split(_affine(memory, in_proj_weight[d:], b[1]), 2, axis=-1)
    return _heads(q, k, v, heads, causal, out_proj_weight, out_proj_bias)


@kernel("attention")
def attention(q, k, v, mask=None, causal=False, scale=None):
    """Scaled dot-product attention softmax(q kᵀ * scale + mask) v."""
    return _sdpa(q, k, v, mask, causal, scale)


@kernel("positional_encoding")
def positional_encoding(x):
    """x [N, T, D] plus the sinusoidal table: sin(t / 10000^(2i/D)) at 2i, cos at 2i + 1."""
    t, d = x.shape[1], x.shape[2]
    angle = np.arange(t)[:, None] * 10000.0 ** (-np.arange(0, d, 2) / d)
    pe = np.stack((np.sin(angle), np.cos(angle)), axis=-1).reshape(t, d)
    return x + pe.astype(x.dtype)
