"""What -O2's ``use_channels_last`` buys the emitted PyTorch modules, example by example.

For each convolutional example the module emitted at -O2 is timed against the same module
emitted at -O2 without the pass (``Program.optimized(2, disable=("use_channels_last",))``),
with the same weights, in one process: warm-up calls, then ``--reps`` rounds in which both
run once, in alternating order. Eval mode, ``torch.no_grad()`` (the pass converts only
while no gradient is recorded), ``torch.set_num_threads(--threads)``. The figure is the
median over rounds; the ratio is with / without.

    python benchmarks/bench_layout.py
    python benchmarks/bench_layout.py --reps 20 --threads 4
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch
from netc.runtime.inputs import random_inputs

import netc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [  # spec, input sizes
    ("examples/resnet18.net", {"N": 8}),
    ("examples/vgg11.net", {"N": 4}),
    ("examples/dcgan.net", {"N": 16}),
    ("examples/lenet.net", {"N": 64}),
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"python {sys.version.split()[0]}; {args.reps} rounds, eval, no_grad\n")
    print(f"{'model':<28} {'with (ms)':>10} {'without (ms)':>13} {'with / without':>15}")
    for spec, sizes in CASES:
        prog = netc.compile_file(os.path.join(ROOT, spec))
        for model in (m for m in prog.models if m not in prog.pairs):
            torch.manual_seed(0)
            without = prog.optimized(2, disable=("use_channels_last",)).to_torch(model).eval()
            with_ = prog.to_torch(model, opt=2).eval()
            with_.load_state_dict(without.state_dict())
            xs = [torch.from_numpy(v) for v in random_inputs(prog.graph(model), sizes, seed=0).values()]
            calls = {"with": lambda m=with_, xs=xs: m(*xs), "without": lambda m=without, xs=xs: m(*xs)}
            times = {k: [] for k in calls}
            with torch.no_grad():
                torch.testing.assert_close(calls["with"](), calls["without"](), atol=1e-4, rtol=1e-4)
                for r in range(args.warmup + args.reps):
                    for k in (("with", "without") if r % 2 else ("without", "with")):
                        start = time.perf_counter()
                        calls[k]()
                        if r >= args.warmup:
                            times[k].append(time.perf_counter() - start)
            a, b = statistics.median(times["with"]), statistics.median(times["without"])
            print(f"{os.path.basename(spec) + ' ' + model:<28} {a * 1e3:10.1f} {b * 1e3:13.1f} {a / b:15.3f}")


if __name__ == "__main__":
    main()
