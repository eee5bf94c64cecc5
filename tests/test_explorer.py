"""The explorer page (`netc render -o x.html`, `Program.explore`) in a real headless Chromium:
GPT-2 and ResNet-18 opened from file, blocks and `× n` stacks opened in place, tooltips read,
search, -O2 and what the passes changed, a pair side by side; no console errors and no request
leaving the page. Screenshots for docs/render.md (NETC_SCREENSHOTS=1 writes them to docs/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser import open_page

import netc
from netc.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """GPT-2 and ResNet-18 as the command line writes them."""
    out = tmp_path_factory.mktemp("explorer")
    paths = {}
    for stem in ("gpt2", "resnet18"):
        paths[stem] = out / f"{stem}.html"
        assert main(["render", str(ROOT / "examples" / f"{stem}.net"), "-o", str(paths[stem])]) == 0
    return paths


def opened(browser, path: Path):
    url = path.as_uri()
    w = open_page(browser, url, allow=url)
    w.page.wait_for_selector("body[data-ready='1']", timeout=5000)
    return w


def box(page, path: str):
    return page.locator(f"g.box[data-path='{path}']")


def click(page, path: str) -> None:
    """Fit the picture to the window, then click the box (a real click needs it on screen)."""
    page.click("#fit")
    box(page, path).click()


def tooltip_of(page, locator) -> str:
    page.click("#fit")
    locator.hover()
    tip = page.locator("#tip")
    tip.wait_for(state="visible", timeout=2000)
    return tip.inner_text()


def source_line(span) -> str:
    return span.source.line(span.line).strip()


def shot(page, name: str, tmp: Path, path: str) -> None:
    """A screenshot of the page zoomed in on box ``path``, pinned, its tooltip showing: to docs/
    with NETC_SCREENSHOTS=1, else to ``tmp``; checked to be a real picture."""
    page.click("#fit")
    b = box(page, path).bounding_box()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    page.mouse.wheel(0, -700)
    page.wait_for_timeout(50)
    box(page, path).click()
    assert "pinned" in box(page, path).get_attribute("class")
    box(page, path).hover()
    page.locator("#tip").wait_for(state="visible")
    target = (DOCS if os.environ.get("NETC_SCREENSHOTS") == "1" else tmp) / name
    page.screenshot(path=str(target))
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000


def assert_clean(w, url: str) -> None:
    assert w.errors == []
    assert w.aborted == []
    assert set(w.requests) == {url}


def test_gpt2_stack_opens_in_place_with_tooltips_search_and_levels(browser, pages, tmp_path):
    prog = netc.compile_file(ROOT / "examples" / "gpt2.net")
    g = prog.graph("GPT2")
    w = opened(browser, pages["gpt2"])
    page = w.page
    stack = box(page, "gpt2_block")
    assert "GPT2Block ×12" in stack.text_content()
    assert box(page, "gpt2_block.0").count() == 0  # starts folded
    click(page, "gpt2_block")
    for i in range(12):
        assert "copy" in box(page, f"gpt2_block.{i}").text_content()
    click(page, "gpt2_block.3")
    node = g.node("gpt2_block.3.layernorm_1")
    text = tooltip_of(page, box(page, node.id))
    assert "layernorm" in text and str(node.type) in text  # float[N, T, 768], symbolic dims
    assert f"{node.span.path}:{node.span.line}:{node.span.column}" in text
    assert source_line(node.span) in text
    assert "1,536" in text  # its parameters
    edge = page.locator("g.edge[data-to='gpt2_block.3.layernorm_1']")
    assert g.type_of(node.inputs[0]).shape_str() in tooltip_of(page, edge)
    edge.locator("path.hit").click()  # pinned in the side panel
    assert "gpt2_block.3.add" in page.locator("#details").inner_text()
    shot(page, "explorer_gpt2.png", tmp_path, node.id)

    page.fill("#search", "layernorm")
    want = sorted(n.id for n in g.nodes() if "layernorm" in n.id or n.op == "layernorm")
    assert len(want) == 25
    items = page.locator("#results li")
    assert items.count() == 25
    assert sorted(t.split()[0] for t in items.all_inner_texts()) == want
    assert page.locator("#count").inner_text() == "25 matches"
    assert page.locator("g.box.hit").count() >= 2  # those of the open copy
    assert page.locator("g.box.hit-inside").count() >= 11  # the folded copies holding the others
    items.nth(24).click()  # the last one: ln_f, shown and pinned
    assert box(page, want[-1]).get_attribute("class").count("pinned") == 1

    assert box(page, "gpt2_block.3.dropout").count() == 1
    page.click("#O2")
    assert box(page, "gpt2_block.3.dropout").count() == 0
    assert box(page, "gpt2_block.3.self_attention").count() == 1
    passes = page.locator("#passes").inner_text()
    assert "remove_dropout (-O2): 25 rewrite(s)" in passes
    assert "25 removed" in passes
    assert_clean(w, pages["gpt2"].as_uri())


def test_resnet_stage_opens_and_o2_shows_the_fused_nodes(browser, pages, tmp_path):
    prog = netc.compile_file(ROOT / "examples" / "resnet18.net")
    w = opened(browser, pages["resnet18"])
    page = w.page
    stage = box(page, "basic")
    assert "Basic ×2" in stage.text_content()
    click(page, "basic")
    click(page, "basic.1")
    g = prog.graph("ResNet18")
    assert box(page, "basic.1.add").count() == 1
    click(page, "basic.1.conv_bn")
    conv = g.node("basic.1.conv_bn.conv2d")
    text = tooltip_of(page, box(page, conv.id))
    assert "conv2d" in text and "float[N, 64, 56, 56]" in text and "36,864" in text
    assert source_line(conv.span) in text
    folded = page.locator("g.cluster[data-key='b:basic.1'] .head")
    page.click("#fit")
    folded.click()  # the header folds it again
    assert box(page, "basic.1.add").count() == 0 and box(page, "basic.1").count() == 1

    page.click("#O2")
    click(page, "basic.1")
    click(page, "basic.1.conv_bn")
    shot(page, "explorer_resnet18.png", tmp_path, "basic.1.relu_1")
    changed = page.locator("g.box.changed")
    assert changed.count() >= 2
    fused = box(page, "basic.1.relu_1")  # add + relu fused into one node
    assert "fused_elementwise" in fused.text_content() or "add+relu" in fused.text_content()
    assert "changed" in fused.get_attribute("class")
    assert "batchnorm" not in page.locator("g.boxes").text_content()
    assert "fold_batchnorm (-O2): 20 rewrite(s)" in page.locator("#passes").inner_text()
    page.click("#O0")
    assert page.locator("g.box.changed").count() == 0
    assert_clean(w, pages["resnet18"].as_uri())


def test_pair_side_by_side_with_the_handoff_and_the_notebook_page(browser, tmp_path):
    prog = netc.compile_file(ROOT / "examples" / "dcgan.net")
    pair = next(iter(prog.pairs))
    page_obj = prog.explore(pair)
    assert page_obj._repr_html_().startswith("<iframe srcdoc=")
    path = Path(page_obj.save(tmp_path / "pair.html"))
    w = opened(browser, path)
    page = w.page
    titles = page.locator("text.model-title").all_text_contents()
    (r1, m1), (r2, m2) = prog.pairs[pair].roles
    assert titles[0].startswith(f"{r1}: {m1}") and titles[1].startswith(f"{r2}: {m2}")
    hand = page.locator("g.edge.hand")
    assert hand.count() == len(prog.graph(m1).outputs)
    x1 = page.locator(f"g.box[data-model='{m1}']").first.bounding_box()["x"]
    x2 = page.locator(f"g.box[data-model='{m2}']").first.bounding_box()["x"]
    assert x2 > x1  # side by side
    page.click("#fit")
    page.click("#zoom-in")
    assert "scale(" in page.locator("#vp").get_attribute("transform")
    assert_clean(w, path.as_uri())


def test_view_serves_the_page_reloads_on_edit_and_shows_diagnostics(browser, tmp_path):
    spec = tmp_path / "m.net"
    spec.write_text("model M(x: float[N, 4]) -> float[N, 8] {\n    return x -> linear(8)\n}\n")
    proc = subprocess.Popen([sys.executable, "-m", "netc", "view", str(spec), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        w = open_page(browser, url, allow=url)
        page = w.page
        page.wait_for_selector("body[data-ready='1']", timeout=5000)
        assert box(page, "linear").count() == 1 and box(page, "relu").count() == 0

        time.sleep(0.05)  # a new modification time, even on a coarse clock
        spec.write_text("model M(x: float[N, 4]) -> float[N, 8] {\n    return x -> linear(8) -> relu\n}\n")
        page.wait_for_selector("g.box[data-path='relu']", timeout=5000)

        spec.write_text("model M(x: float[N, 4]) -> float[N, 8] {\n    return x -> linear(8) -> nosuchop\n}\n")
        page.wait_for_selector("#error:not([hidden])", timeout=5000)
        text = page.locator("#error").inner_text()
        assert re.match(r"m\.net:2:\d+: error: unknown op or block `nosuchop`", text), text
        assert "Traceback" not in text

        spec.write_text("model M(x: float[N, 4]) -> float[N, 8] {\n    return x -> linear(8) -> tanh\n}\n")
        page.wait_for_selector("g.box[data-path='tanh']", timeout=5000)
        assert w.errors == [] and w.aborted == []
        assert {u.split("?")[0] for u in w.requests} == {url, url + "version"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.stderr.read() == ""  # no traceback from the server (a page reloading mid-poll included)


def test_spec_text_cannot_break_out_of_the_page(browser, tmp_path):
    """Source lines go into the page: a comment holding markup and the template's placeholders
    stays text (shown in the tooltip), runs nothing; Program.render(.html) writes the same page."""
    spec = tmp_path / "h.net"
    evil = "# </script><script>alert(1)</script> <!-- {{js}} {{data}} & <b>x</b>"
    spec.write_text(f"model M(x: float[N, 4]) -> float[N, 4] {{\n    return x -> relu  {evil}\n}}\n")
    prog = netc.compile_file(spec)
    path = Path(prog.render("M", str(tmp_path / "h.html")))
    assert path.read_text() == prog.explore("M").html
    w = opened(browser, path)
    dialogs = []
    w.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    text = tooltip_of(w.page, box(w.page, "relu"))
    assert evil in text
    assert dialogs == [] and w.page.locator("script").count() == 2
    assert_clean(w, path.as_uri())
