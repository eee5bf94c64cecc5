"""Attention as plain ONNX math: ``MatMul``, ``Softmax``, ``MatMul``; a causal mask from
``Trilu``, bool and padding masks by ``Where``, a float mask added; multi-head attention with
nn.MultiheadAttention's packed ``in_proj_weight``; grouped-query attention by repeating the
k, v heads (``Expand``); rotary embeddings and the sinusoidal table from ``Range``."""

from __future__ import annotations

import math

import numpy as np
from netc.compiler.types import TensorType

from ..table import LoweringError, lowering
from .dense import affine


def sdpa(b, q: str, k: str, v: str, rank: int, d, masks: dict | None = None, causal: bool = False,
         scale: float | None = None, groups: int = 1, sizes: tuple | None = None) -> str:
    """softmax(q kᵀ * scale + mask) v over the last two dims, with torch's masking
    (``attention_mask`` of the torch prelude): a float ``mask`` is added; the bool ``mask``,
    the ``padding`` mask [N, S] (true: a real key) and causality all must allow a position.
    ``groups`` > 1: k and v have 1/groups of q's heads (dim -3), each serving ``groups`` query
    heads in turn (grouped-query attention, torch's ``enable_gqa``). ``sizes``: the netc
    sizes (T, S) with the values to read them from, so that layers share one causal mask."""
    masks = masks or {}
    if scale is None:
        if not isinstance(d, int):
            raise LoweringError(f"attention over a symbolic head size {d} needs scale=")
        scale = 1 / math.sqrt(d)
    if groups > 1:
        k, v = (_repeat_heads(b, t, rank, groups) for t in (k, v))
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    s = b.add("Mul", [b.add("MatMul", [q, b.add("Transpose", [k], perm=perm)]), b.const(scale, hint="scale")])
    mask = masks.get("mask")
    if mask is not None and b.types[mask].dtype != "bool":
        s = b.add("Add", [s, mask])
    keep = []
    if "padding" in masks:  # [N, S] -> [N, 1, ..., 1, S]
        keep.append(b.add("Unsqueeze", [masks["padding"], b.ints(list(range(1, rank - 1)), "axes")]))
    if mask is not None and b.types[mask].dtype == "bool":
        keep.append(mask)
    if causal:
        s = b.add("Add", [s, _causal(b, s, rank, sizes)])
    for m in keep:
        s = b.add("Where", [m, s, b.const(-np.inf, hint="minus_inf")])
    p = b.add("Softmax", [s], axis=-1)
    if masks:  # a query that no key may attend gets zeros, as torch's (its softmax row is NaN)
        p = b.add("Where", [b.add("IsNaN", [p]), b.const(0.0, hint="zero"), p])
    return b.add("MatMul", [p, v])


def _causal(b, s: str, rank: int, sizes: tuple | None) -> str:
    """The additive causal mask [T, S]: -inf above the diagonal (torch's tril, top-left
    aligned), 0 elsewhere; made once per graph for each (T, S) when ``sizes`` names them."""
    key = ("causal", *map(str, sizes[:2])) if sizes else None
    if key in b.cache:
        return b.cache[key]
    if sizes:
        t, n, sources = sizes
        size = b.add("Concat", [b.size(t, sources), b.size(n, sources)], axis=0)
    else:
        size = b.add("Concat", [b.dim(s, rank - 2), b.dim(s, -1)], axis=0)
    ones = b.add("ConstantOfShape", [size], value=_tensor(1.0))
    above = b.add("Cast", [b.add("Trilu", [ones, b.const(1, np.int64, "one")], upper=1)], to=9)
    mask = b.add("Where", [above, b.const(-np.inf, hint="minus_inf"), b.const(0.0, hint="zero")])
    if key:
        b.cache[key] = mask
    return mask


def _repeat_heads(b, x: str, rank: int, groups: int) -> str:
    """[..., KV, S, d] -> [..., KV * groups, S, d], each head repeated ``groups`` times in place
    (torch's repeat_interleave on dim -3)."""
    t = b.types[x]
    y = b.add("Unsqueeze", [x, b.ints([rank - 2], "axes")])
    y = b.add("Expand", [y, b.ints([1] * (rank - 2) + [groups, 1, 1], "groups")])
    heads, last = t.shape[-3], t.shape[-1]
    if isinstance(heads, int) and isinstance(last, int):
        shape = b.ints([0] * (rank - 3) + [heads * groups, -1, last], "shape")
    else:
        shape = b.add("Concat", [b.add("Shape", [y], end=rank - 3), b.ints([-1], "minus_one"),
                                 b.add("Shape", [y], start=rank - 1)], axis=0)
    return b.add("Reshape", [y, shape])


def rope(b, x: str, rank: int, d: int, base: float, size: tuple | None = None) -> str:
    """Rotary position embedding of x [..., T, d] (the torch prelude's ``rotary``): features i
    and i + d/2 at position t turn by t * base^(-2i/d). ``size``: the netc size T with the
    values to read it from, so that layers share one cos and sin table."""
    cos, sin = _rope_tables(b, x, rank, d, base, size)
    x1, x2 = b.add("Split", [x, b.ints([d // 2, d // 2], "halves")], outputs=2, axis=-1)
    rotated = b.add("Concat", [b.add("Neg", [x2]), x1], axis=-1)
    return b.add("Add", [b.add("Mul", [x, cos]), b.add("Mul", [rotated, sin])])


def _rope_tables(b, x: str, rank: int, d: int, base: float, size: tuple | None) -> tuple[str, str]:
    key = ("rope", str(size[0]), d, base) if size else None
    if key in b.cache:
        return b.cache[key]
    freq = np.float32(1.0) / np.float32(base) ** (np.arange(0, d, 2, dtype=np.float32) / np.float32(d))
    n = b.size(size[0], size[1]) if size else b.dim(x, rank - 2)
    t = b.add("Cast", [b.add("Range", [b.const(0, np.int64, "zero"), b.add("Squeeze", [n]),
                                       b.const(1, np.int64, "one")])], to=1)
    angle = b.add("Mul", [b.add("Unsqueeze", [t, b.ints([1], "axes")]), b.const(freq, hint="rope_frequencies")])
    angle = b.add("Concat", [angle, angle], axis=-1)  # [T, d]
    tables = b.add("Cos", [angle]), b.add("Sin", [angle])
    if key:
        b.cache[key] = tables
    return tables


@lowering("rotary")
def rotary(b, node, xs, a):
    t = b.types[xs[0]]
    d = t.shape[-1]
    if not isinstance(d, int):
        raise LoweringError(f"rotary over a symbolic feature size {d}: the frequency table needs its value")
    return [rope(b, xs[0], t.rank, d, a.base)]


def _tensor(value: float):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array([value], np.float32))


def _masks(a, xs: list[str], names: tuple[str, ...] | None = None) -> dict:
    """The node's mask inputs by name (``mask``, ``padding``), in the order the node has them."""
    names = a.masks if names is None else names
    return dict(zip(names, xs))


@lowering("attention")
def attention(b, node, xs, a):
    q, k = b.types[xs[0]], b.types[xs[1]]
    names = a.masks or ("mask",) * min(len(xs) - 3, 1)
    groups = 1
    if q.rank >= 3 and k.rank >= 3:
        h, kv = q.shape[-3], k.shape[-3]
        if isinstance(h, int) and isinstance(kv, int) and kv not in (1, h):
            groups = h // kv
    return [sdpa(b, *xs[:3], q.rank, q.shape[-1], _masks(a, xs[3:], names), a.causal, a.scale, groups)]


def _heads(b, node, q: str, k: str, v: str, a, d: int, masks: dict, node_x: str, memory: str) -> str:
    """Split [N, T, D] into heads [N, H, T, D/H] (k, v into kv_heads), rotate q and k (RoPE),
    attend, merge, project."""
    h, kv = a.heads, a.kv_heads or a.heads
    hd = d // h
    q = b.add("Transpose", [b.add("Reshape", [q, b.ints([0, 0, h, hd], "heads")])], perm=[0, 2, 1, 3])
    k, v = (b.add("Transpose", [b.add("Reshape", [x, b.ints([0, 0, kv, hd], "heads")])], perm=[0, 2, 1, 3])
            for x in (k, v))
    if getattr(a, "rotary", False):
        q = rope(b, q, 4, hd, a.base, (node.type.shape[1], [node_x]))
        k = rope(b, k, 4, hd, a.base, (b.types[memory].shape[1], [memory]))
    n, s = node.type.shape[0], b.types[memory].shape[1]
    b.types[k] = b.types[v] = TensorType("float", (n, kv, s, hd))
    sizes = (node.type.shape[1], b.types[memory].shape[1], [node_x, memory])
    y = b.add("Transpose", [sdpa(b, q, k, v, 4, hd, masks, a.causal, groups=h // kv, sizes=sizes)],
              perm=[0, 2, 1, 3])
    y = b.add("Reshape", [y, b.ints([0, 0, d], "merged")])
    return affine(b, y, 3, b.param(node, "out_proj.weight"), b.param(node, "out_proj.bias"))


@lowering("self_attention")
def self_attention(b, node, xs, a):
    d = node.type.shape[-1]
    kvd = d // a.heads * (a.kv_heads or a.heads)
    qkv = affine(b, xs[0], 3, b.param(node, "in_proj_weight"), b.param(node, "in_proj_bias"))
    q, k, v = b.add("Split", [qkv, b.ints([d, kvd, kvd], "sizes")], outputs=3, axis=-1)
    return [_heads(b, node, q, k, v, a, d, _masks(a, xs[1:]), xs[0], xs[0])]


@lowering("cross_attention")
def cross_attention(b, node, xs, a):
    d = node.type.shape[-1]
    kvd = d // a.heads * (a.kv_heads or a.heads)
    sizes = b.ints([d, 2 * kvd], "sizes")
    wq, wkv = b.add("Split", [b.param(node, "in_proj_weight"), sizes], outputs=2, axis=0)
    bias = b.param(node, "in_proj_bias")
    bq, bkv = b.add("Split", [bias, sizes], outputs=2, axis=0) if bias else (None, None)
    q = affine(b, xs[0], 3, wq, bq)
    k, v = b.add("Split", [affine(b, xs[1], 3, wkv, bkv), b.ints([kvd, kvd], "sizes")], outputs=2, axis=-1)
    return [_heads(b, node, q, k, v, a, d, _masks(a, xs[2:]), xs[0], xs[1])]


@lowering("positional_encoding")
def positional_encoding(b, node, xs, a):
    d = node.type.shape[-1]
    t = b.add("Cast", [b.add("Range", [b.const(0, np.int64, "zero"), b.add("Squeeze", [b.dim(xs[0], 1)]),
                                       b.const(1, np.int64, "one")])], to=1)
    freq = b.const(10000.0 ** (-np.arange(0, d, 2) / d), hint="frequencies")
    angle = b.add("Mul", [b.add("Unsqueeze", [t, b.ints([1], "axes")]), freq])  # [T, D/2]
    pair = b.add("Concat", [b.add("Unsqueeze", [b.add(f, [angle]), b.ints([-1], "axes")]) for f in ("Sin", "Cos")],
                 axis=-1)
    return [b.add("Add", [xs[0], b.add("Reshape", [pair, b.ints([-1, d], "table")])])]
