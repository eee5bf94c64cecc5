"""Rules for ONNX ops of convolutional and dense models. One rule per ONNX op (``@rule("Conv")``); a rule may take the
nodes after its own when together they are one netc op (``MatMul`` + ``Add`` -> ``linear``,
``GlobalAveragePool`` + ``Flatten`` -> ``global_avgpool``), and returns the layer, or None
when the node is nothing at inference. Anything without a rule, or a configuration netc
cannot express, is refused naming the op and the node: never an approximation."""

from __future__ import annotations

import numpy as np

from .errors import refuse
from .graph import ONode
from .layers import Layer
from .reader import Reader, rule


def _ints(v, n=2) -> tuple:
    return tuple(int(x) for x in v) if v is not None else (1,) * n


def _one(t: tuple):
    """(3, 3) -> 3: the language writes a square size once."""
    return t[0] if len(set(t)) == 1 else tuple(t)


@rule("Conv")
def conv(r: Reader, n: ONode) -> Layer:
    w = r.weight(n.inputs[1], n, "kernel")
    if w.ndim not in (3, 4):
        refuse(f"ONNX Conv node `{n.name}`: a {w.ndim - 2}-d convolution; netc has conv1d and conv2d", n)
    d = w.ndim - 2
    pads = _ints(n.attr("pads"), 2 * d)
    if n.attr("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or pads[:d] != pads[d:]:
        refuse(f"ONNX Conv node `{n.name}`: asymmetric or automatic padding {pads}; netc pads both sides "
               "alike", n)
    kw = {}
    stride, pad, dil = _one(_ints(n.attr("strides"), d)), _one(pads[:d]), _one(_ints(n.attr("dilations"), d))
    if stride != 1:
        kw["stride"] = stride
    if pad != 0:
        kw["padding"] = pad
    if dil != 1:
        kw["dilation"] = dil
    if n.attr("group", 1) != 1:
        kw["groups"] = int(n.attr("group"))
    weights = [w]
    if len(n.inputs) > 2 and n.inputs[2]:
        weights.append(r.weight(n.inputs[2], n, "bias"))
    else:
        kw["bias"] = False
    return Layer(f"conv{d}d", [n.inputs[0]], n.outputs[0], (int(w.shape[0]), _one(tuple(w.shape[2:]))), kw,
                 weights)


@rule("BatchNormalization")
def batchnorm(r: Reader, n: ONode) -> Layer:
    if n.attr("training_mode", 0):
        refuse(f"ONNX BatchNormalization node `{n.name}` runs in training mode", n)
    ws = [r.weight(v, n, what) for v, what in zip(n.inputs[1:5], ("scale", "bias", "mean", "variance"))]
    eps = float(np.float32(n.attr("epsilon", 1e-5)))
    kw = {} if abs(eps - 1e-5) < 1e-12 else {"eps": _float(eps)}
    return Layer("batchnorm", [n.inputs[0]], n.outputs[0], (), kw, ws)


@rule("LayerNormalization")
def layernorm(r: Reader, n: ONode) -> Layer:
    shape = r.g.shape(n.inputs[0])
    axis = n.attr("axis", -1)
    dims = -axis if axis < 0 else len(shape) - axis
    ws = [r.weight(n.inputs[1], n, "scale")]
    if len(n.inputs) > 2 and n.inputs[2]:
        ws.append(r.weight(n.inputs[2], n, "bias"))
    else:
        ws.append(np.zeros_like(ws[0]))  # netc's layernorm always has a shift; 0 is exact
    kw = {}
    if dims != 1:
        kw["dims"] = dims
    eps = float(np.float32(n.attr("epsilon", 1e-5)))
    if abs(eps - 1e-5) > 1e-12:
        kw["eps"] = _float(eps)
    return Layer("layernorm", [n.inputs[0]], n.outputs[0], (), kw, ws)


def _float(x: float) -> float:
    """A float32 attribute as the short decimal that reads back to it (1e-06, not 9.99e-07)."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-")) if x else 0.0


@rule("Gemm")
def gemm(r: Reader, n: ONode) -> Layer:
    if n.attr("alpha", 1.0) != 1.0 or n.attr("beta", 1.0) != 1.0 or n.attr("transA", 0):
        refuse(f"ONNX Gemm node `{n.name}`: alpha, beta or transA other than 1, 1, 0", n)
    w = r.weight(n.inputs[1], n, "weight")
    if not n.attr("transB", 0):
        w = np.ascontiguousarray(w.T)
    ws, kw = [w], {}
    if len(n.inputs) > 2 and n.inputs[2]:
        b = r.weight(n.inputs[2], n, "bias")
        ws.append(np.broadcast_to(b, (w.shape[0],)).copy())
    else:
        kw["bias"] = False
    return Layer("linear", [n.inputs[0]], n.outputs[0], (int(w.shape[0]),), kw, ws,
                 origin=r.g.origin.get(n.inputs[1], n.inputs[1]))


@rule("MatMul")
def matmul(r: Reader, n: ONode) -> Layer:
    a, b = n.inputs
    if r.g.const(a) is None and r.g.const(b) is None:
        return Layer("matmul", [a, b], n.outputs[0])
    if r.g.const(b) is None or r.g.const(b).ndim != 2:
        refuse(f"ONNX MatMul node `{n.name}`: a constant on the left or of rank other than 2", n)
    w = np.ascontiguousarray(r.weight(b, n, "weight").T)
    out, ws, kw = n.outputs[0], [w], {"bias": False}
    add = r.only_user(out, "Add")
    if add is not None:
        other = add.inputs[1] if add.inputs[0] == out else add.inputs[0]
        bias = r.g.const(other)
        if bias is not None and bias.size == w.shape[0] and bias.ndim >= 1:
            r.take(add)
            ws, kw, out = [w, np.asarray(bias, np.float32).reshape(-1)], {}, add.outputs[0]
    return Layer("linear", [a], out, (int(w.shape[0]),), kw, ws, source=n.name, origin=r.g.origin.get(b, b))


@rule("Relu", "Sigmoid", "Tanh", "Abs", "Exp", "Log", "Sqrt", "Neg", "Sin", "Cos")
def unary(r: Reader, n: ONode) -> Layer:
    return Layer(n.op.lower(), [n.inputs[0]], n.outputs[0])


@rule("Gelu")
def gelu(r: Reader, n: ONode) -> Layer:
    approx = n.attr("approximate", b"none")
    approx = approx.decode() if isinstance(approx, bytes) else approx
    return Layer("gelu", [n.inputs[0]], n.outputs[0], (), {} if approx == "none" else {"approximate": approx})


@rule("LeakyRelu")
def leaky_relu(r: Reader, n: ONode) -> Layer:
    return Layer("leaky_relu", [n.inputs[0]], n.outputs[0], (), {"slope": _float(n.attr("alpha", 0.01))})


@rule("Softmax", "LogSoftmax")
def softmax(r: Reader, n: ONode) -> Layer:
    axis = n.attr("axis", -1)
    op = "softmax" if n.op == "Softmax" else "log_softmax"
    return Layer(op, [n.inputs[0]], n.outputs[0], (), {} if axis == -1 else {"dim": int(axis)})


@rule("Clip")
def clip(r: Reader, n: ONode) -> Layer:
    lo = r.g.const(n.inputs[1]) if len(n.inputs) > 1 and n.inputs[1] else None
    hi = r.g.const(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
    if (len(n.inputs) > 1 and n.inputs[1] and lo is None) or (len(n.inputs) > 2 and n.inputs[2] and hi is None):
        refuse(f"ONNX Clip node `{n.name}`: bounds computed at run time", n)
    lo, hi = (None if lo is None else float(lo)), (None if hi is None else float(hi))
    if lo == 0.0 and hi == 6.0:
        return Layer("relu6", [n.inputs[0]], n.outputs[0])
    if lo == 0.0 and hi is None:
        return Layer("relu", [n.inputs[0]], n.outputs[0])
    kw = {k: _float(v) for k, v in (("min", lo), ("max", hi)) if v is not None}
    return Layer("clamp", [n.inputs[0]], n.outputs[0], (), kw)


def _pool(r: Reader, n: ONode, op: str) -> Layer:
    k = _ints(n.attr("kernel_shape"))
    d = len(k)
    pads = _ints(n.attr("pads"), 2 * d) if n.attr("pads") is not None else (0,) * (2 * d)
    if pads[:d] != pads[d:] or n.attr("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        refuse(f"ONNX {n.op} node `{n.name}`: asymmetric or automatic padding", n)
    if _ints(n.attr("dilations"), d) != (1,) * d:
        refuse(f"ONNX {n.op} node `{n.name}`: dilated pooling has no netc equivalent", n)
    stride = _one(_ints(n.attr("strides"), d))
    kw = {}
    if stride != _one(k):
        kw["stride"] = stride
    if _one(pads[:d]) != 0:
        kw["padding"] = _one(pads[:d])
    if n.attr("ceil_mode", 0):
        kw["ceil_mode"] = True
    if op == "avgpool" and not n.attr("count_include_pad", 0) and _one(pads[:d]) != 0:
        kw["count_include_pad"] = False
    return Layer(f"{op}{d}d", [n.inputs[0]], n.outputs[0], (_one(k),), kw)


@rule("MaxPool")
def maxpool(r: Reader, n: ONode) -> Layer:
    if len(n.outputs) > 1 and n.outputs[1]:
        refuse(f"ONNX MaxPool node `{n.name}`: its indices output has no netc equivalent", n)
    return _pool(r, n, "maxpool")


@rule("AveragePool")
def avgpool(r: Reader, n: ONode) -> Layer:
    return _pool(r, n, "avgpool")


@rule("GlobalAveragePool")
def global_avgpool(r: Reader, n: ONode) -> Layer:
    flat = r.only_user(n.outputs[0], "Flatten")
    if flat is not None and flat.attr("axis", 1) == 1:
        r.take(flat)
        return Layer("global_avgpool", [n.inputs[0]], flat.outputs[0])
    return Layer("adaptive_avgpool2d", [n.inputs[0]], n.outputs[0], (1,))


@rule("Flatten")
def flatten(r: Reader, n: ONode) -> Layer:
    axis = n.attr("axis", 1)
    rank = len(r.g.shape(n.inputs[0]) or ())
    if axis < 0:
        axis += rank
    if axis == 0:
        refuse(f"ONNX Flatten node `{n.name}` with axis 0 (it folds the batch dim)", n)
    return Layer("flatten", [n.inputs[0]], n.outputs[0], () if axis == 1 else (axis,))


@rule("Add", "Sub", "Mul", "Div")
def binary(r: Reader, n: ONode) -> Layer:
    op = n.op.lower()
    a, b = n.inputs
    ca, cb = r.g.const(a), r.g.const(b)
    if ca is None and cb is None:
        return Layer(op, [a, b], n.outputs[0])
    c, x = (cb, a) if cb is not None else (ca, b)
    if c.size == 1:
        return Layer(op, [x], n.outputs[0], scalar=_float(float(c.reshape(()))), scalar_left=cb is None)
    if (b if cb is not None else a) in r.g.weights:  # a learned tensor: a `param` of the spec
        return Layer(op, [a, b], n.outputs[0])
    refuse(f"ONNX {n.op} node `{n.name}` with a constant tensor operand of shape {list(c.shape)}; "
           "netc writes learned tensors as `param` only where the importer recognises them", n)


@rule("HardSigmoid")
def hardsigmoid(r: Reader, n: ONode) -> Layer:
    alpha, beta = n.attr("alpha", 0.2), n.attr("beta", 0.5)
    if not (abs(alpha - 1 / 6) < 1e-6 and abs(beta - 0.5) < 1e-6):
        refuse(f"ONNX HardSigmoid node `{n.name}` with alpha={alpha:g}, beta={beta:g}; netc's hardsigmoid is "
               "torch's (alpha 1/6, beta 1/2)", n)
    return Layer("hardsigmoid", [n.inputs[0]], n.outputs[0])


@rule("HardSwish")
def hardswish(r: Reader, n: ONode) -> Layer:
    return Layer("hardswish", [n.inputs[0]], n.outputs[0])
