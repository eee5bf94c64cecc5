"""How long ``netc check`` takes as a whole process, against importing the libraries it
rests on.

Each round starts, in rotating order, ``python -c "import networkx, lark, pydantic"`` (the
floor: netc's IR, parser and attribute schemas need these) and ``python -m netc check
SPEC``, and times each from fork to exit, in wall time and in CPU time (user + system, which the
machine's other load disturbs least). The figures are medians over rounds; the ratio is
netc / floor (the target: ≤ 1.3). netc pauses Python's cyclic garbage collector while its
modules load (``netc/__init__.py``), which makes the same libraries load faster inside
``netc`` than in the floor, and moves its heap out of the collector's reach as it exits
(``gc.freeze``, ``netc/cli.py``), which spares the shutdown's collections; so a second floor
treats the collector as netc does, and its ratio is printed beside the first (the stricter of
the two). The parser cache (``~/.cache/netc``) is warm after the
first run, as it is for any user after their first; the bytecode is compiled, as pip
compiles it on installing.

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --rounds 40 --spec examples/gpt2.net
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--spec", default="examples/gpt2.net")
    args = ap.parse_args(argv)
    cmds = {
        "import networkx, lark, pydantic": [sys.executable, "-c", "import networkx, lark, pydantic"],
        f"netc check {args.spec}": [sys.executable, "-m", "netc", "check", args.spec],
        "the same, collector as netc has it": [
            sys.executable, "-c", "import gc; gc.disable(); import networkx, lark, pydantic; gc.freeze()"],
    }
    # As installed: bytecode compiled (pip compiles it; a checkout with PYTHONDONTWRITEBYTECODE
    # would recompile every module on every run), here in a folder of its own
    env = dict(os.environ, PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="netc-pyc-"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for cmd in cmds.values():  # warm the page cache, the bytecode and netc's parser cache
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    load = os.getloadavg()[0]
    for r in range(args.rounds):
        order = list(cmds)[r % len(cmds):] + list(cmds)[:r % len(cmds)]  # rotating
        for k in order:
            t, c = time.perf_counter(), _child_cpu()
            subprocess.run(cmds[k], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
            times[k].append(time.perf_counter() - t)
            cpu[k].append(_child_cpu() - c)
    print(f"python {sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}; {args.rounds} rounds\n")
    for clock, data in (("wall", times), ("cpu", cpu)):
        for k, v in data.items():
            print(f"{clock:<5}{k:<40} median {statistics.median(v) * 1000:7.1f} ms   min {min(v) * 1000:7.1f} ms")
        floor, netc, paused = (data[k] for k in cmds)
        for label, base in (("floor", floor), ("floor as netc", paused)):
            ratios = [a / b for a, b in zip(netc, base)]
            print(f"{clock:<5}netc / {label}: {statistics.median(netc) / statistics.median(base):.2f} (ratio of "
                  f"medians), {statistics.median(ratios):.2f} (median of per-round ratios), "
                  f"{min(netc) / min(base):.2f} (ratio of minima)")
        print()


def _child_cpu() -> float:
    """User + system CPU seconds of the finished children so far (a process's CPU time is
    what the machine's other load disturbs least)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


if __name__ == "__main__":
    main()
