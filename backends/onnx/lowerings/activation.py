"""Activations: each maps to its ONNX op (``Gelu`` is opset 20's, exact erf form); ``silu``
is ``x * Sigmoid(x)`` (ONNX has no SiLU before opset 24's Swish)."""

from __future__ import annotations

import numpy as np
from netc.specs.catalogue import get

from ..table import LOWERINGS, lowering

SIMPLE = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "neg": "Neg", "abs": "Abs",
          "sqrt": "Sqrt", "exp": "Exp", "log": "Log", "sin": "Sin", "cos": "Cos", "hardswish": "HardSwish"}


def _unary(onnx_op: str):
    def lower(b, node, xs, a):
        return [b.add(onnx_op, xs)]

    return lower


for _op, _onnx_op in SIMPLE.items():
    lowering(_op)(_unary(_onnx_op))


@lowering("leaky_relu")
def leaky_relu(b, node, xs, a):
    return [b.add("LeakyRelu", xs, alpha=float(a.slope))]


@lowering("silu")
def silu(b, node, xs, a):
    return [b.add("Mul", [xs[0], b.add("Sigmoid", xs)])]


@lowering("softmax")
def softmax(b, node, xs, a):
    return [b.add("Softmax", xs, axis=a.dim)]


@lowering("log_softmax")
def log_softmax(b, node, xs, a):
    return [b.add("LogSoftmax", xs, axis=a.dim)]


def apply(b, node, x: str, op: str, value=None) -> str:
    """Apply the unary elementwise ``op`` (with its one float attribute ``value``, if any) to
    ``x`` through its own lowering: a layer's fused activation, a step of fused_elementwise."""
    entry = get(op)
    fields = list(entry.Attrs.model_fields)
    attrs = entry.Attrs(**({fields[0]: float(value)} if value is not None and fields else {}))
    return LOWERINGS[op](b, node, [x], attrs)[0]


def activate(b, node, y: str, a) -> str:
    """A layer's fused activation (fuse_activation), if it has one."""
    act = getattr(a, "activation", None)
    if act is None:
        return y
    fields = get(act).Attrs.model_fields  # a slope only for an activation of one float (leaky_relu's)
    one_float = len(fields) == 1 and next(iter(fields.values())).annotation is float
    return apply(b, node, y, act, a.activation_slope if one_float else None)


@lowering("hardsigmoid")
def hardsigmoid(b, node, xs, a):
    return [b.add("HardSigmoid", xs, alpha=1.0 / 6.0, beta=0.5)]


@lowering("relu6")
def relu6(b, node, xs, a):
    return [b.add("Clip", [xs[0], b.const(np.float32(0.0)), b.const(np.float32(6.0))])]


@lowering("rsqrt")
def rsqrt(b, node, xs, a):
    return [b.add("Reciprocal", [b.add("Sqrt", xs)])]


@lowering("clamp")
def clamp(b, node, xs, a):
    lo = "" if a.min is None else b.const(np.float32(a.min))
    hi = "" if a.max is None else b.const(np.float32(a.max))
    return [b.add("Clip", [xs[0], lo, hi])]


@lowering("gelu")
def gelu(b, node, xs, a):
    return [b.add("Gelu", xs, approximate=a.approximate)]
