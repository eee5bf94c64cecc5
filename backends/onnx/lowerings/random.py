"""``randn_like``: the eval-mode counter-based draw of specs/ops/random.py, bit for bit in
its integer part. lowbias32 in int64 lanes with values kept below 2**32: shifts are ``Div``
by 2**k (the values are non-negative), xor and masks are ``BitwiseXor``/``BitwiseAnd``
(opset 18), and each product stays below 2**63: the first constant is below 2**31, the
second (above 2**31) is applied as two 16-bit halves, ``(v * lo + ((v * hi) & 0xFFFF) << 16)``,
which is the same product modulo 2**32. Box–Muller after it in float32, as the kernels."""

from __future__ import annotations

import numpy as np

from ..table import lowering

MASK = 0xFFFFFFFF
C1, C2 = 0x7FEB352D, 0x846CA68B


def _lowbias32_np(x: int) -> int:
    """The hash on a Python int (the seed's, at export time)."""
    x ^= x >> 16
    x = (x * C1) & MASK
    x ^= x >> 15
    x = (x * C2) & MASK
    return x ^ (x >> 16)


def _shift_xor(b, v: str, k: int) -> str:
    return b.add("BitwiseXor", [v, b.add("Div", [v, b.const(2**k, np.int64, "pow2")])])


def _lowbias32(b, v: str) -> str:
    mask = b.const(MASK, np.int64, "mask32")
    v = _shift_xor(b, v, 16)
    v = b.add("BitwiseAnd", [b.add("Mul", [v, b.const(C1, np.int64, "c1")]), mask])
    v = _shift_xor(b, v, 15)
    lo = b.add("Mul", [v, b.const(C2 & 0xFFFF, np.int64, "c2_lo")])
    hi = b.add("BitwiseAnd", [b.add("Mul", [v, b.const(C2 >> 16, np.int64, "c2_hi")]),
                              b.const(0xFFFF, np.int64, "mask16")])
    v = b.add("BitwiseAnd", [b.add("Add", [lo, b.add("Mul", [hi, b.const(2**16, np.int64, "pow2")])]), mask])
    return _shift_xor(b, v, 16)


def _uniform24(b, h: str, plus: int) -> str:
    """(h >> 8) + plus as float32, times 2**-24."""
    v = b.add("Div", [h, b.const(256, np.int64, "pow2")])
    if plus:
        v = b.add("Add", [v, b.const(plus, np.int64, "one")])
    return b.add("Mul", [b.add("Cast", [v], to=1), b.const(np.float32(2.0**-24), hint="inv_2_24")])


@lowering("randn_like")
def randn_like(b, node, xs, a):
    x = xs[0]
    one = b.const(1, np.int64, "one")
    i = b.add("Range", [b.const(0, np.int64, "zero"), b.add("Size", [x]), one])
    s = b.const(_lowbias32_np(a.seed), np.int64, "seed_hash")
    two_i = b.add("Mul", [i, b.const(2, np.int64, "two")])
    mask = b.const(MASK, np.int64, "mask32")
    ha = _lowbias32(b, b.add("BitwiseXor", [_lowbias32(b, b.add("BitwiseAnd", [two_i, mask])), s]))
    hb = _lowbias32(b, b.add("BitwiseXor", [_lowbias32(b, b.add("BitwiseAnd", [b.add("Add", [two_i, one]), mask])),
                                            s]))
    u1, u2 = _uniform24(b, ha, 1), _uniform24(b, hb, 0)
    r = b.add("Sqrt", [b.add("Mul", [b.const(np.float32(-2.0), hint="minus_two"), b.add("Log", [u1])])])
    z = b.add("Mul", [r, b.add("Cos", [b.add("Mul", [b.const(np.float32(6.2831854820251465), hint="two_pi"), u2])])])
    return [b.add("Reshape", [z, b.add("Shape", [x])])]
