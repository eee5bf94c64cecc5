"""Pools: ``MaxPool`` / ``AveragePool`` (``ceil_mode`` and ``count_include_pad`` as torch
has them), ``GlobalAveragePool``, ``adaptive_avgpool2d`` as a plain pool where
the input is a multiple of the output, else as two averaging ``MatMul``s, ``upsample`` as ``Resize``."""

from __future__ import annotations

import numpy as np
from netc.specs.ops._util import pair

from ..table import LoweringError, lowering


def _window(b, node, xs, a) -> dict:
    """kernel_shape, strides, pads and ceil_mode of a windowed pool. torch's ``ceil_mode``
    drops a last window that would start in the right padding; ONNX Runtime does so too, but
    ONNX's shape inference does not. So: where the ceil output is the floor output on every
    dim, ceil_mode is left off; a max pool of known size gets its partial window from extra
    right padding instead (padding is never a max); otherwise ``ceil_mode=1``."""
    dims = 1 if node.op.endswith("1d") else 2
    k = pair(a.kernel, dims)
    s = k if a.stride is None else pair(a.stride, dims)
    p = pair(a.padding, dims)
    out = {"kernel_shape": list(k), "strides": list(s), "pads": list(p) + list(p)}
    if not a.ceil_mode:
        return out
    sizes, want = b.types[xs[0]].shape[2:], node.type.shape[2:]
    floor = [(i + 2 * pp - kk) // ss + 1 for i, kk, ss, pp in zip(sizes, k, s, p)]
    if all(f == w for f, w in zip(floor, want)):
        return out
    if node.op.startswith("max") and all(isinstance(w, int) and isinstance(i, int) for w, i in zip(want, sizes)):
        extra = [(w - 1) * ss + kk - (i + 2 * pp) for w, i, kk, ss, pp in zip(want, sizes, k, s, p)]
        out["pads"] = list(p) + [pp + e for pp, e in zip(p, extra)]
        return out
    return {**out, "ceil_mode": 1}


@lowering("maxpool1d", "maxpool2d")
def maxpool(b, node, xs, a):
    return [b.add("MaxPool", xs, **_window(b, node, xs, a))]


@lowering("avgpool1d", "avgpool2d")
def avgpool(b, node, xs, a):
    return [b.add("AveragePool", xs, count_include_pad=int(a.count_include_pad), **_window(b, node, xs, a))]


@lowering("global_avgpool")
def global_avgpool(b, node, xs, a):
    return [b.add("Flatten", [b.add("GlobalAveragePool", xs)], axis=1)]


@lowering("adaptive_avgpool2d")
def adaptive_avgpool2d(b, node, xs, a):
    size = b.types[xs[0]].shape[2:]
    out = pair(a.size)
    if out == (1, 1):
        return [b.add("GlobalAveragePool", xs)]
    if not all(isinstance(d, int) for d in size):
        raise LoweringError(f"adaptive_avgpool2d({a.size}) of spatial size {list(map(str, size))} has no "
                            "ONNX form: ONNX pools only when the input size is known")
    if all(d % o == 0 for d, o in zip(size, out)):
        k = [d // o for d, o in zip(size, out)]
        return [xs[0] if k == [1, 1] else b.add("AveragePool", xs, kernel_shape=k, strides=k)]
    # torch's windows [floor(i * d / o), ceil((i + 1) * d / o)): a mean over rows, then columns,
    # each a MatMul with a constant averaging matrix
    rows, cols = (_averaging(d, o) for d, o in zip(size, out))
    y = b.add("MatMul", [xs[0], b.const(cols.T, hint="adaptive_cols")])
    return [b.add("MatMul", [b.const(rows, hint="adaptive_rows"), y])]


def _averaging(d: int, o: int) -> np.ndarray:
    m = np.zeros((o, d), np.float32)
    for i in range(o):
        lo, hi = i * d // o, -(-(i + 1) * d // o)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


@lowering("upsample")
def upsample(b, node, xs, a):
    rank = b.types[xs[0]].rank
    scales = b.const([1.0, 1.0] + [float(a.scale)] * (rank - 2), hint="scales")
    if a.mode == "nearest":
        return [b.add("Resize", [xs[0], "", scales], mode="nearest", nearest_mode="floor",
                      coordinate_transformation_mode="asymmetric")]
    return [b.add("Resize", [xs[0], "", scales], mode="linear", coordinate_transformation_mode="pytorch_half_pixel")]
