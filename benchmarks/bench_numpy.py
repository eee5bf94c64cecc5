"""The NumPy reference executor against the emitted PyTorch module (eager), on the CPU.

Time: one process, both sides with the same weights (the torch module's ``state_dict``,
seeded) and the same inputs; their outputs are checked to agree first. Warm-up calls, then
``--reps`` rounds in which each side runs once, the order alternating from round to round,
so drift in clock speed or machine load falls on both alike. Eval mode and
``torch.no_grad()``; ``--threads`` (default 2) on both sides: ``torch.set_num_threads`` and
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, set before numpy is
imported (threadpoolctl's report is printed when it is installed). The figure is the median
over rounds; the ratio is NumPy's median / torch's (the median of the per-round ratios is
printed too: on a busy machine it is the steadier figure).

Memory: each side once more in a fresh subprocess that loads the weights (the NumPy one
from an ``.npz``, without importing torch) and runs one warm-up forward pass; then it frees
what it can (``gc.collect()``, glibc's ``malloc_trim(0)``, so freed heap pages do not hide in
the baseline), reads its RSS, resets the kernel's peak-RSS counter (``/proc/self/clear_refs``),
runs one forward pass and reads the peak (``VmHWM``, the counter ``getrusage().ru_maxrss``
reports). The figure is that peak minus the RSS just before the call: the extra memory the
forward pass needed. The NumPy child also reports
``tracemalloc``'s peak over the call (NumPy reports its array buffers to tracemalloc; torch's
allocator does not, hence RSS for the comparison).

    python benchmarks/bench_numpy.py                      # all cases, 2 threads
    python benchmarks/bench_numpy.py --cases encoder6 --reps 3

Cases: ``resnet18`` (examples/resnet18.net, batch 8, 3x224x224), ``encoder6``
(benchmarks/specs/encoder6.net: 6 post-norm encoder layers, d=512, 8 heads, ff 2048;
batch 8, T=256), ``lstm_lm`` (examples/lstm_lm.net at its default size: vocab 10000, 2x650
LSTM; batch 8, T=64).
"""

from __future__ import annotations

import os
import sys


def _threads(argv: list[str]) -> int:
    """--threads, read before numpy is imported (the BLAS reads its variables at load)."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 2


THREADS = _threads(sys.argv[1:])
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
# OpenBLAS's idle workers spin for 2**28 cycles (about 0.1 s) after each call before they
# sleep: in an interleaved benchmark they would take a core from the torch call that comes
# next (inflating torch's time by up to 60% here, and flattering the ratio). 2**4 cycles:
# they sleep at once, so each side runs on its own two threads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from functools import partial

import numpy as np
from netc.runtime.inputs import random_inputs
from netc.runtime.weights import load_npz, save_npz

import netc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {  # name -> (spec, model, input sizes, description)
    "resnet18": ("examples/resnet18.net", "ResNet18", {"N": 8}, "batch 8, 3x224x224"),
    "encoder6": ("benchmarks/specs/encoder6.net", "Encoder6", {"N": 8, "T": 256},
                 "batch 8, T=256, d=512, 8 heads, ff 2048, 6 layers"),
    "lstm_lm": ("examples/lstm_lm.net", "LSTMLanguageModel", {"N": 8, "T": 64},
                "batch 8, T=64, vocab 10000, 2x650 LSTM"),
}


def _program(case: str):
    spec, model, sizes, _ = CASES[case]
    prog = netc.compile_file(os.path.join(ROOT, spec))
    return prog, model, random_inputs(prog.graph(model), sizes, seed=0)


def _torch_side(prog, model: str):
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    return prog.to_torch(model).eval()


def _call_torch(module, inputs):
    import torch

    with torch.no_grad():
        return module(*(torch.from_numpy(x) for x in inputs.values()))


# -- time ----------------------------------------------------------------------------------------

def bench(case: str, warmup: int, reps: int) -> dict:
    """Median seconds of each side over interleaved rounds, and their agreement."""
    prog, model, inputs = _program(case)
    module = _torch_side(prog, model)
    program = prog.to_numpy(model, weights=module.state_dict())
    calls = {"torch": lambda: _call_torch(module, inputs), "numpy": lambda: program(*inputs.values())}
    want, got = calls["torch"]().numpy(), calls["numpy"]()
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    for _ in range(warmup):
        for f in calls.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for r in range(reps):
        for side in (["torch", "numpy"] if r % 2 == 0 else ["numpy", "torch"]):
            t0 = time.perf_counter()
            calls[side]()
            times[side].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = statistics.median(n / t for n, t in zip(times["numpy"], times["torch"]))
    return {"case": case, "rel_diff": rel, "times": times, "median": med, "ratio": med["numpy"] / med["torch"],
            "paired": paired}


# -- memory (child processes) -------------------------------------------------------------------

def _status(key: str) -> int:
    """A VmRSS / VmHWM figure of this process from /proc, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _release() -> None:
    """Free what is garbage and hand the C heap's free pages back to the OS (glibc's
    malloc_trim), so that the RSS before the call counts live memory only, on both sides."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def child(side: str, case: str, weights: str) -> dict:
    """One forward pass of one side in this (fresh) process: its peak memory over the RSS before."""
    prog, model, inputs = _program(case)
    arrays = load_npz(weights)
    if side == "torch":
        from netc.runtime.weights import numpy_to_state_dict

        module = _torch_side(prog, model)
        module.load_state_dict(numpy_to_state_dict(arrays, prog.graph(model)))
        del arrays
        run = partial(_call_torch, module, inputs)
    else:
        program = prog.to_numpy(model, weights=arrays)
        run = partial(program, *inputs.values())
    run()  # warm: lazy initialisation is not the forward pass's memory
    _release()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS counter (VmHWM, ru_maxrss)
    if side == "numpy":
        import tracemalloc

        tracemalloc.start()
    run()
    out = {"rss_before": before, "peak_rss": _status("VmHWM"), "torch_imported": "torch" in sys.modules}
    if side == "numpy":
        out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out


def memory(case: str) -> dict:
    """Both sides' peak extra memory for one forward pass, each in a fresh subprocess."""
    prog, model, _ = _program(case)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "weights.npz")
        save_npz(_torch_side(prog, model).state_dict(), path)
        out = {}
        for side in ("torch", "numpy"):
            res = subprocess.run([sys.executable, os.path.abspath(__file__), "--threads", str(THREADS),
                                  "--child", side, "--cases", case, "--weights", path],
                                 capture_output=True, text=True, check=True)
            out[side] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


# -- report --------------------------------------------------------------------------------------

def environment() -> list[str]:
    import torch

    lines = [(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
              f"{platform.machine()}, {os.cpu_count()} CPUs; {THREADS} threads each side")]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        lines.append("threadpoolctl not installed; BLAS threads set by OPENBLAS_NUM_THREADS / OMP_NUM_THREADS")
    else:
        for p in threadpool_info():
            lines.append(f"threadpool: {p['internal_api']} {p.get('version')} {p['num_threads']} threads "
                         f"({os.path.basename(p['filepath'])})")
    return lines


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def report(results: list[dict], mem: dict[str, dict]) -> None:
    print("| case | shape | torch eager | NumPy | NumPy / torch | max rel diff | torch peak extra RSS "
          "| NumPy peak extra RSS | NumPy tracemalloc peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        c, m = r["case"], mem.get(r["case"])
        cells = ["", "", ""]
        if m:
            cells = [_mb(m["torch"]["peak_rss"] - m["torch"]["rss_before"]),
                     _mb(m["numpy"]["peak_rss"] - m["numpy"]["rss_before"]), _mb(m["numpy"]["tracemalloc_peak"])]
        print(f"| {c} | {CASES[c][3]} | {r['median']['torch'] * 1e3:,.0f} ms | {r['median']['numpy'] * 1e3:,.0f} ms "
              f"| {r['ratio']:.2f} | {r['rel_diff']:.1e} | {' | '.join(cells)} |")
    if any(m["numpy"]["torch_imported"] for m in mem.values()):
        print("  note: a NumPy memory child imported torch; its RSS includes torch's libraries")
    for r in results:
        spread = {k: f"{min(v) * 1e3:,.0f}-{max(v) * 1e3:,.0f} ms" for k, v in r["times"].items()}
        print(f"  {r['case']}: {len(r['times']['torch'])} rounds, range torch {spread['torch']}, numpy "
              f"{spread['numpy']}; median of the per-round ratios {r['paired']:.2f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--threads", type=int, default=2, help="threads on each side (read before numpy loads)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--no-memory", action="store_true", help="skip the subprocess memory runs")
    p.add_argument("--child", choices=["torch", "numpy"], help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.cases[0], args.weights)))
        return
    print("\n".join(environment()), flush=True)
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    results, mem = [], {}
    for case in args.cases:
        results.append(bench(case, args.warmup, args.reps))
        r = results[-1]
        print(f"{case}: torch {r['median']['torch']:.3f} s, numpy {r['median']['numpy']:.3f} s, "
              f"ratio {r['ratio']:.2f}", flush=True)
        if not args.no_memory:
            mem[case] = memory(case)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    report(results, mem)


if __name__ == "__main__":
    main()
