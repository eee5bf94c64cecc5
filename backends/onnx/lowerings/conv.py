"""Convolutions: ``Conv`` and ``ConvTranspose`` with torch's weight layouts (the same as
ONNX's), symmetric pads, the bias as the op's third input and a fused activation after."""

from __future__ import annotations

from netc.specs.ops._util import pair

from ..table import lowering
from .activation import activate


def _pads(a, dims: int) -> list[int]:
    k, d = pair(a.kernel, dims), pair(getattr(a, "dilation", 1), dims)
    if a.padding == "same":  # torch: total d * (k - 1), the odd one at the end
        total = [dd * (kk - 1) for kk, dd in zip(k, d)]
        return [t // 2 for t in total] + [t - t // 2 for t in total]
    p = pair(a.padding, dims)
    return list(p) + list(p)


@lowering("conv1d", "conv2d")
def conv(b, node, xs, a):
    dims = 1 if node.op == "conv1d" else 2
    inputs = [xs[0], b.param(node, "weight")] + ([b.param(node, "bias")] if a.bias else [])
    y = b.add("Conv", inputs, kernel_shape=list(pair(a.kernel, dims)), strides=list(pair(a.stride, dims)),
              pads=_pads(a, dims), dilations=list(pair(a.dilation, dims)), group=a.groups)
    return [activate(b, node, y, a)]


@lowering("conv_transpose2d")
def conv_transpose2d(b, node, xs, a):
    inputs = [xs[0], b.param(node, "weight")] + ([b.param(node, "bias")] if a.bias else [])
    y = b.add("ConvTranspose", inputs, kernel_shape=list(pair(a.kernel)), strides=list(pair(a.stride)),
              pads=_pads(a, 2), output_padding=list(pair(a.output_padding)))
    return [activate(b, node, y, a)]
