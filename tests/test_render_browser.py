"""Every example's SVG (as `netc render` draws it) in a real headless Chromium: by the browser's
own text measurements (getBBox), no two runs of text inside one box or cluster label overlap or
touch, and every run lies inside its box. (graphviz measures the text with pango; the browser
draws it with its own fonts: the labels must hold in both.)"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from netc.backends.render import to_bytes

import netc

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.net"))

# Per node or cluster of the SVG: its text runs' boxes; pairs that overlap or lie closer than
# 1 px in both directions; runs that stick out of a node's shape.
MEASURE = """() => {
  const out = {runs: 0, touching: [], outside: [], nodes: 0};
  const gap = (a, b) => Math.max(b.x - (a.x + a.width), a.x - (b.x + b.width), b.y - (a.y + a.height), a.y - (b.y + b.height));
  for (const g of document.querySelectorAll("g.node, g.cluster")) {
    const title = g.querySelector("title").textContent;
    const runs = [...g.querySelectorAll(":scope > text")].map((t) => ({text: t.textContent, box: t.getBBox(),
                                                                       len: t.getComputedTextLength()}));
    out.runs += runs.length;
    if (g.classList.contains("node")) out.nodes += 1;
    for (let i = 0; i < runs.length; i++) {
      if (!(runs[i].len > 0)) out.outside.push([title, runs[i].text, "not drawn"]);
      for (let j = i + 1; j < runs.length; j++) {
        if (gap(runs[i].box, runs[j].box) < 1) out.touching.push([title, runs[i].text, runs[j].text]);
      }
    }
    const shape = g.classList.contains("node") && g.querySelector(":scope > path, :scope > polygon");
    if (shape) {
      const s = shape.getBBox();
      for (const r of runs) {
        const b = r.box;
        if (b.x < s.x - 0.5 || b.x + b.width > s.x + s.width + 0.5) out.outside.push([title, r.text, "sticks out"]);
      }
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def page(browser):
    p = browser.new_page()
    errors = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield p
    assert errors == []
    p.close()


@functools.cache
def program(path: Path) -> netc.Program:
    return netc.compile_file(path)


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_text_runs_in_a_box_never_overlap_or_touch_in_chromium(page, spec):
    prog = program(spec)
    svg = to_bytes(prog.diagram(None), "svg").decode()
    page.set_content(f"<!DOCTYPE html><html><body>{svg[svg.index('<svg'):]}</body></html>")
    m = page.evaluate(MEASURE)
    assert m["nodes"] >= 3 and m["runs"] > m["nodes"]
    assert m["touching"] == []
    assert m["outside"] == []
