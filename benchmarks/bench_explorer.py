"""How long the explorer takes to build and to open: ``netc render -o x.html`` in Python
(compile, -O2, the layouts by one ``dot`` run) and, in Debian's headless Chromium, from
``page.goto`` of the file to the page ready (its script has drawn the first picture), for
GPT-2 and ResNet-18. Also the page's size. Median of ``--reps`` opens, each in a fresh page.

    python benchmarks/bench_explorer.py [--reps 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import close, launch

import netc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    pw, browser = launch()
    print(f"| model | build (s) | page (KB) | open to ready, median of {args.reps} (s) |")
    print("|---|---|---|---|")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for stem in ("gpt2", "resnet18"):
                t0 = time.perf_counter()
                page = netc.compile_file(ROOT / "examples" / f"{stem}.net").explore()
                build = time.perf_counter() - t0
                path = Path(tmp) / f"{stem}.html"
                page.save(path)
                opens = []
                for _ in range(args.reps):
                    p = browser.new_page(viewport={"width": 1280, "height": 800})
                    t0 = time.perf_counter()
                    p.goto(path.as_uri())
                    p.wait_for_selector("body[data-ready='1']")
                    opens.append(time.perf_counter() - t0)
                    p.close()
                kb = path.stat().st_size / 1024
                print(f"| {stem} | {build:.2f} | {kb:.0f} | {statistics.median(opens):.3f} |")
    finally:
        close(pw, browser)


if __name__ == "__main__":
    main()
