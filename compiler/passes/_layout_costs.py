"""The cost model ``use_channels_last`` decides with: measured times of convolutions in each
layout, per shape class, batch and thread count (``costs/conv_layout.json``, written by
``benchmarks/bench_costs.py`` on the machine it describes), and what converting a tensor
costs.

A model's prediction at batch ``b`` sums, over its convolutions, MACs × measured
nanoseconds per MAC in each layout, plus the conversions the pass would insert (elements ×
measured nanoseconds per element), and compares the two totals. Between measured batches
the ratio is interpolated in log2(batch). Sizes other than the batch that are symbolic take
:data:`ASSUMED` (stated in the report).

    >>> classify("conv2d", kernel=4, stride=2, groups=1, channels=256, side=4)
    'conv2d/large/s2/wide/tiny'
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cache

from ..dims import subs

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "costs", "conv_layout.json")
ASSUMED = 224  # a symbolic size other than the batch (an image's H, W), for the prediction
MARGIN = 0.99  # channels-last must be predicted at least 1% faster. The ops between the
#                convolutions (activations, pooling, adds) are not in the model; on the
#                examples they gain with the layout more often than they lose (ResNet-18 at
#                batch 8: predicted 0.98, measured 0.85), so a wider margin gives up gains


def table() -> dict:
    """The measurements: ``NETC_LAYOUT_COSTS`` (a file of the same form: the tests' fixed
    tables, another machine's), else the checked-in table."""
    return _read(os.environ.get("NETC_LAYOUT_COSTS") or TABLE)


@cache
def _read(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def classify(op: str, kernel: int, stride: int, groups: int, channels: int, side: int) -> str:
    """A convolution's shape class in the table: op / kernel kind / strided / input-channel
    width / the output's side."""
    if groups > 1 and groups == channels:
        kind = "depthwise"
    elif kernel == 1:
        kind = "pointwise"
    else:
        kind = "small" if kernel <= 3 else "large"
    width = "stem" if channels < 16 else "narrow" if channels <= 128 else "wide"
    if kind == "depthwise" and width == "stem":
        width = "narrow"
    if op == "conv_transpose2d" and kind in ("pointwise", "depthwise"):
        kind = "small"
    size = "tiny" if side <= 8 else "mid" if side <= 32 else "big"
    return f"{op}/{kind}/s{1 if stride == 1 else 2}/{width}/{size}"


def _first(v) -> int:
    return v[0] if isinstance(v, tuple | list) else v


@dataclass(frozen=True)
class Site:
    """One convolution: its node id, shape class, and its MACs and input elements as
    functions of the batch (the other sizes bound)."""

    id: str
    cls: str
    macs: object  # Dim in the batch symbol only
    elements: object  # the input's element count, likewise


def site(node, x, env: dict) -> Site:
    a = node.attrs
    channels, side = x.shape[1], subs(node.type.shape[2], env)
    cls = classify(node.op, _first(a.kernel), _first(a.stride), getattr(a, "groups", 1),
                   channels if isinstance(channels, int) else ASSUMED, side if isinstance(side, int) else ASSUMED)
    return Site(node.id, cls, subs(node.macs, env), subs(x.numel(), env))


def at(d, batch_symbol: str | None, b: int) -> float:
    v = subs(d, {batch_symbol: b}) if batch_symbol else d
    return float(v) if isinstance(v, int) else math.nan


def _interp(per_batch: dict[int, float], b: float) -> float:
    """A measured quantity at batch ``b``, linear in log2(batch) between measured batches
    (the nearest one outside them)."""
    bs = sorted(per_batch)
    if b <= bs[0]:
        return per_batch[bs[0]]
    if b >= bs[-1]:
        return per_batch[bs[-1]]
    hi = next(i for i, x in enumerate(bs) if x >= b)
    lo = hi - 1
    t = (math.log2(b) - math.log2(bs[lo])) / (math.log2(bs[hi]) - math.log2(bs[lo]))
    return per_batch[bs[lo]] * (1 - t) + per_batch[bs[hi]] * t


def threads_entry(threads: int | None = None) -> tuple[str, dict]:
    """The table's entry for the thread count nearest ``threads`` (default: this machine's CPUs)."""
    entries = table()["threads"]
    want = threads or os.cpu_count() or 1
    key = min(entries, key=lambda k: (abs(int(k) - want), int(k)))
    return key, entries[key]


def predict(sites: list[Site], converted: list, batch_symbol: str | None, b: float,
            threads: int | None = None) -> tuple[float, dict[str, float]]:
    """(channels-last time / standard time for the whole model, per-site ratios) at batch ``b``."""
    _, entry = threads_entry(threads)
    classes = entry["classes"]
    std = cl = 0.0
    per: dict[str, float] = {}
    for s in sites:
        c = classes[s.cls]
        ns = {k: _interp({int(bb): v[k] for bb, v in c.items()}, b) for k in ("nchw", "nhwc")}
        macs = at(s.macs, batch_symbol, round(b))
        std += macs * ns["nchw"]
        cl += macs * ns["nhwc"]
        per[s.id] = ns["nhwc"] / ns["nchw"]
    convert = _interp({int(bb): v for bb, v in entry["convert_ns_per_element"].items()}, b)
    cl += sum(at(e, batch_symbol, round(b)) for e in converted) * convert
    return (cl / std if std else math.inf), per


def threshold(ratio_at, batches: list[int]) -> int | None:
    """The smallest batch from which channels-last is predicted to win by ``MARGIN`` at every
    measured batch above it (the crossing interpolated in log2(batch)), or None."""
    bs = sorted(batches)
    wins = [ratio_at(b) <= MARGIN for b in bs]
    if not wins[-1]:
        return None
    k = len(bs) - 1
    while k > 0 and wins[k - 1]:
        k -= 1
    if k == 0:
        return 1
    lo, hi = bs[k - 1], bs[k]
    rlo, rhi = ratio_at(lo), ratio_at(hi)
    t = (rlo - MARGIN) / (rlo - rhi) if rlo != rhi else 1.0
    return max(lo + 1, min(hi, math.ceil(2 ** (math.log2(lo) + t * (math.log2(hi) - math.log2(lo))))))
