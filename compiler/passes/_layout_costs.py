"""The cost model ``use_channels_last`` decides with: measured times of convolutions and of the
pools between them in each layout, per shape class, batch and thread count
(``costs/conv_layout.json``, written by ``benchmarks/bench_costs.py`` on the machine it
describes), and what converting a tensor costs.

A model's prediction at batch ``b`` and thread count ``t`` sums, over its convolutions and
the pools that would read a channels-last value, their work (a convolution's MACs, a pool's
window elements: output elements × kernel area) × measured nanoseconds per unit of work in
each layout (the table's column for ``t``); adds, channels-last, the conversions the pass
would insert (elements × measured nanoseconds per element) and the copy torch makes of each
convolution's weight on every call that reads a channels-last input (the module keeps its
weights in the standard layout; weight elements × measured nanoseconds per element, the
same at every batch); and compares the two totals. The table's channels-last times are of
the convolution alone, its weight already channels-last. Between measured batches the
ratio is interpolated in log2(batch).

Both additions to the convolutions came from ResNet-18, where the convolutions alone
predicted 0.99 at batch 8 on one thread and channels-last measured 0.83: its 3×3 stride-2
max pool took 87 of the model's 397 ms in the standard layout and 7 channels-last; and at
batch 1 the copies of its 11.7 M weight elements (1.5 ns each in its profile, and its
convolutions slower with the fresh copies) cost a third of the model's time, so
channels-last lost there (1.08-1.39) while its convolutions alone won. The table's weight
copy is the slowest of five measurements (``bench_costs.weight_copy_cost``: the figure is
bimodal, 0.6 or 2-3 ns), so the error it leaves keeps the standard layout.
Sizes other than the batch that are symbolic take each of :data:`ASSUMED_SIZES` in turn (stated
in the report), and the pass converts only from a batch that wins at all of them.
A thread count the table has no column for takes the nearest column (the smaller of two
equally near): :func:`thread_ranges`.

The table (format :data:`FORMAT`)::

    {"format": 3,
     "shapes": {class: [op, C_in, C_out, kernel, stride, groups, H_in]},   # what was timed
     "threads": {"1": {"clock": "cpu", "measured": "2026-12-05: torch ..., load ...",
                       "classes": {class: {batch: {"nchw": ns/unit, "nhwc": ns/unit}}},
                       "convert_ns_per_element": {batch: ns},
                       "weight_convert_ns_per_element": ns},
                 "2": {...}}}

    >>> classify("conv2d", kernel=4, stride=2, groups=1, channels=256, side=4)
    'conv2d/large/s2/wide/tiny'
    >>> classify("maxpool2d", kernel=3, stride=2, groups=1, channels=64, side=56)
    'maxpool2d/k3/s2/narrow/big'
    >>> thread_ranges([1, 2, 4])
    [(1, 1), (2, 3), (4, None)]
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from netc.specs.catalogue import all_ops, has_trait

from ..dims import subs
from ..source import Diagnostic, SpecError

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "costs", "conv_layout.json")
FORMAT = 3  # the table's layout, ``"format"`` in it: one column per thread count, each with its clock and
#            date (2), and the cost of a weight's copy to channels-last (3)
MEASURE = "python benchmarks/bench_costs.py --threads 1 2 --clock wall"
# The values a symbolic size other than the batch (an image's H, W) takes for the prediction:
# the run-time check sees the batch only, and a smaller image is less work per call (UNet at
# 64×64 and batch 2 ran 1.15× slower channels-last, converted as at 224×224), so a decision
# must hold at both ends of the sizes images commonly have.
ASSUMED_SIZES = (64, 224)
ASSUMED = ASSUMED_SIZES[-1]  # where one size is shown: a symbolic channel count, the per-site lines
MARGIN = 0.99  # channels-last must be predicted at least 1% faster


class CostTableError(SpecError):
    """The layout cost table cannot be read: missing, not JSON, another format, or missing
    a part the pass needs. The CLI prints it as a diagnostic (exit 1)."""

    def __init__(self, path: str, why: str):
        self.path = path
        SpecError.__init__(self, [Diagnostic(
            f"cannot read the layout cost table {path}: {why}", None,
            hint=f"write one with `{MEASURE} --out {path}`"
                 + (" or unset NETC_LAYOUT_COSTS" if os.environ.get("NETC_LAYOUT_COSTS") else ""))])


def table() -> dict:
    """The measurements: ``NETC_LAYOUT_COSTS`` (a file of the same form: the tests' fixed
    tables, another machine's), else the checked-in table."""
    return _read(os.environ.get("NETC_LAYOUT_COSTS") or TABLE)


@cache
def _read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise CostTableError(path, e.strerror or str(e)) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise CostTableError(path, f"not JSON ({e})") from None
    _check(path, data)
    return data


def _check(path: str, data) -> None:
    """That ``data`` is a table of format :data:`FORMAT` with what the pass reads."""
    if not isinstance(data, dict):
        raise CostTableError(path, "not a JSON object")
    if data.get("format") != FORMAT:
        found = "no format field (the one-thread table of before format 2)" if "format" not in data \
            else f"format {data['format']!r}" + (" (without the cost of a weight's copy)" if data["format"] == 2 else "")
        raise CostTableError(path, f"it has {found}; this netc reads format {FORMAT}")
    columns = data.get("threads")
    if not isinstance(columns, dict) or not columns:
        raise CostTableError(path, "no \"threads\" columns")
    for key, col in columns.items():
        if not key.isdigit() or int(key) < 1:
            raise CostTableError(path, f"thread count {key!r} is not a positive integer")
        if not isinstance(col, dict) or not {"classes", "convert_ns_per_element", "weight_convert_ns_per_element",
                                             "measured"} <= set(col):
            raise CostTableError(path, f"thread column {key} needs \"classes\", \"convert_ns_per_element\", "
                                       "\"weight_convert_ns_per_element\" and \"measured\"")
        batches = set(col["convert_ns_per_element"])
        for cls, per_batch in col["classes"].items():
            if not isinstance(per_batch, dict) or set(per_batch) != batches or not all(
                    isinstance(v, dict) and {"nchw", "nhwc"} <= set(v) for v in per_batch.values()):
                raise CostTableError(path, f"thread column {key}, class {cls}: needs nchw and nhwc times at "
                                           f"the batches of convert_ns_per_element ({', '.join(sorted(batches))})")


def columns() -> list[tuple[int, dict]]:
    """The table's thread counts, ascending, each with its column."""
    return sorted((int(k), v) for k, v in table()["threads"].items())


def thread_ranges(counts: list[int]) -> list[tuple[int, int | None]]:
    """For the table's thread counts (ascending), the run-time thread counts each column
    stands for, ``(first, last)`` (last None: and more): the nearest column, the smaller of
    two equally near."""
    starts = [1] + [(a + b) // 2 + 1 for a, b in pairwise(counts)]
    return [(s, e - 1 if e else None) for s, e in zip(starts, starts[1:] + [0])]


def pools() -> list[str]:
    """The pools the model weighs: the ops with the catalogue trait ``layout_costed``."""
    return sorted(name for name, op in all_ops().items() if "layout_costed" in op.traits)


def classify(op: str, kernel: int, stride: int, groups: int, channels: int, side: int) -> str:
    """A convolution's or pool's shape class in the table: op / kernel kind / strided /
    input-channel width / the output's side. A pool's kernel kind is its size (``k2``,
    ``k3``, ``large``), and its width ``narrow`` or ``wide``."""
    size = "tiny" if side <= 8 else "mid" if side <= 32 else "big"
    if has_trait(op, "layout_costed"):
        kind = "large" if kernel > 3 else f"k{max(kernel, 2)}"
        return f"{op}/{kind}/s{1 if stride == 1 else 2}/{'narrow' if channels <= 128 else 'wide'}/{size}"
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
    return f"{op}/{kind}/s{1 if stride == 1 else 2}/{width}/{size}"


def _first(v) -> int:
    return v[0] if isinstance(v, tuple | list) else v


@dataclass(frozen=True)
class Site:
    """One convolution or pool: its node id, shape class, its work (MACs; a pool's window
    elements) as a function of the batch (the other sizes bound), and the weight elements
    torch copies to channels-last on each call (0 for a pool, and for a depthwise or 1×1
    convolution, whose weight is stored alike in either layout)."""

    id: str
    cls: str
    work: object  # Dim in the batch symbol only
    weights: int = 0


def site(node, x, env: dict) -> Site:
    """The site of ``node`` (a convolution or pool reading ``x``), its symbolic sizes other
    than the batch bound by ``env``."""
    a = node.attrs
    channels, side = subs(x.shape[1], env), subs(node.type.shape[2], env)
    kernel = _first(a.kernel)
    stride = kernel if a.stride is None else _first(a.stride)  # a pool's default stride is its kernel
    cls = classify(node.op, kernel, stride, getattr(a, "groups", 1),
                   channels if isinstance(channels, int) else ASSUMED, side if isinstance(side, int) else ASSUMED)
    if has_trait(node.op, "layout_costed"):
        return Site(node.id, cls, subs(node.type.numel() * math.prod(
            a.kernel if isinstance(a.kernel, tuple | list) else (kernel, kernel)), env))
    weight = node.params["weight"].shape  # [out, in/groups, kh, kw] ([in, out, ...] transposed)
    # stored alike in either layout where its channel or kernel dims are 1 (depthwise, 1×1): no copy
    copied = math.prod(weight) if weight[1] > 1 and math.prod(weight[2:]) > 1 else 0
    return Site(node.id, cls, subs(node.macs, env), copied)


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


def predict(sites: list[Site], converted: list, batch_symbol: str | None, b: float,
            column: dict) -> tuple[float, dict[str, float]]:
    """(channels-last time / standard time for the whole model, per-site ratios, each with
    its weight's copy) at batch ``b``, with the table's ``column`` (one thread count)."""
    classes = column["classes"]
    std = cl = 0.0
    per: dict[str, float] = {}
    for s in sites:
        c = classes[s.cls]
        ns = {k: _interp({int(bb): v[k] for bb, v in c.items()}, b) for k in ("nchw", "nhwc")}
        work = at(s.work, batch_symbol, round(b))
        copy = s.weights * column["weight_convert_ns_per_element"]
        std += work * ns["nchw"]
        cl += work * ns["nhwc"] + copy
        per[s.id] = (work * ns["nhwc"] + copy) / (work * ns["nchw"]) if work else math.nan
    convert = _interp({int(bb): v for bb, v in column["convert_ns_per_element"].items()}, b)
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
