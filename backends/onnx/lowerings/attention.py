"""Attention as plain ONNX math: ``MatMul``, ``Softmax``, ``MatMul`` (ONNX Runtime fuses it
on its own); a causal mask from ``Trilu``; multi-head attention with
nn.MultiheadAttention's packed ``in_proj_weight``; the sinusoidal table from ``Range``."""

from __future__ import annotations

import math

import numpy as np

from ..table import LoweringError, lowering
from .dense import affine


def sdpa(b, q: str, k: str, v: str, rank: int, d, mask: str | None = None, causal: bool = False,
         scale: float | None = None) -> str:
    """softmax(q kᵀ * scale + mask) v over the last two dims."""
    if scale is None:
        if not isinstance(d, int):
            raise LoweringError(f"attention over a symbolic head size {d} needs scale=")
        scale = 1 / math.sqrt(d)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    s = b.add("Mul", [b.add("MatMul", [q, b.add("Transpose", [k], perm=perm)]), b.const(scale, hint="scale")])
    if causal:
        size = b.add("Concat", [b.dim(s, rank - 2), b.dim(s, -1)], axis=0)
        ones = b.add("ConstantOfShape", [size], value=_tensor(1.0))
        above = b.add("Cast", [b.add("Trilu", [ones, b.const(1, np.int64, "one")], upper=1)], to=9)
        s = b.add("Where", [above, b.const(-np.inf, hint="minus_inf"), s])
    if mask is not None:
        if b.types[mask].dtype == "bool":
            s = b.add("Where", [mask, s, b.const(-np.inf, hint="minus_inf")])
        else:
            s = b.add("Add", [s, mask])
    return b.add("MatMul", [b.add("Softmax", [s], axis=-1), v])


def _tensor(value: float):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array([value], np.float32))


def _refuse_options(a) -> None:
    """Options of issue 12 that this lowering does not write yet: refused, never wrong numbers."""
    given = [name for name, on in (("mask=/padding=", bool(getattr(a, "masks", ()))),
                                   ("kv_heads=", getattr(a, "kv_heads", None) not in (None, getattr(a, "heads", None))),
                                   ("rotary=true", getattr(a, "rotary", False))) if on]
    if given:
        raise LoweringError(f"attention with {', '.join(given)} has no ONNX lowering yet")


@lowering("attention")
def attention(b, node, xs, a):
    _refuse_options(a)
    q = b.types[xs[0]]
    return [sdpa(b, *xs[:3], q.rank, q.shape[-1], xs[3] if len(xs) > 3 else None, a.causal, a.scale)]


def _heads(b, node, q: str, k: str, v: str, a, d: int) -> str:
    """Split [N, T, D] into heads [N, H, T, D/H], attend, merge, project."""
    h = a.heads
    split = b.ints([0, 0, h, d // h], "heads")
    q, k, v = (b.add("Transpose", [b.add("Reshape", [x, split])], perm=[0, 2, 1, 3]) for x in (q, k, v))
    y = b.add("Transpose", [sdpa(b, q, k, v, 4, d // h, causal=a.causal)], perm=[0, 2, 1, 3])
    y = b.add("Reshape", [y, b.ints([0, 0, d], "merged")])
    return affine(b, y, 3, b.param(node, "out_proj.weight"), b.param(node, "out_proj.bias"))


@lowering("self_attention")
def self_attention(b, node, xs, a):
    _refuse_options(a)
    d = node.type.shape[-1]
    qkv = affine(b, xs[0], 3, b.param(node, "in_proj_weight"), b.param(node, "in_proj_bias"))
    q, k, v = b.add("Split", [qkv, b.ints([d] * 3, "sizes")], outputs=3, axis=-1)
    return [_heads(b, node, q, k, v, a, d)]


@lowering("cross_attention")
def cross_attention(b, node, xs, a):
    _refuse_options(a)
    d = node.type.shape[-1]
    sizes = b.ints([d, 2 * d], "sizes")
    wq, wkv = b.add("Split", [b.param(node, "in_proj_weight"), sizes], outputs=2, axis=0)
    bias = b.param(node, "in_proj_bias")
    bq, bkv = b.add("Split", [bias, sizes], outputs=2, axis=0) if bias else (None, None)
    q = affine(b, xs[0], 3, wq, bq)
    k, v = b.add("Split", [affine(b, xs[1], 3, wkv, bkv), b.ints([d, d], "sizes")], outputs=2, axis=-1)
    return [_heads(b, node, q, k, v, a, d)]


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
