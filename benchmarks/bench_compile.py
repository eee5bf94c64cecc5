"""Compile time against model size: does each stage of the compiler grow linearly?

The spec is a chain of ``L`` instances of one residual block, each written out::

    block Res(x: [N, D]) { return relu(x + (x -> linear(D) -> relu -> linear(D))) }
    model Chain(x: float[N, 64]) -> float[N, 64] { return x -> Res -> Res -> ... }

For each ``L`` (``--sizes``, default 100 1000 10000) four stages are timed separately, in one
process, after a warm-up compile of a small chain (so imports and first-use caches are not
charged to the first size):

* ``check``: parse, elaborate and shape-check (``netc.compile_file`` of the spec written to a
  temporary file);
* ``-O2``: the pass pipeline (``Program.optimized(2)``: ``compiler.passes.optimize`` per graph);
* ``torch``: the PyTorch source of the -O2 program (``Program.torch_source``);
* ``numpy``: the NumPy program of the -O2 program (``Program.numpy_source``).

(``--emit-opt 0``: the two emission stages emit the -O0 program instead, so emission is
timed at sizes where -O2 is skipped.)

The table gives each stage's time, its ratio to the previous size's (10 for a linear stage
when the sizes grow tenfold) and the time per node of the -O0 graph. A guard keeps a
super-linear stage from running for minutes: a stage is interrupted (SIGALRM) once it runs
past ``--timeout`` seconds, and is skipped at a larger ``L`` when it timed out at a smaller
one or when even linear growth from the smaller one would pass ``--timeout``.

Each stage starts after ``gc.collect()``. Cyclic garbage collection is part of the cost
(its full collections walk the whole heap, and the heap grows with ``L``): ``--no-gc`` turns
the collector off during the stages, to tell its growth from the code's. ``--clock cpu``
times this process's CPU time instead of wall time: steadier when others share the machine.

Then GPT-2 with 96 layers (``examples/gpt2.net -D layers=96``) at -O2, end to end in this
process (check, -O2, torch source); and ``netc check examples/gpt2.net`` as a whole process
(the median of ``--runs`` runs), with the import cost of ``netc.cli`` from
``python -X importtime``.

    python benchmarks/bench_compile.py
    python benchmarks/bench_compile.py --sizes 100 1000 --timeout 20
    python benchmarks/bench_compile.py --sizes 1000 10000 --emit-opt 0 --clock cpu --runs 0
    python benchmarks/bench_compile.py --sizes 1000 --profile 15     # cProfile each stage
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETC = os.path.join(os.path.dirname(sys.executable), "netc")
STAGES = ("check", "-O2", "torch", "numpy")
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
OPTIONS = {"clock": time.perf_counter, "gc": True}  # set by --clock, --no-gc
GPT2 = os.path.join(ROOT, "examples/gpt2.net")


def chain_spec(layers: int, width: int = 64) -> str:
    """The Res chain: ``layers`` instances of the residual block, one after another."""
    return ("block Res(x: [N, D]) {\n"
            "    return relu(x + (x -> linear(D) -> relu -> linear(D)))\n"
            "}\n\n"
            f"model Chain(x: float[N, {width}]) -> float[N, {width}] {{\n"
            f"    return x -> {' -> '.join(['Res'] * layers)}\n"
            "}\n")


class StageTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise StageTimeout


def timed(fn: Callable, timeout: float, profile: int = 0) -> tuple[float | None, object]:
    """``fn()``'s wall time and result; (None, None) when it ran past ``timeout`` seconds.
    With ``profile``, cProfile's top entries by cumulative time are printed after it."""
    prof = cProfile.Profile() if profile else None
    clock = OPTIONS["clock"]
    gc.collect()  # the garbage of the stage before is not this one's to collect
    if not OPTIONS["gc"]:
        gc.disable()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    start = clock()
    try:
        if prof:
            prof.enable()
        out = fn()
        elapsed = clock() - start
    except StageTimeout:
        return None, None
    finally:
        if prof:
            prof.disable()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        gc.enable()
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(profile)
        print(_short_paths(text.getvalue()))
    return elapsed, out


def _short_paths(text: str) -> str:
    """cProfile's listing with the site-packages and repository prefixes cut."""
    text = text.replace(ROOT + os.sep, "")
    return re.sub(r"\S*site-packages/", "", text)


def bench_chain(sizes: list[int], timeout: float, profile: int, emit_opt: int = 2) -> None:
    import netc
    from netc.program import Program

    with tempfile.TemporaryDirectory() as tmp:
        def compile_chain(layers: int) -> Program:
            path = os.path.join(tmp, f"chain{layers}.net")
            with open(path, "w") as f:
                f.write(chain_spec(layers))
            return netc.compile_file(path)

        warm = compile_chain(4).optimized(2)  # imports, pass registration, first-use caches
        warm.torch_source(), warm.numpy_source()

        src = "-O2" if emit_opt else "check"  # the program the emission stages emit
        prev: dict[str, tuple[int, float | str]] = {}  # stage -> (L, time) at the last size run
        before = None
        if not profile:
            _print_header()
        for layers in sizes:
            row: dict[str, float | str] = {}
            state: dict[str, Program] = {}
            stages = {
                "check": lambda n=layers: compile_chain(n),
                "-O2": lambda s=state: s["check"].optimized(2),
                "torch": lambda s=state: s[src].torch_source(),
                "numpy": lambda s=state: s[src].numpy_source(),
            }
            needs = {"-O2": "check", "torch": src, "numpy": src}
            for stage, fn in stages.items():
                if stage in needs and needs[stage] not in state:
                    row[stage] = f"needs {needs[stage]}"
                    continue
                last = prev.get(stage)
                if last and (isinstance(last[1], str) or last[1] * layers / last[0] > timeout):
                    row[stage] = "skipped"
                    continue
                if profile:
                    print(f"== {stage}, L={layers}: cProfile, top {profile} by cumulative time")
                t, out = timed(fn, timeout, profile)
                if t is None:
                    row[stage] = f"> {timeout:g} s"
                else:
                    row[stage] = t
                    state[stage] = out
                prev[stage] = (layers, row[stage])
            if profile:
                _print_header()
            nodes = len(state["check"].graph("Chain")) if "check" in state else None
            if OPTIONS.get("json"):
                print("ROW " + json.dumps({"layers": layers, "nodes": nodes, "row": row}))
                continue
            _print_row(layers, row, before, nodes)
            before = row


def bench_chain_fresh(sizes: list[int], argv: list[str]) -> None:
    """``bench_chain`` with each size in a new process, as a user compiles one model a
    process: no size runs in a heap the sizes before it grew."""
    _print_header()
    before = None
    for layers in sizes:
        out = subprocess.run([sys.executable, __file__, *argv, "--sizes", str(layers), "--gpt2-layers", "0",
                              "--runs", "0", "--json-rows"], capture_output=True, text=True, check=True).stdout
        got = json.loads(next(line[4:] for line in out.splitlines() if line.startswith("ROW ")))
        _print_row(layers, got["row"], before, got["nodes"])
        before = got["row"]


def _print_header() -> None:
    print(f"\n{'L':>6} {'nodes':>7}  " + "  ".join(f"{s:>26}" for s in STAGES))
    print(f"{'':>6} {'':>7}  " + "  ".join(f"{'time    ratio  us/node':>26}" for _ in STAGES))


def _print_row(layers: int, row: dict, before: dict | None, nodes: int | None) -> None:
    """One size's row (printed as soon as it is done, so a slow size still shows the others)."""
    cells = []
    for stage in STAGES:
        t = row.get(stage)
        if not isinstance(t, float):
            cells.append(f"{t or '':>26}")
            continue
        b = (before or {}).get(stage)
        ratio = f"{t / b:7.1f}" if isinstance(b, float) and b > 0 else f"{'':>7}"
        per = f"{t / nodes * 1e6:9.1f}" if nodes else f"{'':>9}"
        cells.append(f"{t:8.3f} s {ratio}{per}")
    print(f"{layers:>6} {nodes or '':>7}  " + "  ".join(cells))
    sys.stdout.flush()


def bench_gpt2(layers: int, timeout: float, profile: int) -> None:
    import netc

    state = {}
    stages = {
        "check": lambda: netc.compile_file(GPT2, {"layers": layers}),
        "-O2": lambda: state["check"].optimized(2),
        "torch": lambda: state["-O2"].torch_source(),
    }
    times = {}
    for stage, fn in stages.items():
        if profile:
            print(f"== gpt2 layers={layers} {stage}: cProfile, top {profile} by cumulative time")
        t, out = timed(fn, timeout, profile)
        if t is None:
            print(f"\ngpt2.net -D layers={layers}: {stage} ran past {timeout:g} s")
            return
        times[stage], state[stage] = t, out
    nodes = len(state["check"].graph("GPT2"))
    parts = ", ".join(f"{k} {v:.3f} s" for k, v in times.items())
    print(f"\ngpt2.net -D layers={layers} at -O2 ({nodes} nodes): {sum(times.values()):.3f} s end to end ({parts})")


def bench_check_process(runs: int) -> None:
    """``netc check examples/gpt2.net`` as a process, and the import cost of netc.cli."""
    cmd = [NETC, "check", GPT2]
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        walls.append(time.perf_counter() - start)
    imports = []
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import netc.cli"], check=True,
                             capture_output=True, text=True, cwd=ROOT).stderr
        # "import time: self [us] | cumulative | imported package"; the top-level line of netc.cli
        line = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| netc\.cli$", re.MULTILINE)
        cum = [int(m.group(1)) for m in line.finditer(err)]
        imports.append(cum[-1] / 1e6)
    print(f"\nnetc check examples/gpt2.net, whole process: median {statistics.median(walls):.3f} s "
          f"over {runs} runs (min {min(walls):.3f}, max {max(walls):.3f}); "
          f"import netc.cli (-X importtime): median {statistics.median(imports):.3f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="chain lengths L")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds one stage may run; a larger L is skipped for a stage that would pass it")
    ap.add_argument("--emit-opt", type=int, default=2, choices=(0, 2),
                    help="emit the -O2 program (default) or the -O0 one (emission timed without -O2)")
    ap.add_argument("--clock", choices=tuple(CLOCK), default="wall",
                    help="wall time (default), or this process's CPU time (steadier on a shared machine)")
    ap.add_argument("--no-gc", action="store_true",
                    help="the cyclic garbage collector off during each stage (its share grows with the heap)")
    ap.add_argument("--gpt2-layers", type=int, default=96, help="GPT-2 depth for the end-to-end figure (0: none)")
    ap.add_argument("--runs", type=int, default=5, help="runs of `netc check` as a process (0: none)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="cProfile each stage and print its top N entries by cumulative time")
    ap.add_argument("--fresh", action="store_true",
                    help="run each size in a new process (else one process runs them in turn)")
    ap.add_argument("--json-rows", action="store_true", help=argparse.SUPPRESS)  # --fresh's children
    args = ap.parse_args(argv)
    OPTIONS.update(clock=CLOCK[args.clock], gc=not args.no_gc, json=args.json_rows)
    if args.json_rows:
        bench_chain(args.sizes, args.timeout, 0, args.emit_opt)
        return
    print(f"python {sys.version.split()[0]}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{args.clock} clock, garbage collector {'off' if args.no_gc else 'on'} during the stages")
    if args.sizes and args.fresh:
        passed = ["--timeout", str(args.timeout), "--emit-opt", str(args.emit_opt), "--clock", args.clock]
        bench_chain_fresh(sorted(args.sizes), passed + (["--no-gc"] if args.no_gc else []))
    elif args.sizes:
        bench_chain(sorted(args.sizes), args.timeout, args.profile, args.emit_opt)
    if args.gpt2_layers:
        bench_gpt2(args.gpt2_layers, args.timeout, args.profile)
    if args.runs:
        bench_check_process(args.runs)


if __name__ == "__main__":
    main()
