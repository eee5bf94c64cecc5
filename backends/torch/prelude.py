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

ATTENTION = '''\
class Attention(nn.Module):
    """Multi-head attention, as nn.MultiheadAttention(batch_first=True) computes it."""

    def __init__(self, dim, heads, causal=False, dropout=0.0, bias=True):
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x, memory=None):
        w, b = self.in_proj_weight, self.in_proj_bias
        if memory is None:
            q, k, v = F.linear(x, w, b).chunk(3, dim=-1)
        else:  # q from rows [0, D) of the packed projection, k and v from [D, 3D)
            d = x.shape[-1]
            bq, bkv = (None, None) if b is None else (b[:d], b[d:])
            q = F.linear(x, w[:d], bq)
            k, v = F.linear(memory, w[d:], bkv).chunk(2, dim=-1)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
        return self.out_proj(y.transpose(1, 2).flatten(2))

    def split_heads(self, t):
        # [N, T, D] -> [N, heads, T, D / heads]
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)'''

# name -> source; the order here is the order pieces appear in a generated file.
PRELUDE: dict[str, str] = {
    "positional_encoding": POSITIONAL_ENCODING,
    "scan": SCAN,
    "Attention": ATTENTION,
}


def prelude_source(names: set[str] | frozenset[str]) -> str:
    """The pieces ``names`` in a fixed order, two blank lines apart ("" for none)."""
    unknown = set(names) - PRELUDE.keys()
    if unknown:
        raise KeyError(f"no prelude piece named {sorted(unknown)}")
    return "\n\n\n".join(src for name, src in PRELUDE.items() if name in names)
