"""``randn_like``: the counter-based standard normal draw of eval mode (see specs/ops/random.py),
with the same int64 and float32 operations as the torch backend's ``counter_randn``."""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel


@helper
def _lowbias32(x):
    """A 32-bit integer hash (lowbias32) of the int64 array x, whose values are below 2**32
    (the products wrap modulo 2**64, which keeps their low 32 bits)."""
    x = x ^ (x >> 16)
    with np.errstate(over="ignore"):
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x = x ^ (x >> 15)
        x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


@kernel("randn_like")
def randn_like(x, seed=0):
    """Standard normal numbers of x's shape from ``seed`` and each element's index."""
    i = np.arange(x.size, dtype=np.int64)
    s = _lowbias32(np.int64(seed))
    a = _lowbias32(_lowbias32((2 * i) & 0xFFFFFFFF) ^ s)
    b = _lowbias32(_lowbias32((2 * i + 1) & 0xFFFFFFFF) ^ s)
    dtype = np.float64 if x.dtype == np.float64 else np.float32  # (float64 for float64 x, as torch)
    u1 = ((a >> 8) + 1).astype(dtype) * dtype(2.0**-24)
    u2 = (b >> 8).astype(dtype) * dtype(2.0**-24)
    z = np.sqrt(dtype(-2.0) * np.log(u1)) * np.cos(dtype(6.2831854820251465) * u2)
    return z.reshape(x.shape).astype(x.dtype)
