"""What -O2's fusions buy: the same spec emitted at -O2 and at -O0, timed in one process.

Cases:

* ``attention`` (torch): benchmarks/specs/attention_math.net, multi-head self-attention
  written as math (d_model 64, 8 heads of 8, batch 8, T=512). At -O0 the emitted module
  computes ``softmax(q @ kᵀ / sqrt(d)) @ v`` as written: the [8, 8, 512, 512] scores are
  written and read four times (matmul, division, softmax, matmul); at -O2 ``fuse_attention``
  makes one ``F.scaled_dot_product_attention``, which never keeps them.
* ``resnet18-numpy`` (the NumPy executor, ``Program.to_numpy``): examples/resnet18.net at
  batch 2, 3x224x224. -O2 folds each batch norm into the convolution before it
  (``fold_batchnorm``), applies the ReLU inside the convolution's kernel, in place
  (``fuse_activation``), and runs each block's ``relu(y + skip)`` in one buffer
  (``fuse_elementwise``).

Both contenders get the same weights (``Program.convert_weights`` turns the -O0 state dict
into the -O2 layout) and the script checks that they agree before timing. Then warm-up
calls, and ``--reps`` rounds in which each contender runs once, in an order that rotates
from round to round, so drift in clock speed or cache state falls on both alike. Eval mode,
``torch.no_grad()``, ``--threads`` threads for torch (``torch.set_num_threads``) and for
NumPy's BLAS (set before NumPy loads). The figure is the median over rounds (the quiet ones,
see bench_torch.py); the ratio is -O2 / -O0.

    python benchmarks/bench_opt_attention.py                       # both cases
    python benchmarks/bench_opt_attention.py --cases attention --reps 20
    python benchmarks/bench_opt_attention.py --cases resnet18-numpy --batch 8
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    "attention": "benchmarks/specs/attention_math.net, batch 8, T=512, d_model 64, 8 heads (torch)",
    "resnet18-numpy": "examples/resnet18.net, batch 2, 3x224x224 (NumPy executor)",
}


def attention_calls() -> dict[str, Callable]:
    import torch

    import netc

    prog = netc.compile_file(os.path.join(ROOT, "benchmarks/specs/attention_math.net"))
    torch.manual_seed(0)
    o0 = prog.to_torch("AttentionMath", opt=0).eval()
    o2 = prog.to_torch("AttentionMath", opt=2).eval()
    o2.load_state_dict(prog.convert_weights("AttentionMath", o0.state_dict(), 2))
    assert any(n.op == "attention" for n in prog.optimized(2).graph("AttentionMath").nodes())
    x = torch.randn(8, 512, 64, generator=torch.Generator().manual_seed(0))
    return {"-O2": lambda: o2(x).numpy(), "-O0": lambda: o0(x).numpy()}


def resnet_calls(batch: int = 2) -> dict[str, Callable]:
    import numpy as np
    import torch

    import netc

    prog = netc.compile_file(os.path.join(ROOT, "examples/resnet18.net"))
    torch.manual_seed(0)
    net = prog.to_torch("ResNet18").eval()
    sd = {k: randomized(k, v) for k, v in net.state_dict().items()}
    o0 = prog.to_numpy("ResNet18", weights=sd, opt=0)
    o2 = prog.to_numpy("ResNet18", weights=sd, opt=2)
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    return {"-O2": lambda: o2(x), "-O0": lambda: o0(x)}


def randomized(name: str, v):
    """Batch-norm statistics and affine weights that are not the identity (so folding
    changes the numbers), of a size that keeps activations alive through 8 blocks."""
    if name.endswith("running_var") or ".batchnorm.weight" in name:
        return v.uniform_(0.5, 1.5)
    if name.endswith("running_mean") or ".batchnorm.bias" in name:
        return v.normal_(0.0, 0.1)
    return v


def check_same(calls: dict) -> float:
    import numpy as np

    a, b = (np.asarray(f(), dtype=np.float64) for f in calls.values())
    return float(np.abs(a - b).max() / np.abs(b).max())


def report(times: dict[str, list[float]], quiet: list[bool], quiet_share: float) -> None:
    """Median, quartiles and minimum in ms; -O2 / -O0 as the ratio of medians and as the
    median of per-round ratios."""
    keep = [i for i, q in enumerate(quiet) if q]
    if len(keep) < 5:
        keep = list(range(len(quiet)))
        print(f"  machine busy: {sum(quiet)} quiet rounds of {len(quiet)}; figures over all rounds")
    else:
        print(f"  {len(keep)} quiet rounds of {len(quiet)} (others used <= {quiet_share:.0%} of the CPUs)")
    times = {n: [t[i] for i in keep] for n, t in times.items()}
    print(f"  {'':<6} {'median':>9} {'p25':>8} {'p75':>8} {'min':>8}")
    for n, t in times.items():
        q1, q2, q3 = statistics.quantiles(t, n=4)
        print(f"  {n:<6} {q2 * 1e3:9.1f} {q1 * 1e3:8.1f} {q3 * 1e3:8.1f} {min(t) * 1e3:8.1f}")
    a, b = times["-O2"], times["-O0"]
    paired = statistics.median(x / y for x, y in zip(a, b))
    print(f"  -O2 / -O0: {statistics.median(a) / statistics.median(b):.3f} (medians), {paired:.3f} (per round)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2, help="resnet18-numpy's batch size")
    args = ap.parse_args(argv)
    # BLAS reads its thread count when it loads: the imports wait for the arguments
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import numpy as np
    import torch
    from bench_torch import QUIET, bench

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(f"{args.warmup} warm-up rounds, {args.reps} interleaved rounds, eval, no_grad\n")
    for name in args.cases:
        with torch.no_grad():
            calls = attention_calls() if name == "attention" else resnet_calls(args.batch)
            diff = check_same(calls)
            times, quiet = bench(calls, args.warmup, args.reps)
        what = CASES[name] if name == "attention" else CASES[name].replace("batch 2", f"batch {args.batch}")
        print(f"{name}  ({what}; outputs agree to {diff:.1e} of their scale)")
        report(times, quiet, QUIET)
        print(flush=True)


if __name__ == "__main__":
    main()
