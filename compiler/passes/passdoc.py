"""Generates the pass table of docs/optimiser.md from the pass registry.

``python -m netc.compiler.passes.passdoc docs/optimiser.md`` rewrites the table between the
file's marker comments; without an argument it prints the table. Each row is a pass's
``register(name, level, purpose)``, in pipeline order. A test fails when the committed table
is stale, so the doc can never drift from the pipeline.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import all_passes

BEGIN = "<!-- pass table: generated from the pass registry by `python -m netc.compiler.passes.passdoc " \
        "docs/optimiser.md`; do not edit -->"
END = "<!-- end of pass table -->"


def render() -> str:
    """The table: pass, level, purpose, one row per pass in pipeline order."""
    rows = ["| pass | level | what it does |", "|---|---|---|"]
    rows += [f"| `{p.name}` | -O{p.level} | {p.purpose.replace('|', chr(92) + '|')} |" for p in all_passes()]
    return "\n".join(rows) + "\n"


def splice(text: str) -> str:
    """``text`` (the doc) with the table between its markers replaced by :func:`render`'s."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the doc has no pass table markers:\n{BEGIN}\n...\n{END}")
    return text[:start + len(BEGIN)] + "\n\n" + render() + "\n" + text[end:]


def main(argv: list[str]) -> int:
    if not argv:
        sys.stdout.write(render())
        return 0
    path = Path(argv[0])
    text = path.read_text()
    new = splice(text)
    if new != text:
        path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
