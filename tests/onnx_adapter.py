"""A test-side adapter from ONNX nodes to our NumPy kernels (tests/test_onnx_conformance.py).

Each adapter takes an ONNX node (:class:`Node`) and its inputs (positional, None where
omitted), maps the attributes to our kernel arguments, calls the kernels from the table
(``netc.backends.numpy.kernels.KERNELS``) directly and returns the outputs by ONNX output
position (None: an optional ONNX output our op does not have). It changes layouts only
where ONNX's differ from ours (time-major RNN tensors, gate order, pads as begin/end lists),
and raises :class:`Unsupported` for a configuration our ops do not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from netc.backends.numpy.kernels import KERNELS
from onnx import helper


class Unsupported(Exception):
    """The case uses a configuration our ops do not have; the message says which."""


@dataclass(frozen=True)
class Node:
    """An ONNX node as the adapters read it: op type, input and output names ('' = omitted),
    attributes as Python values, and the model's opset."""

    op_type: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    attrs: dict
    opset: int

    @classmethod
    def of(cls, proto, opset: int) -> Node:
        attrs = {}
        for a in proto.attribute:
            v = helper.get_attribute_value(a)
            attrs[a.name] = v.decode() if isinstance(v, bytes) else list(v) if isinstance(v, (list, tuple)) else v
        return cls(proto.op_type, tuple(proto.input), tuple(proto.output), attrs, opset)

    def proto(self):
        return helper.make_node(self.op_type, self.input, self.output, **self.attrs)


def attr(node: Node, name: str, default=None):
    return node.attrs.get(name, default)


# -- pads: ONNX gives begin/end lists or auto_pad; our kernels take one symmetric padding ---------

def _pads(node, x, kernel, strides, dilations) -> list[tuple[int, int]]:
    nd = len(kernel)
    auto = attr(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return out
    p = attr(node, "pads", [0] * 2 * nd) if auto == "NOTSET" else [0] * 2 * nd
    return list(zip(p[:nd], p[nd:]))


def _symmetric(pads) -> tuple[int, ...]:
    if any(b != e for b, e in pads):
        raise Unsupported(f"asymmetric padding {pads}: our padding is the same at both ends")
    return tuple(b for b, _ in pads)


def _window(node, x):
    """kernel, strides, symmetric padding of a Conv or pool node over x; 1-d and 2-d only."""
    nd = x.ndim - 2
    if nd not in (1, 2):
        raise Unsupported(f"{nd}-d: our convolutions and pools are 1-d and 2-d")
    kernel = attr(node, "kernel_shape")
    strides = attr(node, "strides", [1] * nd)
    dilations = attr(node, "dilations", [1] * nd)
    return kernel, strides, dilations, _symmetric(_pads(node, x, kernel, strides, dilations))


def _one(v):
    return v[0] if len(v) == 1 else tuple(v)


# -- adapters: ONNX node + inputs (positional, None where omitted) -> outputs ----------------------

def conv(node, x, w, b=None):
    _, strides, dilations, pads = _window(node, x)
    fn = KERNELS["conv1d" if x.ndim == 3 else "conv2d"]
    return (fn(x, w, b, stride=_one(strides), padding=_one(pads), dilation=_one(dilations),
               groups=attr(node, "group", 1)),)


def conv_transpose(node, x, w, b=None):
    """ONNX crops the zero-extended full output [begin : L + output_padding - end]; torch's
    padding p and output_padding q give [p : L + q - p]: equal when p = begin, q = op - end + begin."""
    if x.ndim != 4:
        raise Unsupported(f"{x.ndim - 2}-d: our transposed convolution is 2-d")
    if attr(node, "group", 1) != 1:
        raise Unsupported("group > 1: our conv_transpose2d has no groups")
    if attr(node, "dilations", [1, 1]) != [1, 1]:
        raise Unsupported("dilations: our conv_transpose2d has none")
    k = w.shape[2:]
    strides, out_pad = attr(node, "strides", [1, 1]), attr(node, "output_padding", [0, 0])
    full = [(n - 1) * s + kk + op for n, s, kk, op in zip(x.shape[2:], strides, k, out_pad)]
    auto, shape = attr(node, "auto_pad", "NOTSET"), attr(node, "output_shape")
    if shape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        shape = [n * s for n, s in zip(x.shape[2:], strides)]
    if shape is not None:  # the spec's rule: total padding split, the odd one at the end unless SAME_UPPER
        totals = [f - o for f, o in zip(full, shape)]
        pads = [(t // 2, t - t // 2) if auto == "SAME_UPPER" else (t - t // 2, t // 2) for t in totals]
    else:
        pads = [(b, e) for b, e in zip(*np.reshape(attr(node, "pads", [0] * 4), (2, 2)))]
    padding = tuple(b for b, _ in pads)
    output_padding = tuple(op - e + b for op, (b, e) in zip(out_pad, pads))
    if any(p < 0 for p in padding) or any(not 0 <= q < s for q, s in zip(output_padding, strides)):
        raise Unsupported(f"pads {pads} with output_padding {out_pad}: no torch padding and output_padding "
                          "crop the output that way")
    return (KERNELS["conv_transpose2d"](x, w, b, stride=tuple(strides), padding=padding,
                                        output_padding=output_padding),)


def _pool_config(node, x):
    if attr(node, "ceil_mode", 0):
        raise Unsupported("ceil_mode: our pools round the output size down")
    if any(d != 1 for d in attr(node, "dilations", [1])):
        raise Unsupported("dilations: our pools have none")
    kernel, strides, _, pads = _window(node, x)
    if any(2 * p > k for p, k in zip(pads, kernel)):
        raise Unsupported(f"padding {pads} more than half the kernel {kernel}: the catalogue (as torch) refuses it")
    return _one(kernel), _one(strides), _one(pads)


def max_pool(node, x):
    if x.dtype.kind != "f":
        raise Unsupported(f"{x.dtype} input: our tensors are float")
    if len([o for o in node.output if o]) > 1 or attr(node, "storage_order", 0):
        raise Unsupported("the Indices output (argmax): our maxpool returns values only")
    kernel, stride, padding = _pool_config(node, x)
    return (KERNELS[f"maxpool{x.ndim - 2}d"](x, kernel, stride, padding),)


def average_pool(node, x):
    kernel, stride, padding = _pool_config(node, x)
    if any(np.atleast_1d(padding)) and not attr(node, "count_include_pad", 0):
        raise Unsupported("count_include_pad=0 with padding: our average counts the zero padding (as torch's "
                          "default)")
    return (KERNELS[f"avgpool{x.ndim - 2}d"](x, kernel, stride, padding),)


def global_average_pool(node, x):
    return (KERNELS["global_avgpool"](x).reshape(*x.shape[:2], *(1,) * (x.ndim - 2)),)


def batch_norm(node, x, scale, bias, mean, var):
    if attr(node, "training_mode", 0):
        raise Unsupported("training_mode: our batchnorm is the inference form (running statistics)")
    return (KERNELS["batchnorm"](x, scale, bias, mean, var, eps=attr(node, "epsilon", 1e-5)),)


def layer_norm(node, x, w, b=None):
    """ONNX normalises over dims axis..end (W's shape); ours over the last ``dims`` dims.
    Mean and InvStdDev (optional outputs for training) are not outputs of our op: None."""
    axis = attr(node, "axis", -1) % x.ndim
    b = np.zeros_like(w) if b is None else b
    return KERNELS["layernorm"](x, w, b, dims=x.ndim - axis, eps=attr(node, "epsilon", 1e-5)), None, None


def gemm(node, a, b, c=None):
    """alpha * A' B' + beta * C from our linear (x Wᵀ + bias), transpose, mul and add."""
    alpha, beta = attr(node, "alpha", 1.0), attr(node, "beta", 1.0)
    if attr(node, "transA", 0):
        a = KERNELS["transpose"](a, 0, 1)
    weight = b if attr(node, "transB", 0) else KERNELS["transpose"](b, 0, 1)  # linear's [out, in]
    if alpha == 1 and beta == 1:
        return (KERNELS["linear"](a, weight, c),)
    y = KERNELS["mul"](KERNELS["linear"](a, weight), np.float32(alpha))
    return (y if c is None else KERNELS["add"](y, KERNELS["mul"](c, np.float32(beta))),)


def softmax(name):
    def adapter(node, x):
        if node.opset < 13:
            raise Unsupported("opset < 13: Softmax then flattened the dims from `axis` on")
        return (KERNELS[name](x, dim=attr(node, "axis", -1)),)
    return adapter


def flatten(node, x):
    """ONNX: [prod(dims before axis), prod(dims from axis)]: ours merges dims start..end."""
    axis = attr(node, "axis", 1) % x.ndim
    if axis == 0:
        raise Unsupported("axis 0 gives [1, n]: our flatten merges dims and never adds one")
    y = KERNELS["flatten"](x, start=axis, end=-1)
    return (KERNELS["flatten"](y, start=0, end=axis - 1) if axis > 1 else y,)


def gather(node, data, ids):
    """An embedding lookup: rows of a table; data [n, ...] is a table [n, prod(...)]."""
    if attr(node, "axis", 0) != 0:
        raise Unsupported("axis != 0: an embedding looks up rows")
    if data.ndim < 2:
        raise Unsupported("1-d data: an embedding table has rows of a dim")
    if ids.dtype.kind not in "iu" or (ids < 0).any():
        raise Unsupported("negative indices: embedding ids count from 0")
    table = data.reshape(data.shape[0], -1)
    return (KERNELS["embedding"](ids, table).reshape(*ids.shape, *data.shape[1:]),)


# -- recurrent: ONNX is time-major (layout 0), gates i,o,f,c (LSTM) and z,r,h (GRU) ----------------

GATES = {"RNN": (1, [0]), "LSTM": (4, [0, 2, 3, 1]), "GRU": (3, [1, 0, 2])}  # ONNX chunk -> torch order
ACTIVATIONS = {"RNN": (["Tanh"], ["Relu"]), "LSTM": (["Sigmoid", "Tanh", "Tanh"],), "GRU": (["Sigmoid", "Tanh"],)}


def _torch_order(op, a):
    n, order = GATES[op]
    return np.concatenate([np.split(a, n, axis=0)[i] for i in order], axis=0)


def recurrent(node, x, w, r, b=None, seq_lens=None, h0=None, c0=None, p=None):
    op = node.op_type
    _check_recurrent(node, seq_lens, p)
    layout, direction = attr(node, "layout", 0), attr(node, "direction", "forward")
    hidden = attr(node, "hidden_size")
    acts = attr(node, "activations")
    dirs = 2 if direction == "bidirectional" else 1
    if b is None:
        b = np.zeros((dirs, 2 * GATES[op][0] * hidden), x.dtype)
    states = [s if s is None or not layout else s.transpose(1, 0, 2) for s in (h0, c0)]
    names = {"forward": ["l0"], "reverse": ["l0_reverse"], "bidirectional": ["l0", "l0_reverse"]}[direction]
    weights = {}
    for d, name in enumerate(names):
        half = b[d].shape[0] // 2
        for key, value in (("weight_ih", w[d]), ("weight_hh", r[d]), ("bias_ih", b[d][:half]),
                           ("bias_hh", b[d][half:])):
            weights[f"{key}_{name}"] = _torch_order(op, value)
    if direction == "reverse":  # run our bidirectional layer with a zero forward direction; keep its reverse half
        weights.update({k.replace("_reverse", ""): np.zeros_like(v) for k, v in weights.items()})
        states = [None if s is None else np.concatenate([np.zeros_like(s), s]) for s in states]
    xb = x if layout else x.transpose(1, 0, 2)  # our kernels are batch first
    kw = {"layers": 1, "bidirectional": direction != "forward"}
    if op == "RNN":
        kw["nonlinearity"] = "relu" if acts and acts[0] == "Relu" else "tanh"
    outs = KERNELS[op.lower()](xb, weights, "", *states[:2 if op == "LSTM" else 1], **kw)
    seq, finals = outs[0], outs[1:]
    if direction == "reverse":
        seq, finals = seq[..., hidden:], [f[1:] for f in finals]
    n, t = xb.shape[:2]
    y = seq.reshape(n, t, dirs, hidden)
    y = y if layout else y.transpose(1, 2, 0, 3)
    return (y, *(f.transpose(1, 0, 2) if layout else f for f in finals))


def _check_recurrent(node, seq_lens, p):
    op = node.op_type
    if seq_lens is not None:
        raise Unsupported("sequence_lens: our recurrent ops run every sequence to full length")
    if p is not None:
        raise Unsupported("peepholes (P): torch's LSTM, and ours, have none")
    acts = attr(node, "activations")
    dirs = 2 if attr(node, "direction", "forward") == "bidirectional" else 1
    if acts is not None and not any(acts == list(a) * dirs for a in ACTIVATIONS[op]):
        raise Unsupported(f"activations {acts}: ours are torch's fixed ones")
    if attr(node, "clip") is not None or attr(node, "input_forget", 0):
        raise Unsupported("clip / input_forget: not in torch's recurrent layers, nor ours")
    if op == "GRU" and not attr(node, "linear_before_reset", 0):
        raise Unsupported("linear_before_reset=0 (ONNX's default) applies the reset gate before the "
                          "recurrent matmul; torch's GRU, and ours, after it (linear_before_reset=1)")


def simple(name, **names):
    """A kernel that takes the node's inputs as they are, ONNX attributes renamed to ours."""
    def adapter(node, *xs):
        kw = {ours: attr(node, theirs) for theirs, ours in names.items() if attr(node, theirs) is not None}
        return (KERNELS[name](*xs, **kw),)
    return adapter


def transpose(node, x):
    return (KERNELS["permute"](x, attr(node, "perm", list(range(x.ndim))[::-1])),)


def gelu(node, x):
    if attr(node, "approximate", "none") != "none":
        raise Unsupported("approximate='tanh': our gelu is the exact (erf) one")
    return (KERNELS["gelu"](x),)


ADAPTERS = {
    "Conv": conv, "ConvTranspose": conv_transpose, "MaxPool": max_pool, "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool, "BatchNormalization": batch_norm,
    "LayerNormalization": layer_norm, "Gemm": gemm, "MatMul": simple("matmul"), "Relu": simple("relu"),
    "LeakyRelu": simple("leaky_relu", alpha="slope"), "Gelu": gelu, "Sigmoid": simple("sigmoid"),
    "Tanh": simple("tanh"), "Softmax": softmax("softmax"), "LogSoftmax": softmax("log_softmax"),
    "Flatten": flatten, "Concat": lambda node, *xs: (KERNELS["concat"](*xs, dim=attr(node, "axis")),),
    "Transpose": transpose, "Gather": gather, "RNN": recurrent, "GRU": recurrent, "LSTM": recurrent,
}

# case -> why it is out of scope. Every other case of the ops above runs and must match.
