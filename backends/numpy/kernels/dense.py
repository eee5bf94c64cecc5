"""Dense kernels: ``linear``, ``embedding``, ``unembed``."""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel
from .activation import _activate


@helper
def _affine(x, weight, bias=None):
    """x [..., F] @ weight [O, F]ᵀ + bias [O], as one 2-d matmul over all leading dims; the
    bias is added in place (the product is a fresh array)."""
    y = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
    if bias is not None:
        y += bias
    return y


@kernel("linear")
def linear(x, weight, bias=None, activation=None, activation_slope=0.01):
    """Affine map of the last dim: x Wᵀ + b; then ``activation``, if fused, in place."""
    return _activate(_affine(x, weight, bias), activation, activation_slope)


@kernel("embedding")
def embedding(ids, weight):
    """Row ``ids`` of the table ``weight`` [num, dim]."""
    return np.take(weight, ids, axis=0)


@kernel("unembed")
def unembed(x, weight):
    """Tied output projection x @ weightᵀ with the embedding table [num, dim]."""
    return _affine(x, weight)
