"""The long fuzz run: many more inputs than the CI-sized ``tests/test_fuzz.py``, and it keeps
going after a failure (each distinct failure is recorded once, with the input that caused it).

    .venv/bin/python tests/fuzz_long.py --examples 100000 [--seed 1] [--minutes 60] [--out DIR]

Inputs are split between generated specs (a quarter as generated, the rest perturbed) and
mutated examples; accepted generated specs also go through the backend-agreement check
(every ``--backend-every``-th one). Prints a summary and writes ``DIR/summary.json`` and
one ``DIR/failure-K.net`` per distinct failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzing
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st


class Run:
    def __init__(self, out: Path, backend_every: int, deadline: float):
        self.out = out
        self.backend_every = backend_every
        self.deadline = deadline
        self.counts = {"inputs": 0, "accepted": 0, "rejected": 0, "backend_checked": 0, "models_compared": 0}
        self.failures: dict[str, dict] = {}
        self.slowest = 0.0  # seconds, the slowest backend check
        self.dir = Path(tempfile.mkdtemp(prefix="netc-fuzz-"))

    def failed(self, kind: str, data, err: BaseException) -> None:
        text = str(err)
        shown = data if isinstance(data, str) else data.decode("utf-8", "replace")
        key = kind + ": " + _signature(err)
        if key not in self.failures:
            path = self.out / f"failure-{len(self.failures) + 1}.net"
            path.write_bytes(data.encode() if isinstance(data, str) else data)
            self.failures[key] = {"kind": kind, "first": str(path), "count": 0,
                                  "message": text[-2000:] if isinstance(err, AssertionError)
                                  else "".join(traceback.format_exception(err))[-3000:]}
            print(f"\nFAILURE {key}\n  input: {path}\n{shown[:600]}\n{text[-1000:]}", flush=True)
        self.failures[key]["count"] += 1

    def one(self, kind: str, data, backends: bool) -> None:
        if time.monotonic() > self.deadline:
            return
        self.counts["inputs"] += 1
        path = self.dir / "spec.net"
        try:
            code = fuzzing.check_invariants(path, data)
        except (AssertionError, fuzzing.Hang, Exception) as e:  # noqa: BLE001
            self.failed(kind, data, e)
            return
        self.counts["accepted" if code == 0 else "rejected"] += 1
        if code == 0 and backends and self.counts["accepted"] % self.backend_every == 0:
            try:
                began = time.monotonic()
                with fuzzing.time_limit(60):
                    self.counts["models_compared"] += fuzzing.check_backends(path, levels=(0, 1, 2, 3))
                self.slowest = max(self.slowest, time.monotonic() - began)
                self.counts["backend_checked"] += 1
            except (AssertionError, fuzzing.Hang, Exception) as e:  # noqa: BLE001
                self.failed(kind + "/backends", data, e)
        if self.counts["inputs"] % 1000 == 0:
            print(f"{self.counts} failures={len(self.failures)}", flush=True)


def _signature(err: BaseException) -> str:
    """What identifies a failure: the netc error line, with numbers and names blurred."""
    text = str(err)
    if isinstance(err, AssertionError):
        lines = [ln for ln in text.splitlines() if "internal error" in ln or "Error" in ln]
        head = lines[-1] if lines else text.split("\n", 1)[0]
    else:
        head = f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
    head = re.sub(r"\d+", "#", head)
    return re.sub(r"`[^`]*`", "`_`", head)[:100]


def _slice(run: Run, strategy, kind: str, backends: bool, n: int, at: int) -> None:
    @seed(at)
    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=["generate"])
    @given(strategy)
    def drive(data):
        run.one(kind, data, backends)

    drive()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=100_000, help="total inputs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--minutes", type=float, default=None, help="stop after this long (report the count)")
    p.add_argument("--backend-every", type=int, default=4, help="backend-check every k-th accepted spec")
    p.add_argument("--out", default="fuzz-out")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NETC_CACHE", tempfile.mkdtemp(prefix="netc-cache-"))
    deadline = time.monotonic() + (args.minutes * 60 if args.minutes else 1e12)
    run = Run(out, args.backend_every, deadline)
    start = time.monotonic()
    n_gen = args.examples // 2
    n_mut = args.examples - n_gen
    # hypothesis stops a test once it has seen enough distinct inputs; run in slices, each its
    # own seed, so the count asked for is the count run
    for part, (strategy, kind, total, backends) in enumerate([
            (st.one_of(fuzzing.specs(), fuzzing.perturbed_specs(), fuzzing.perturbed_specs(),
                       fuzzing.perturbed_specs()), "generated", n_gen, True),
            (fuzzing.mutated_examples(), "example", n_mut, False)]):
        done_before = run.counts["inputs"]
        k = 0
        while run.counts["inputs"] - done_before < total and time.monotonic() < deadline:
            left = total - (run.counts["inputs"] - done_before)

            _slice(run, strategy, kind, backends, min(left, 5000), args.seed * 1000 + part * 100_000 + k)
            k += 1
    elapsed = time.monotonic() - start
    import resource

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux: KiB
    summary = {**run.counts, "seconds": round(elapsed, 1), "peak_rss_mib": peak_mib,
               "slowest_backend_check_s": round(run.slowest, 2), "failures": run.failures, "seed": args.seed}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({**run.counts, "seconds": round(elapsed, 1), "peak_rss_mib": peak_mib,
                      "slowest_backend_check_s": round(run.slowest, 2), "distinct_failures": len(run.failures)}))
    for key, f in run.failures.items():
        print(f"  {f['count']:6d} x {key}  ({f['first']})")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
