"""Language-server latency: hover and diagnostics on a spec, over stdio, as an editor sees them.

Starts ``python -m netc lsp`` with pygls's LanguageClient (``tests/lsp_client.py``), opens
the spec (default ``examples/gpt2.net``) and waits for its first diagnostics (the first
check: imports, the parser's tables and the first compilation). Then, for ``--rounds``
rounds, times from the client's side:

* ``hover``: a hover request's round trip, at each of several layers and names of the spec;
* ``diagnostics (ok)``: from sending an edit that keeps the spec valid to receiving the
  diagnostics of that version (the debounce, ``--debounce-ms``, included);
* ``diagnostics (error)``: the same for an edit that breaks the spec (a misspelt op), to
  receiving its error;
* ``check in-process``: for reference, the same texts checked in this process
  (``netc.lsp.analysis.analyse``, what the server runs for a check): the floor of the two above.

Usage: ``python benchmarks/bench_lsp.py [--spec examples/gpt2.net] [--rounds 30] [--debounce-ms 25]``
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lsp_client import Client


def positions(text: str) -> list[tuple[int, int]]:
    """(line, character) of the second character of each pipeline stage of the spec."""
    out = []
    for i, line in enumerate(text.splitlines()):
        if line.lstrip().startswith("#"):
            continue
        for m in re.finditer(r"-> (?!(?:float|int|bool)?\[)", line):  # not a declared result type
            out.append((i, m.end() + 1))
    return out


def summary(name: str, xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
    return (f"{name:22s} n={len(xs):4d}  median {statistics.median(xs) * 1e3:7.2f} ms  "
            f"p90 {p90 * 1e3:7.2f} ms  max {xs[-1] * 1e3:7.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(ROOT / "examples" / "gpt2.net"))
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--debounce-ms", type=float, default=25)
    args = ap.parse_args()
    spec = Path(args.spec).resolve()
    text = spec.read_text()
    t0 = time.perf_counter()
    client = Client(init_options={"debounceMs": args.debounce_ms})
    started = time.perf_counter() - t0
    t0 = time.perf_counter()
    uri = client.open(spec, text)
    first = client.diagnostics(uri, timeout=60)
    first_check = time.perf_counter() - t0
    assert first == [], f"{spec} has errors: {first}"
    where = positions(text)
    bad = text.replace("-> layernorm", "-> layernrom", 1)
    assert bad != text, "the spec has no `-> layernorm` to misspell"
    hovers, ok, err, shown = [], [], [], 0
    for r in range(args.rounds):
        for line, char in where:
            t = time.perf_counter()
            h = client.hover(uri, line, char)
            hovers.append(time.perf_counter() - t)
            shown += h is not None
        edited = text + "\n" * (r % 2 + 1)  # a valid edit: the text changes, the spec does not
        t = time.perf_counter()
        client.change(uri, edited)
        d = client.diagnostics(uri)
        ok.append(time.perf_counter() - t)
        assert d == [], d
        t = time.perf_counter()
        client.change(uri, bad)
        d = client.diagnostics(uri)
        err.append(time.perf_counter() - t)
        assert d and "layernrom" in d[0].message, d
        client.change(uri, text)
        client.diagnostics(uri)
    client.stop()
    from netc.lsp.analysis import analyse

    floor: dict[str, list[float]] = {"ok": [], "error": []}
    for r in range(args.rounds):
        for kind, t in (("ok", text + "\n" * (r % 2 + 1)), ("error", bad)):
            start = time.perf_counter()
            analyse(str(spec), t)
            floor[kind].append(time.perf_counter() - start)
    print(f"spec {spec.relative_to(ROOT) if spec.is_relative_to(ROOT) else spec}, {len(text.splitlines())} lines; "
          f"debounce {args.debounce_ms:g} ms; server start + initialize {started * 1e3:.0f} ms; "
          f"open -> first diagnostics {first_check * 1e3:.0f} ms")
    print(f"hover positions: {len(where)} per round, {shown}/{len(hovers)} answered with content")
    print(summary("hover", hovers))
    print(summary("diagnostics (ok)", ok))
    print(summary("diagnostics (error)", err))
    print(summary("check in-process (ok)", floor["ok"]))
    print(summary("check in-process (error)", floor["error"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
