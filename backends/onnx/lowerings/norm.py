"""Normalisation, inference form: ``BatchNormalization`` (running statistics),
``LayerNormalization`` (opset 17), ``groupnorm`` as ``InstanceNormalization`` over the
groups and a per-channel scale and shift, ``rmsnorm`` in the pattern ONNX Runtime fuses, ``dropout`` the identity."""

from __future__ import annotations

import numpy as np

from ..table import LoweringError, lowering


@lowering("batchnorm")
def batchnorm(b, node, xs, a):
    ws = [b.param(node, p) for p in ("weight", "bias", "running_mean", "running_var")]
    return [b.add("BatchNormalization", [xs[0], *ws], epsilon=float(a.eps))]


@lowering("layernorm")
def layernorm(b, node, xs, a):
    if a.affine:
        ws = [b.param(node, "weight"), b.param(node, "bias")]
    else:
        shape = b.types[xs[0]].shape[-a.dims:]
        if not all(isinstance(d, int) for d in shape):
            raise LoweringError(f"layernorm(affine=false) over symbolic sizes {list(map(str, shape))} has no "
                                "ONNX form (LayerNormalization needs a scale of the normalised shape)")
        ws = [b.const(np.ones(shape), hint="ones")]
    return [b.add("LayerNormalization", [xs[0], *ws], axis=-a.dims, epsilon=float(a.eps))]


@lowering("groupnorm")
def groupnorm(b, node, xs, a):
    """``InstanceNormalization`` over [N, groups, -1], then the per-channel scale and shift
    (ONNX's own GroupNormalization-21 has no shape inference in onnx 1.23)."""
    x, rank = xs[0], b.types[xs[0]].rank
    g = a.groups
    y = b.add("Reshape", [x, b.ints([0, g, -1], "groups")])
    y = b.add("InstanceNormalization", [y, b.const(np.ones(g), hint="ones"), b.const(np.zeros(g), hint="zeros")],
              epsilon=float(a.eps))
    y = b.add("Reshape", [y, b.add("Shape", [x])])
    axes = b.ints(list(range(1, rank - 1)), "axes")
    w, bias = (b.add("Unsqueeze", [b.param(node, p), axes]) for p in ("weight", "bias"))
    return [b.add("Add", [b.add("Mul", [y, w]), bias])]


@lowering("dropout")
def dropout(b, node, xs, a):
    return [xs[0]]


@lowering("rmsnorm")
def rmsnorm(b, node, xs, a):
    """x / sqrt(mean(x²) + eps) * weight over the last dim, written in the form ONNX Runtime
    fuses into one SimplifiedLayerNormalization (Pow, ReduceMean, Add, Sqrt, Div, Mul)."""
    x = xs[0]
    ms = b.add("ReduceMean", [b.add("Pow", [x, b.const(np.float32(2.0), hint="two")]), b.ints([-1], "axes")],
               keepdims=1)
    rms = b.add("Sqrt", [b.add("Add", [ms, b.const(np.float32(a.eps), hint="eps")])])
    return [b.add("Mul", [b.add("Div", [x, rms]), b.param(node, "weight")])]
