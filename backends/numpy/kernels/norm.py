"""Normalisation kernels, inference form: ``batchnorm`` (running statistics), ``layernorm``,
``groupnorm``; ``dropout`` is the identity (the reference runs eval-mode semantics).
"""

from __future__ import annotations

import numpy as np

from ._table import kernel


@kernel("batchnorm")
def batchnorm(x, weight, bias, running_mean, running_var, eps=1e-5):
    """(x - running_mean) / sqrt(running_var + eps) * weight + bias per channel (dim 1)."""
    shape = (-1,) + (1,) * (x.ndim - 2)
    scale = weight / np.sqrt(running_var + eps)
    y = np.subtract(x, running_mean.reshape(shape))  # one buffer, two passes in place after it
    y *= scale.reshape(shape)
    y += bias.reshape(shape)
    return y


@kernel("layernorm")
def layernorm(x, weight, bias, dims=1, eps=1e-5):
    """Normalise over the last ``dims`` dims, then scale and shift (no weights: affine=false)."""
    axes = tuple(range(x.ndim - dims, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y if weight is None else y * weight + bias


@kernel("rmsnorm")
def rmsnorm(x, weight, eps=1e-6):
    """x / sqrt(mean(x²) + eps) over the last dim, times the learned weight."""
    ms = np.square(x).mean(axis=-1, keepdims=True)
    return x / np.sqrt(ms + eps) * weight


@kernel("groupnorm")
def groupnorm(x, weight, bias, groups, eps=1e-5):
    """Normalise over each group of channels and all positions of [N, C, ...]."""
    g = x.reshape(x.shape[0], groups, -1)
    mean = g.mean(axis=-1, keepdims=True)
    var = np.square(g - mean).mean(axis=-1, keepdims=True)
    y = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    shape = (-1,) + (1,) * (x.ndim - 2)
    return y * weight.reshape(shape) + bias.reshape(shape)


@kernel("dropout")
def dropout(x):
    """The identity: dropout is off at inference."""
    return x
