"""Pools: ``MaxPool`` / ``AveragePool`` (torch counts padding in the average:
``count_include_pad=1``), ``GlobalAveragePool``, ``adaptive_avgpool2d`` where it is a plain
pool (the input a multiple of the output), ``upsample`` as ``Resize``."""

from __future__ import annotations

from netc.specs.ops._util import pair

from ..table import LoweringError, lowering


def _window(node, a) -> dict:
    if getattr(a, "ceil_mode", False) or not getattr(a, "count_include_pad", True):
        raise LoweringError("ceil_mode=true and count_include_pad=false have no ONNX lowering yet")
    dims = 1 if node.op.endswith("1d") else 2
    k = pair(a.kernel, dims)
    s = k if a.stride is None else pair(a.stride, dims)
    p = pair(a.padding, dims)
    return {"kernel_shape": list(k), "strides": list(s), "pads": list(p) + list(p)}


@lowering("maxpool1d", "maxpool2d")
def maxpool(b, node, xs, a):
    return [b.add("MaxPool", xs, **_window(node, a))]


@lowering("avgpool1d", "avgpool2d")
def avgpool(b, node, xs, a):
    return [b.add("AveragePool", xs, count_include_pad=1, **_window(node, a))]


@lowering("global_avgpool")
def global_avgpool(b, node, xs, a):
    return [b.add("Flatten", [b.add("GlobalAveragePool", xs)], axis=1)]


@lowering("adaptive_avgpool2d")
def adaptive_avgpool2d(b, node, xs, a):
    size = b.types[xs[0]].shape[2:]
    out = pair(a.size)
    if out == (1, 1):
        return [b.add("GlobalAveragePool", xs)]
    if not all(isinstance(d, int) and d % o == 0 for d, o in zip(size, out)):
        raise LoweringError(f"adaptive_avgpool2d({a.size}) of spatial size {list(map(str, size))} has no "
                            "ONNX form: ONNX pools only when the input is a known multiple of the output size")
    k = [d // o for d, o in zip(size, out)]
    if k == [1, 1]:
        return [xs[0]]
    return [b.add("AveragePool", xs, kernel_shape=k, strides=k)]


@lowering("upsample")
def upsample(b, node, xs, a):
    rank = b.types[xs[0]].rank
    scales = b.const([1.0, 1.0] + [float(a.scale)] * (rank - 2), hint="scales")
    if a.mode == "nearest":
        return [b.add("Resize", [xs[0], "", scales], mode="nearest", nearest_mode="floor",
                      coordinate_transformation_mode="asymmetric")]
    return [b.add("Resize", [xs[0], "", scales], mode="linear", coordinate_transformation_mode="pytorch_half_pixel")]
