"""Print the CPU profile that ``NETC_CPU_PROFILE=DIR`` wrote (see tests/conftest.py).

``python tests/cpu_report.py DIR [TOP]``: CPU seconds per test file and the TOP (60)
heaviest tests, self (the pytest process, all threads) + children (subprocesses).
"""

import collections
import json
import pathlib
import sys


def main() -> None:
    root = pathlib.Path(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    rows = [json.loads(line) for p in sorted(root.glob("cpu-*.jsonl")) for line in p.open()]
    per_file = collections.Counter()
    for r in rows:
        r["total"] = r["self"] + r["children"]
        per_file[r["test"].split("::")[0]] += r["total"]
    total = sum(per_file.values())
    print(f"{len(rows)} tests, {total:.1f} s CPU in all")
    print("\nper file:")
    for name, sec in per_file.most_common():
        print(f"{sec:8.1f}  {name}")
    print(f"\ntop {top} tests (total self children):")
    for r in sorted(rows, key=lambda r: -r["total"])[:top]:
        print(f"{r['total']:7.2f} {r['self']:7.2f} {r['children']:6.2f}  {r['test']}")


if __name__ == "__main__":
    main()
