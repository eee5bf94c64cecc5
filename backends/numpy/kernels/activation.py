"""Activation kernels. ``gelu`` is exact (with erf); NumPy has no erf, so ``_erf`` evaluates
Cephes' rational approximations (as SciPy's ``ndtr`` does), accurate to double precision.
"""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel


@kernel("relu")
def relu(x):
    """max(x, 0)."""
    return np.maximum(x, 0)


@kernel("leaky_relu")
def leaky_relu(x, slope=0.01):
    """x where x > 0, else slope * x."""
    return np.where(x > 0, x, x * slope)


@helper
def _polynomial(x, coefficients):
    """Horner's rule, highest power first."""
    y = np.zeros_like(x) + coefficients[0]
    for c in coefficients[1:]:
        y = y * x + c
    return y


@helper
def _erf(x):
    """The error function, elementwise, in the dtype of x (Cephes ndtr.c, double precision)."""
    t = [9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
         7.00332514112805075473e3, 5.55923013010394962768e4]
    u = [1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
         2.26290000613890934246e4, 4.92673942608635921086e4]
    p = [2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
         4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
         9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2]
    q = [1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
         9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
         1.65666309194161350182e3, 5.57535340817727675546e2]
    small = np.minimum(np.abs(x), 1)  # |x| <= 1: erf = x T(x²) / U(x²)
    z = small * small
    inner = np.sign(x) * small * _polynomial(z, t) / _polynomial(z, u)
    big = np.clip(np.abs(x), 1, 8)  # |x| > 1: erf = 1 - erfc, erfc = exp(-x²) P(x) / Q(x); 1 from 6 on
    outer = np.sign(x) * (1 - np.exp(-big * big) * _polynomial(big, p) / _polynomial(big, q))
    return np.where(np.abs(x) <= 1, inner, outer)


# The activations _activate has a formula for; the emitter passes any other one's kernel.
FUSED_ACTIVATIONS = frozenset({"relu", "leaky_relu", "tanh", "sigmoid", "silu", "gelu"})


@helper
def _activate(y, activation, slope=0.01):
    """A layer's fused activation (the -O2 pass fuse_activation), written over its fresh output
    ``y``; the same arithmetic as the activation's own kernel. ``activation`` is a name, or
    the kernel of an activation this function has no formula for."""
    if activation == "relu":
        np.maximum(y, 0, out=y)
    elif activation == "leaky_relu":
        np.multiply(y, slope, out=y, where=y < 0)
    elif activation == "tanh":
        np.tanh(y, out=y)
    elif activation in ("sigmoid", "silu"):
        e = np.exp(-np.abs(y))
        s = np.where(y >= 0, 1, e) / (1 + e)  # sigmoid(y), without overflow
        if activation == "silu":
            np.multiply(y, s, out=y)
        else:
            np.copyto(y, s)
    elif activation == "gelu":
        np.multiply(y, 0.5 * (1 + _erf(y * 0.7071067811865476)), out=y)
    elif callable(activation):
        np.copyto(y, activation(y))
    elif activation is not None:
        raise ValueError(f"unknown activation {activation!r}")
    return y


@kernel("gelu")
def gelu(x, approximate="none"):
    """x * Φ(x) = x / 2 * (1 + erf(x / √2)), exact; or torch's tanh form,
    x / 2 * (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1 + _erf(x * 0.7071067811865476))


@kernel("relu6")
def relu6(x):
    """min(max(x, 0), 6)."""
    return np.clip(x, 0, 6)


@kernel("hardsigmoid")
def hardsigmoid(x):
    """min(max(x + 3, 0), 6) / 6, as torch computes it."""
    return np.clip(x + 3, 0, 6) / 6


@kernel("hardswish")
def hardswish(x):
    """x * min(max(x + 3, 0), 6) / 6, as torch computes it."""
    return x * np.clip(x + 3, 0, 6) / 6


@kernel("clamp")
def clamp(x, min=None, max=None):
    """x limited to [min, max] (a bound of None is no bound)."""
    return np.clip(x, min, max)


@kernel("sigmoid")
def sigmoid(x):
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@kernel("silu")
def silu(x):
    """x * sigmoid(x)."""
    return x * sigmoid(x)


@kernel("tanh")
def tanh(x):
    """Hyperbolic tangent."""
    return np.tanh(x)


@kernel("softmax")
def softmax(x, dim=-1):
    """exp(x) normalised along ``dim``; the max is subtracted first, so exp never overflows."""
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


@kernel("log_softmax")
def log_softmax(x, dim=-1):
    """x - logsumexp(x) along ``dim``, computed stably."""
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
