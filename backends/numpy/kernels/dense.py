"""Dense kernels: ``linear``, ``embedding``, ``unembed``."""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel


@helper
def _affine(x, weight, bias=None):
    """x [..., F] @ weight [O, F]ᵀ + bias [O], as one 2-d matmul over all leading dims."""
    y = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
    return y if bias is None else y + bias


@kernel("linear")
def linear(x, weight, bias=None):
    """Affine map of the last dim: x Wᵀ + b."""
    return _affine(x, weight, bias)


@kernel("embedding")
def embedding(ids, weight):
    """Row ``ids`` of the table ``weight`` [num, dim]."""
    return np.take(weight, ids, axis=0)


@kernel("unembed")
def unembed(x, weight):
    """Tied output projection x @ weightᵀ with the embedding table [num, dim]."""
    return _affine(x, weight)
