"""Measure what ``use_channels_last`` decides with: the time of one convolution or pool per
shape class, in the standard layout (NCHW) and channels-last (NHWC), at each batch and
thread count, and the time of converting a tensor to channels-last; written to
``compiler/passes/costs/conv_layout.json``, which the pass reads.

A *shape class* is what the pass can tell from a convolution's attributes and types: the op
(conv2d, conv_transpose2d), the kernel kind (``pointwise`` 1×1, ``depthwise``, ``small``
k ≤ 3, ``large`` k ≥ 4), strided or not, the input-channel width (``stem`` < 16,
``narrow`` ≤ 128, ``wide`` > 128) and the output's side (``tiny`` ≤ 8, ``mid`` ≤ 32, ``big``);
for the pools (``maxpool2d``, ``avgpool2d``) the kernel size (``k2``, ``k3``, ``large``),
strided or not, ``narrow`` or ``wide`` and the output's side. Each class is timed on one
representative shape (``SHAPES``) with ``F.conv2d`` / ``F.conv_transpose2d`` /
``F.max_pool2d`` / ``F.avg_pool2d`` on an input already in the layout (and a weight in it:
the copy torch makes of a standard-layout weight on each channels-last call is measured
apart, per weight element, as the model adds it per convolution: ``weight_copy_cost``), eval, ``torch.no_grad()``: the median over ``--reps``
rounds in which both layouts run, in alternating order, each a loop of as many calls as take
about 4 ms (after a warm-up call). The table stores nanoseconds per unit of work for each
layout (a multiply-accumulate; for a pool, an element of a window: output elements × kernel
area), so the pass can weigh a model's convolutions and pools by their size.

Each thread count is a column of the table (format 3, ``_layout_costs.FORMAT``) with the
clock and the date it was measured with: the pass decides per column, and where the
decisions differ the emitted module checks ``torch.get_num_threads()`` at run time.
``--merge`` keeps what of the ``--out`` table this run does not measure: the other thread
columns (one thread on the CPU clock, then two on the wall clock, say), and with ``--only``
the other classes of a column it measures.

    python benchmarks/bench_costs.py                      # 1 and 2 threads, wall clock: writes the table
    python benchmarks/bench_costs.py --threads 1 2 4 --reps 9 --batches 1 2 16 64
    python benchmarks/bench_costs.py --threads 1 --clock cpu --merge   # re-measure one column
    python benchmarks/bench_costs.py --only maxpool2d avgpool2d --merge   # re-measure the pools
    python benchmarks/bench_costs.py --reps 1 --batches 1 --only conv2d/pointwise --out /tmp/t.json   # a try
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from netc.compiler.passes import _layout_costs

CLOCK = [time.perf_counter]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "compiler", "passes", "costs", "conv_layout.json")

# class -> (op, C_in, C_out, kernel, stride, groups, H_in): one representative shape per class
SIDES = {"tiny": 6, "mid": 16, "big": 40}  # output side of each spatial bucket (≤ 8, ≤ 32, larger)
SHAPES = {}
for op in ("conv2d", "conv_transpose2d"):
    for kind in ("pointwise", "depthwise", "small", "large"):
        if op == "conv_transpose2d" and kind in ("pointwise", "depthwise"):
            continue
        for s in (1, 2):
            for width, c in {"stem": 3, "narrow": 64, "wide": 256}.items():
                if kind == "depthwise" and width == "stem":
                    continue
                for side, out in SIDES.items():
                    k = {"pointwise": 1, "depthwise": 3, "small": 3, "large": 7 if width == "stem" else 4}[kind]
                    cin = c * 3 // 2 if kind == "depthwise" else c
                    cout = cin if kind == "depthwise" else 64 if width == "stem" else c * s if op == "conv2d" else c // s
                    groups = cin if kind == "depthwise" else 1
                    h = out * s if op == "conv2d" else max(out // s, 1)
                    SHAPES[f"{op}/{kind}/s{s}/{width}/{side}"] = (op, cin, cout, k, s, groups, h)
POOLS = _layout_costs.pools()
for op in POOLS:
    for kind, k in {"k2": 2, "k3": 3, "large": 5}.items():
        for s in (1, 2):
            for width, c in {"narrow": 64, "wide": 256}.items():
                for side, out in SIDES.items():
                    # padding (k - 1) // 2, as ResNet's 3×3 stride-2 max pool: out = (h + 2p - k) // s + 1
                    SHAPES[f"{op}/{kind}/s{s}/{width}/{side}"] = (op, c, c, k, s, 1, (out - 1) * s + k - 2 * ((k - 1) // 2))


def _run(op, x, w, stride, groups, k):
    if op == "maxpool2d":
        return F.max_pool2d(x, k, stride, (k - 1) // 2)
    if op == "avgpool2d":
        return F.avg_pool2d(x, k, stride, (k - 1) // 2)
    if op == "conv2d":
        return F.conv2d(x, w, None, stride, (k - 1) // 2, 1, groups)
    return F.conv_transpose2d(x, w, None, stride, max(k - stride, 0) // 2)


def measure(cls: str, batch: int, reps: int) -> dict:
    op, c, co, k, s, groups, h = SHAPES[cls]
    x = torch.randn(batch, c, h, h)
    w = torch.randn(co, c // groups, k, k) if op == "conv2d" else torch.randn(c, co, k, k)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    y = _run(op, x, w, s, groups, k)
    macs = y.numel() * k * k if op in POOLS else y.numel() * (c // groups) * k * k \
        if op == "conv2d" else x.numel() * co * k * k  # the work: MACs, a pool's window elements
    w_cl = w.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(_run(op, x_cl, w_cl, s, groups, k), y, atol=1e-3, rtol=1e-3)
    calls = {"nchw": lambda: _run(op, x, w, s, groups, k), "nhwc": lambda: _run(op, x_cl, w_cl, s, groups, k)}
    for f in calls.values():  # warm up (oneDNN makes its primitives on the first call)
        f()
    t0 = CLOCK[0]()
    calls["nchw"]()
    n = max(1, min(200, int(0.004 / max(CLOCK[0]() - t0, 1e-7))))  # calls per sample: ~4 ms
    t = {"nchw": [], "nhwc": []}
    for r in range(reps):
        for key in (("nchw", "nhwc") if r % 2 else ("nhwc", "nchw")):
            t0 = CLOCK[0]()
            for _ in range(n):
                calls[key]()
            t[key].append((CLOCK[0]() - t0) / n)
    return {"ns_per_mac": {key: round(statistics.median(v) * 1e9 / macs, 5) for key, v in t.items()},
            "shape": [op, c, co, k, s, groups, h], "macs": macs}


def convert_cost(batch: int, reps: int) -> float:
    """Nanoseconds per element of converting an NCHW tensor to channels-last."""
    x = torch.randn(batch, 64, 56, 56)
    ts = []
    for _ in range(reps):
        t0 = CLOCK[0]()
        x.contiguous(memory_format=torch.channels_last)
        ts.append(CLOCK[0]() - t0)
    return round(statistics.median(ts) * 1e9 / x.numel(), 5)


def weight_copy_cost(reps: int) -> float:
    """Nanoseconds per weight element that a channels-last convolution with a standard-layout
    weight (torch copies it to channels-last on every call) takes over one with a
    channels-last weight. Timed as a model meets it: 16 convolutions 512 -> 512, 3×3, on a
    7×7 batch-1 input, each with its own weight (151 MB in all, more than the caches hold,
    as a model's weights are: in cache, the copy measured 2.5× cheaper here than it costs in
    ResNet-18).

    The figure is bimodal: 0.6-0.7 ns in some runs, 1.8-3 ns in others, in the same process
    (the copy's 9 MB come from the heap's free lists, or from freshly mapped pages that fault
    in); ResNet-18's profile at batch 1 shows the slow case (copy_ 1.5 ns per element, the
    convolutions slower too). The table takes the slowest of five runs: the error it leaves
    keeps the standard layout where the copy happens to be cheap, and never converts where
    it is dear."""
    ws = [torch.randn(512, 512, 3, 3) for _ in range(16)]
    ws_cl = [w.contiguous(memory_format=torch.channels_last) for w in ws]
    x = torch.randn(1, 512, 7, 7).contiguous(memory_format=torch.channels_last)
    t = {"std": [], "last": []}
    for r in range(reps + 1):  # the first round warms up
        for key in (("std", "last") if r % 2 else ("last", "std")):
            t0 = CLOCK[0]()
            for w in ws if key == "std" else ws_cl:
                F.conv2d(x, w, None, 1, 1)
            if r:
                t[key].append(CLOCK[0]() - t0)
    extra = statistics.median(t["std"]) - statistics.median(t["last"])
    return round(max(extra, 0.0) * 1e9 / sum(w.numel() for w in ws), 5)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="the thread counts to measure (columns)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 8, 16])
    ap.add_argument("--out", default=OUT, help="the table to write (default: the checked-in one)")
    ap.add_argument("--merge", action="store_true", help="keep the --out table's other thread columns")
    ap.add_argument("--only", nargs="+", default=None, metavar="PREFIX",
                    help="measure only the classes starting so (a try: the pass needs every class)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall: elapsed time (on a quiet machine); cpu: the calling thread's CPU time "
                         "(one thread only; what other load on the machine disturbs least)")
    args = ap.parse_args(argv)
    if args.clock == "cpu" and args.threads != [1]:
        ap.error("--clock cpu measures the calling thread: use --threads 1")
    if min(args.threads) < 1 or min(args.batches) < 1 or args.reps < 1:
        ap.error("--threads, --batches and --reps take positive numbers")
    classes = [c for c in SHAPES if not args.only or any(c.startswith(p) for p in args.only)]
    if not classes:
        ap.error(f"--only {' '.join(args.only)} matches no class")
    table = {"format": _layout_costs.FORMAT, "shapes": {k: list(v) for k, v in SHAPES.items()}, "threads": {}}
    if args.merge and os.path.exists(args.out):
        try:
            table["threads"] = _layout_costs._read(os.path.abspath(args.out))["threads"]  # checks its format
        except _layout_costs.CostTableError as e:
            ap.error(f"--merge: {e.diagnostics[0].message}")
    CLOCK[0] = time.thread_time if args.clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    before = torch.get_num_threads()
    with torch.no_grad():
        for th in args.threads:
            torch.set_num_threads(th)
            load = os.getloadavg()[0]
            kept = table["threads"].get(str(th)) if args.merge and args.only else None
            if kept and (set(kept["convert_ns_per_element"]) != {str(b) for b in args.batches}
                         or kept.get("clock") != args.clock):
                ap.error(f"--merge --only: column {th} was measured at batches "
                         f"{' '.join(sorted(kept['convert_ns_per_element'], key=int))} on the {kept.get('clock')} "
                         "clock; measure the same")
            per = table["threads"][str(th)] = {"convert_ns_per_element": {}, "clock": args.clock, "classes": {
                c: v for c, v in (kept or {"classes": {}})["classes"].items() if c not in classes}}
            per["weight_convert_ns_per_element"] = max(weight_copy_cost(3 * args.reps) for _ in range(5))
            for b in args.batches:
                per["convert_ns_per_element"][str(b)] = kept["convert_ns_per_element"][str(b)] if kept \
                    else convert_cost(b, args.reps)
                for cls in classes:
                    per["classes"].setdefault(cls, {})[str(b)] = measure(cls, b, args.reps)["ns_per_mac"]
                print(f"threads {th} batch {b}: done", file=sys.stderr)
            what = f"{', '.join(args.only)} and the weight copy re-measured " if kept else ""
            per["measured"] = (kept["measured"] + "; " if kept else "") + (
                f"{what}{datetime.date.today()}: torch {torch.__version__}, {platform.machine()}, "
                f"{os.cpu_count()} CPUs, {th} thread(s), {args.clock} clock, load average "
                f"{load:.1f} -> {os.getloadavg()[0]:.1f}, median of {args.reps} rounds; by benchmarks/bench_costs.py")
    torch.set_num_threads(before)
    _layout_costs._check(args.out, table)  # what the pass reads
    with open(args.out, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")
    for th in args.threads:
        per = table["threads"][str(th)]
        print(f"\nthreads {th}: channels-last / standard time per class and batch")
        print(f"{'class':<38}" + "".join(f"{b:>8}" for b in args.batches))
        for cls, by_b in per["classes"].items():
            print(f"{cls:<38}" + "".join(f"{by_b[str(b)]['nhwc'] / by_b[str(b)]['nchw']:8.2f}" for b in args.batches))
    if len(classes) < len(SHAPES):
        print(f"\n{args.out}: {len(classes)} of {len(SHAPES)} classes: the pass does not apply to a model with "
              "another class", file=sys.stderr)


if __name__ == "__main__":
    main()
