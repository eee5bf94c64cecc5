"""Helpers a generated PyTorch file may need, as source text.

A lowering names the pieces it uses (``Lowered.helpers``); the emitter writes those pieces,
in the fixed order of :data:`PRELUDE`, between the imports and the model classes. Each piece
is plain Python, clean under ruff's default settings, that uses only ``torch``, ``nn`` and
``F`` (imported as ``import torch``, ``import torch.nn.functional as F``, ``from torch import
nn``: ruff's PLR0402 rejects ``import torch.nn as nn``), and runs under
``torch.compile(fullgraph=True)``: no data-dependent Python control flow.

    >>> "def scan(" in prelude_source({"scan"})
    True
"""

from __future__ import annotations

POSITIONAL_ENCODING = '''\
def positional_encoding(x):
    """x [N, T, D] plus the sinusoidal positions of "Attention is all you need"."""
    t, d = x.shape[1], x.shape[2]
    # The table in float64 for float64 inputs, else float32 (bfloat16 would lose positions).
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    position = torch.arange(t, device=x.device, dtype=dtype)
    # pe[t, 2i] = sin(t / 10000^(2i/D)), pe[t, 2i + 1] = cos(t / 10000^(2i/D))
    even = torch.arange(0, d, 2, device=x.device, dtype=dtype)
    freq = 10000.0 ** (-even / d)
    angle = position[:, None] * freq[None, :]
    pe = torch.stack((angle.sin(), angle.cos()), dim=-1).flatten(1)
    return x + pe.to(x.dtype)'''

COUNTER_RANDN = '''\
def _lowbias32(x):
    """A 32-bit integer hash (lowbias32) of the int64 tensor x, whose values are below 2**32."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def counter_randn(x, seed):
    """Standard normal numbers of x's shape from seed and each element's index (randn_like
    in eval mode): the NumPy program computes the same ones."""
    i = torch.arange(x.numel(), device=x.device, dtype=torch.int64)
    s = _lowbias32(torch.tensor(seed, device=x.device, dtype=torch.int64))
    a = _lowbias32(_lowbias32((2 * i) & 0xFFFFFFFF) ^ s)
    b = _lowbias32(_lowbias32((2 * i + 1) & 0xFFFFFFFF) ^ s)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    u1 = ((a >> 8) + 1).to(dtype) * 2.0**-24
    u2 = (b >> 8).to(dtype) * 2.0**-24
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(6.2831854820251465 * u2)
    return z.reshape(x.shape).to(x.dtype)'''

SCAN = '''\
def scan(cell, xs, hidden, states, *fixed, init=None):
    """Run cell along dim 1 of xs [N, T, I] from init (or zero states), with the same fixed
    inputs at every step; stack its first state."""
    state = init or tuple(xs.new_zeros(xs.shape[0], hidden) for _ in range(states))
    ys = []
    for t in range(xs.shape[1]):
        out = cell(xs[:, t], *fixed, *state)
        state = out if isinstance(out, tuple) else (out,)
        ys.append(state[0])
    return torch.stack(ys, dim=1)'''

ROTARY = '''\
def rotary(x, base=10000.0):
    """RoPE on x [..., T, d]: features i and i + d/2 at position t turn by t * base^(-2i/d)."""
    t, d = x.shape[-2], x.shape[-1]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    freq = 1.0 / base ** (torch.arange(0, d, 2, device=x.device, dtype=dtype) / d)
    angle = torch.arange(t, device=x.device, dtype=dtype)[:, None] * freq[None, :]
    angle = torch.cat((angle, angle), dim=-1)
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return x * angle.cos().to(x.dtype) + rotated * angle.sin().to(x.dtype)'''

ATTENTION_MASK = '''\
def attention_mask(q, k, mask=None, padding=None, causal=False):
    """One attn_mask for F.scaled_dot_product_attention: a position takes part where the
    padding mask [N, S] (true: a real key), a bool mask and causality all allow it; a float
    mask is added."""
    keep = None
    if padding is not None:  # [N, S] -> [N, 1, ..., 1, S]
        keep = padding.view(padding.shape[0], *(1,) * (q.dim() - 2), padding.shape[1])
    if mask is not None and mask.dtype == torch.bool:
        keep = mask if keep is None else keep & mask
    if causal:
        t, s = q.shape[-2], k.shape[-2]
        tril = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()
        keep = tril if keep is None else keep & tril
    if mask is None or mask.dtype == torch.bool:
        return keep
    return mask if keep is None else mask.masked_fill(~keep, float("-inf"))'''

ATTENTION = '''\
class Attention(nn.Module):
    """Multi-head attention, as nn.MultiheadAttention(batch_first=True) computes it; k and v
    may have fewer heads (grouped-query attention), q and k may be rotated (RoPE)."""

    def __init__(
        self,
        dim,
        heads,
        kv_heads=None,
        causal=False,
        dropout=0.0,
        bias=True,
        rotary=False,
        base=10000.0,
    ):
        super().__init__()
        self.heads = heads
        self.kv_heads = kv_heads or heads
        self.causal = causal
        self.dropout = dropout
        self.rotary = rotary
        self.base = base
        kv_dim = dim // heads * self.kv_heads
        self.sizes = [dim, kv_dim, kv_dim]
        self.in_proj_weight = nn.Parameter(torch.empty(dim + 2 * kv_dim, dim))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.zeros(dim + 2 * kv_dim))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x, memory=None, mask=None, padding=None):
        w, b = self.in_proj_weight, self.in_proj_bias
        if memory is None:
            q, k, v = F.linear(x, w, b).split(self.sizes, dim=-1)
        else:  # q from rows [0, D) of the packed projection, k and v from the rest
            d = x.shape[-1]
            bq, bkv = (None, None) if b is None else (b[:d], b[d:])
            q = F.linear(x, w[:d], bq)
            k, v = F.linear(memory, w[d:], bkv).chunk(2, dim=-1)
        q = self.split_heads(q, self.heads)
        k, v = self.split_heads(k, self.kv_heads), self.split_heads(v, self.kv_heads)
        if self.rotary:
            q, k = rotary(q, self.base), rotary(k, self.base)
        p = self.dropout if self.training else 0.0
        masked = mask is not None or padding is not None
        attn_mask = attention_mask(q, k, mask, padding, self.causal) if masked else None
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=p,
            is_causal=self.causal and not masked,
            enable_gqa=self.kv_heads != self.heads,
        )
        return self.out_proj(y.transpose(1, 2).flatten(2))

    def split_heads(self, t, heads):
        # [N, T, heads * d] -> [N, heads, T, d]
        return t.unflatten(-1, (heads, -1)).transpose(1, 2)'''

# name -> source; the order here is the order pieces appear in a generated file.
PRELUDE: dict[str, str] = {
    "positional_encoding": POSITIONAL_ENCODING,
    "scan": SCAN,
    "counter_randn": COUNTER_RANDN,
    "rotary": ROTARY,
    "attention_mask": ATTENTION_MASK,
    "Attention": ATTENTION,
}


def prelude_source(names: set[str] | frozenset[str]) -> str:
    """The pieces ``names`` in a fixed order, two blank lines apart ("" for none)."""
    unknown = set(names) - PRELUDE.keys()
    if unknown:
        raise KeyError(f"no prelude piece named {sorted(unknown)}")
    return "\n\n\n".join(src for name, src in PRELUDE.items() if name in names)
