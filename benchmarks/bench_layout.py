"""Does ``use_channels_last``'s cost model decide right? Predicted against measured, example
by example, per thread count and batch.

For each convolutional example, at each ``--threads`` count and ``--batches`` size, in one
process: the module emitted at -O2 with every convolution's input forced channels-last (the
pass run on a table in which channels-last always wins) is timed against the module emitted
at -O2 without the pass (``Program.optimized(2, disable=("use_channels_last",))``), with the
same weights: a warm-up call each, then ``--reps`` rounds in which both run once, in
alternating order. Eval mode, ``torch.no_grad()`` (the pass converts only while no gradient
is recorded), ``torch.set_num_threads``. Beside the measured ratio (channels-last /
standard, medians over rounds) stand the cost model's prediction for that thread count and
batch (``use_channels_last.predicted``, from the table in use: the checked-in one, or
``NETC_LAYOUT_COSTS``) and what the -O2 module does there (``converts`` or ``standard``,
from its conversion's ``min_batch`` and ``threads``). A decision is right where it converts
and the measured ratio is below 1, or keeps the standard layout and it is not.

    python benchmarks/bench_layout.py                                   # 1 and 2 threads, batch 1, 2, 16
    python benchmarks/bench_layout.py --reps 20 --threads 1 2 4 --batches 8 --only resnet18
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import torch
from netc.compiler.passes import _layout_costs, use_channels_last
from netc.runtime.inputs import random_inputs
from netc.specs.catalogue import get

import netc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {  # example -> -D values that keep a round short
    "resnet18": {"classes": 100},
    "vgg11": {"classes": 100},
    "dcgan": {},
    "lenet": {},
    "mobilenet_v2": {"classes": 100},
}
SIZES = {"H": 64, "W": 64}  # symbolic image sizes (MobileNetV2)


def always_table(path: str) -> None:
    """A table in which channels-last always wins: the pass converts every model."""
    data = json.loads(json.dumps(_layout_costs.table()))  # a copy: the cached table stays as read
    for col in data["threads"].values():
        col["convert_ns_per_element"] = {b: 0.0 for b in col["convert_ns_per_element"]}
        col["classes"] = {c: {b: {"nchw": 1.0, "nhwc": 0.5} for b in per} for c, per in col["classes"].items()}
    with open(path, "w") as f:
        json.dump(data, f)


def decision(graph, threads: int, batch: int) -> str:
    """What the -O2 module does at ``threads`` threads and batch ``batch``."""
    fmt = [n.attrs for n in graph.nodes() if n.op == "memory_format" and n.attrs.format == "channels_last"]
    if not fmt:
        return "standard"
    start = get("memory_format").min_batch_at(fmt[0], threads)
    return "converts" if start and batch >= start else "standard"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 16])
    ap.add_argument("--only", nargs="+", default=None, choices=sorted(CASES))
    args = ap.parse_args(argv)
    table = os.environ.get("NETC_LAYOUT_COSTS") or _layout_costs.TABLE
    print(f"torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}; "
          f"{args.reps} rounds, eval, no_grad; load average {os.getloadavg()[0]:.1f}; table {os.path.relpath(table)}\n")
    print(f"{'model':<28} {'threads':>7} {'batch':>6} {'predicted':>10} {'measured':>9} {'-O2':>9}  right")
    forced = {}
    with tempfile.TemporaryDirectory() as tmp:
        always = os.path.join(tmp, "always.json")
        always_table(always)
        for name in args.only or CASES:
            spec = os.path.join(ROOT, "examples", f"{name}.net")
            prog = netc.compile_file(spec, defines=CASES[name])
            os.environ["NETC_LAYOUT_COSTS"] = always
            forced[name] = netc.compile_file(spec, defines=CASES[name])  # its own cache of optimised graphs
            forced[name].optimized(2)
            os.environ["NETC_LAYOUT_COSTS"] = table
            for model in (m for m in prog.models if m not in prog.pairs):
                _bench(args, prog, forced[name], model)


def _bench(args, prog, forced, model: str) -> None:
    without = prog.optimized(2, disable=("use_channels_last",))
    torch.manual_seed(0)
    std = without.to_torch(model).eval()
    last = forced.to_torch(model, opt=2).eval()
    last.load_state_dict(std.state_dict())
    before = torch.get_num_threads()
    for th in args.threads:
        torch.set_num_threads(th)
        for b in args.batches:
            xs = [torch.from_numpy(v) for v in random_inputs(prog.graph(model), {"N": b, **SIZES}, seed=0).values()]
            calls = {"last": lambda xs=xs: last(*xs), "std": lambda xs=xs: std(*xs)}
            times = {k: [] for k in calls}
            with torch.no_grad():
                torch.testing.assert_close(calls["last"](), calls["std"](), atol=1e-4, rtol=1e-4)
                for r in range(args.reps):
                    for k in (("last", "std") if r % 2 else ("std", "last")):
                        start = time.perf_counter()
                        calls[k]()
                        times[k].append(time.perf_counter() - start)
            measured = statistics.median(times["last"]) / statistics.median(times["std"])
            p = use_channels_last.predicted(without.graph(model), th, b, SIZES["H"])  # at the timed sizes
            does = decision(prog.optimized(2).graph(model), th, b)
            right = "yes" if (does == "converts") == (measured < 1) else "no"
            shown = f"{p:10.2f}" if p is not None else f"{'-':>10}"
            print(f"{os.path.basename(prog.path) + ' ' + model:<28} {th:7d} {b:6d} {shown} {measured:9.2f} "
                  f"{does:>9}  {right}")
    torch.set_num_threads(before)


if __name__ == "__main__":
    main()
