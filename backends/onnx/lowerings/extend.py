"""Ops that grow or crop a tensor by copying: ``pad`` as ``Pad`` (``replicate`` is ONNX's
``edge``; negative widths crop), ``expand``/``broadcast_to`` as ``Expand`` to the output
shape, ``repeat`` as ``Tile`` (after ``Unsqueeze`` for new leading dims). Widths, sizes and
counts that are size expressions (``W2 - 2 * W``) are computed at run time (``sizes.py``)."""

from __future__ import annotations

import numpy as np

from ..table import lowering

MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


def _vector(b, dims, sources) -> str:
    if all(isinstance(d, int) for d in dims):
        return b.ints(list(dims), "pads")
    parts = [b.size(d, sources) for d in dims]
    return parts[0] if len(parts) == 1 else b.add("Concat", parts, axis=0)


@lowering("pad")
def pad(b, node, xs, a):
    rank, w = b.types[xs[0]].rank, a.widths
    k = len(w) // 2
    axes = [rank - 1 - i for i in range(k)]
    pads = _vector(b, list(w[0::2]) + list(w[1::2]), xs[:1])
    value = b.const(np.float32(a.value), hint="pad_value") if a.mode == "constant" else ""
    inputs = [xs[0], pads, value, b.ints(axes, "axes")]
    return [b.add("Pad", inputs, mode=MODES[a.mode])]


@lowering("expand", "broadcast_to")
def expand(b, node, xs, a):
    return [b.add("Expand", [xs[0], b.shape_tensor(node.type.shape, [(xs[0], b.types[xs[0]].shape)])])]


@lowering("repeat")
def repeat(b, node, xs, a):
    x, rank = xs[0], b.types[xs[0]].rank
    new = len(a.times) - rank
    if new:
        x = b.add("Unsqueeze", [x, b.ints(list(range(new)), "axes")])
    return [b.add("Tile", [x, _vector(b, a.times, xs[:1])])]
