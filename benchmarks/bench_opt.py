"""What -O2's layer fusions buy in PyTorch: the emitted module at -O2 and at -O0 against
hand-written PyTorch, in one process.

Case ``resnet18`` (eval, batch 8): examples/resnet18.net against the torchvision-style
ResNet-18 of bench_torch.py. At -O2 ``fold_batchnorm`` folds every batch norm into the
convolution before it (one kernel fewer per convolution, and no BatchNorm2d pass over the
activations), ``fuse_activation`` applies each block's first ReLU on the convolution's
result, and ``fuse_elementwise`` writes each ``relu(y + skip)`` as one expression.

The three contenders get the same weights: the -O0 module's state dict, with batch-norm
statistics and affine terms that are not the identity, copied into the hand-written module
and converted by ``Program.convert_weights`` into the -O2 layout; the script checks that the
outputs agree before timing. Then warm-up calls, and ``--reps`` rounds in which each
contender runs once, in an order that rotates from round to round (bench_torch.bench), so
drift in clock speed or cache state falls on all alike; the figures are over the quiet
rounds (no other process took more than 5% of the CPUs). Eval mode, ``torch.no_grad()``,
``torch.set_num_threads(--threads)``.

    python benchmarks/bench_opt.py                   # resnet18, 2 threads, 20 rounds
    python benchmarks/bench_opt.py --reps 40 --threads 4
    python benchmarks/bench_opt.py --channels-last   # also both modules in torch.channels_last
    python benchmarks/bench_opt.py --clock cpu --threads 1   # on a busy machine
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch

import netc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import QUIET, ResNet18, bench, copy_in_order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"resnet18": "examples/resnet18.net, eval, batch 8, 3x224x224"}
TARGET = 0.85  # -O2 / hand-written (issue 18)


def randomized(name: str, v: torch.Tensor) -> torch.Tensor:
    """Batch-norm statistics and affine terms that are not the identity (so folding changes
    the weights), of a size that keeps the activations alive through 8 blocks."""
    if name.endswith(("running_var", "batchnorm.weight")):
        return v.uniform_(0.5, 1.5)
    if name.endswith(("running_mean", "batchnorm.bias")):
        return v.normal_(0.0, 0.1)
    return v


def resnet18_calls(channels_last: bool = False) -> dict[str, Callable[[], torch.Tensor]]:
    prog = netc.compile_file(os.path.join(ROOT, "examples/resnet18.net"))
    torch.manual_seed(0)
    o0 = prog.to_torch("ResNet18", opt=0).eval()
    sd = {k: randomized(k, v) for k, v in o0.state_dict().items()}
    o0.load_state_dict(sd)
    o2 = prog.to_torch("ResNet18", opt=2).eval()
    o2.load_state_dict(prog.convert_weights("ResNet18", sd, 2))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in o2.modules())
    ref = ResNet18().eval()
    copy_in_order(o0, ref)
    x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    calls = {"-O2": lambda: o2(x), "-O0": lambda: o0(x), "hand-written": lambda: ref(x)}
    if channels_last:  # a layout choice, open to both: the modules and the input in NHWC
        fmt = torch.channels_last
        o2c, refc, xc = copy.deepcopy(o2).to(memory_format=fmt), copy.deepcopy(ref).to(memory_format=fmt), \
            x.contiguous(memory_format=fmt)
        calls |= {"-O2 NHWC": lambda: o2c(xc), "hand NHWC": lambda: refc(xc)}
    return calls


def agreement(calls: dict) -> float:
    """The largest difference from the hand-written output, relative to its scale."""
    outs = {n: f() for n, f in calls.items()}
    ref = outs["hand-written"]
    return max(((o - ref).abs().max() / ref.abs().max()).item() for o in outs.values())


def report(times: dict[str, list[float]], quiet: list[bool]) -> float:
    """Median, quartiles and minimum in ms of each contender, and its ratio to the
    hand-written module (ratio of medians; median of per-round ratios). Returns -O2's
    ratio of medians."""
    keep = [i for i, q in enumerate(quiet) if q]
    if len(keep) < 5:
        keep = list(range(len(quiet)))
        print(f"  machine busy: {sum(quiet)} quiet rounds of {len(quiet)}; figures over all rounds")
    else:
        print(f"  {len(keep)} quiet rounds of {len(quiet)} (others used <= {QUIET:.0%} of the CPUs)")
    times = {n: [t[i] for i in keep] for n, t in times.items()}
    base = times["hand-written"]
    print(f"  {'':<14} {'median':>9} {'p25':>8} {'p75':>8} {'min':>8}   this/hand-written: median  per-round")
    for n, t in times.items():
        q1, q2, q3 = statistics.quantiles(t, n=4)
        paired = statistics.median(a / b for a, b in zip(t, base))
        print(f"  {n:<14} {q2 * 1e3:9.1f} {q1 * 1e3:8.1f} {q3 * 1e3:8.1f} {min(t) * 1e3:8.1f}"
              f"   {' ' * 18}{statistics.median(t) / statistics.median(base):6.3f}  {paired:9.3f}")
    return statistics.median(times["-O2"]) / statistics.median(base)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true", help="also time both modules in channels_last")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the calling thread's CPU time, with --threads 1 (what a busy machine disturbs least)")
    args = ap.parse_args(argv)
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu times the calling thread: use --threads 1")
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(f"{args.warmup} warm-up rounds, {args.reps} interleaved rounds, eval, no_grad\n")
    for name in args.cases:
        with torch.no_grad():
            calls = resnet18_calls(args.channels_last)
            diff = agreement(calls)
            times, quiet = bench(calls, args.warmup, args.reps, clock=clock)
        print(f"{name}  ({CASES[name]}; outputs agree to {diff:.1e} of their scale)")
        ratio = report(times, quiet)
        print(f"  -O2 / hand-written {ratio:.3f}: target <= {TARGET:.2f} {'met' if ratio <= TARGET else 'MISSED'}")
        print(flush=True)


if __name__ == "__main__":
    main()
