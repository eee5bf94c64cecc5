"""`netc render`: every example drawn by the real `dot`, the SVG read back and checked
against the IR (boxes, shapes on edges, clusters, folding), byte-stable output, formats,
errors."""

from __future__ import annotations

import functools
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from netc.backends.render import RenderError, diagram, to_bytes

import netc
from netc.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.net"))
FIX = Path(__file__).resolve().parent / "fixtures"
SVG = "{http://www.w3.org/2000/svg}"



@pytest.fixture(autouse=True, scope="module")
def dot_installed():
    """These tests run the real `dot`: without it they fail (`make test` installs graphviz)."""
    assert shutil.which("dot"), "graphviz's `dot` is not on PATH: `make test` installs it (apt-get install graphviz)"


@dataclass
class Item:
    title: str
    classes: list[str]
    text: str  # every text element, joined by " | "


def parse(svg: bytes) -> dict[str, list[Item]]:
    """The nodes, edges and clusters of a graphviz SVG."""
    out: dict[str, list[Item]] = {"node": [], "edge": [], "cluster": []}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        kind, *classes = (g.get("class") or "").split()
        if kind in out:
            texts = ["".join(t.itertext()).strip() for t in g.iter(f"{SVG}text")]
            out[kind].append(Item(g.find(f"{SVG}title").text, classes, " | ".join(texts)))
    return out


@functools.cache
def program(path: Path) -> netc.Program:
    return netc.compile_file(path)


def svg_of(prog, name, depth=None) -> bytes:
    return to_bytes(prog.diagram(name, depth), "svg")


def models():
    return [pytest.param(p, m, id=f"{p.stem}:{m}")
            for p in EXAMPLES for m in program(p).models if m not in program(p).pairs]


def test_there_are_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("spec, model", models())
def test_full_depth_draws_every_node_and_edge_of_the_ir(spec, model):
    g = program(spec).graph(model)
    d = parse(svg_of(program(spec), model, "all"))
    nodes = [n for n in g.nodes() if n.op != "constant"]
    boxes = [x for x in d["node"] if "output" not in x.classes]
    assert sorted(x.title for x in boxes) == sorted(f"{model}/{n.id}" for n in nodes)
    assert len([x for x in d["node"] if "output" in x.classes]) == len(g.outputs)
    edges = {x.title: x.text for x in d["edge"]}
    for n in nodes:
        for ref in n.inputs:
            if g.producer(ref).op != "constant":
                assert edges[f"{model}/{ref[0]}->{model}/{n.id}"] == g.type_of(ref).shape_str()
    assert any(text.startswith("[N, ") for text in edges.values())
    # every block instance is a cluster, titled by its scope path, labelled with its block
    clusters = {x.title: x.text for x in d["cluster"]}
    assert set(clusters) == {f"cluster_{model}/{p}" for p in g.blocks}
    for path, b in g.blocks.items():
        assert path in clusters[f"cluster_{model}/{path}"]
        assert b.name in clusters[f"cluster_{model}/{path}"]


@pytest.mark.parametrize("spec, model", models())
def test_depth_1_folds_top_level_blocks_into_boxes(spec, model):
    g = program(spec).graph(model)
    d = parse(svg_of(program(spec), model, 1))
    assert d["cluster"] == []
    top = [p for p in g.blocks if not any(p.startswith(q + ".") for q in g.blocks)]
    blocks = {x.title: x for x in d["node"] if "block" in x.classes}
    assert set(blocks) == {f"{model}/{p}" for p in top}
    for p in top:
        text = blocks[f"{model}/{p}"].text
        assert g.blocks[p].label in text  # "GPT2Block ×12" for a folded repeated stack
        assert "out [" in text
    drawn = len([x for x in d["node"] if "output" not in x.classes])
    nodes = sum(1 for n in g.nodes() if n.op != "constant")
    assert drawn < nodes if top else drawn == nodes


@pytest.mark.parametrize("spec, model", models())
def test_default_draws_one_copy_of_each_repeated_stack(spec, model):
    g = program(spec).graph(model)
    d = parse(svg_of(program(spec), model))
    groups = [p for p, b in g.blocks.items() if b.kind == "stack"]
    later = [p for p in g.blocks if any(p.startswith(f"{q}.") and not p.startswith(f"{q}.0") for q in groups)]
    hidden = {n.id for n in g.nodes() if any(n.id.startswith(p + ".") for p in later)}
    boxes = {x.title for x in d["node"] if "output" not in x.classes}
    assert boxes == {f"{model}/{n.id}" for n in g.nodes() if n.op != "constant" and n.id not in hidden}
    clusters = {x.title: x.text for x in d["cluster"]}
    for p in groups:
        if not any(p.startswith(q + ".") for q in later):
            n = g.blocks[p].count
            assert f"×{n}" in clusters[f"cluster_{model}/{p}"]
            assert f"one of {n} copies drawn" in clusters[f"cluster_{model}/{p}"]


def test_gpt2_default_is_a_readable_picture():
    prog = program(ROOT / "examples" / "gpt2.net")
    d = parse(svg_of(prog, "GPT2"))
    assert len(d["node"]) < 25
    text = " ".join(x.text for x in d["node"])
    assert "self_attention | 12 heads, causal" in text
    assert "unembed | tied to wte" in text
    assert "embedding | 50257, 768" in text
    folded = parse(svg_of(prog, "GPT2", 1))
    assert any(x.text.startswith("GPT2Block ×12") for x in folded["node"])


def test_labels_show_key_attributes_and_params():
    d = parse(svg_of(program(ROOT / "examples" / "resnet18.net"), "ResNet18", "all"))
    texts = {x.title.split("/", 1)[1]: x.text for x in d["node"]}
    assert texts["conv_bn.conv2d"] == "conv2d | 64, 7×7, s2 | 9,408 params"
    assert texts["maxpool2d"] == "maxpool2d | 3×3, s2"
    assert texts["basic_1.skip.conv2d"] == "conv2d | 128, 1×1, s2 | 8,192 params"
    assert texts["linear"] == "linear | 1000 | 513K params"
    assert texts["relu"] == "relu"
    assert texts["image"] == "image | float[N, 3, 224, 224]"
    assert "input" in next(x for x in d["node"] if x.title == "ResNet18/image").classes


@pytest.mark.parametrize("spec", [p for p in EXAMPLES if program(p).pairs], ids=lambda p: p.stem)
def test_pair_draws_both_models_side_by_side_with_the_handoff(spec):
    prog = program(spec)
    for name, pair in prog.pairs.items():
        (_, first), (_, second) = pair.roles
        d = parse(svg_of(prog, name))
        titles = {x.title for x in d["cluster"]}
        assert {f"cluster_{first}", f"cluster_{second}"} <= titles
        handoffs = [x for x in d["edge"] if x.text.startswith("hand-off")]
        assert len(handoffs) == len(prog.graph(first).outputs)
        for x in handoffs:
            src, dst = x.title.split("->")
            assert src.startswith(f"{first}/return.") and dst.startswith(f"{second}/")


def test_constants_fold_into_their_users(tmp_path):
    spec = tmp_path / "c.net"
    spec.write_text("model M(x: float[N, 4]) -> float[N, 4] {\n"
                    "    return 1 - (x * 0.5 + 1) -> linear(4)\n}\n")
    prog = netc.compile_file(spec)
    d = parse(svg_of(prog, "M", "all"))
    texts = [x.text for x in d["node"]]
    assert not any("constant" in t for t in texts)
    assert {"mul | ×0.5", "add | +1", "sub | 1 − ·"} <= set(texts)
    assert len(d["node"]) == sum(1 for n in prog.graph("M").nodes() if n.op != "constant") + 1


def test_output_is_byte_stable():
    prog = program(ROOT / "examples" / "transformer.net")
    first = svg_of(prog, "Transformer")
    again = svg_of(netc.compile_file(ROOT / "examples" / "transformer.net"), "Transformer")
    assert first == again
    assert prog.diagram().source == program(ROOT / "examples" / "transformer.net").diagram().source
    pdf = to_bytes(prog.diagram("Transformer", 1), "pdf")
    assert b"/CreationDate (D:19700101000000Z)" in pdf or b"/CreationDate" not in pdf


def test_cli_writes_each_format(tmp_path, capsys):
    spec = str(ROOT / "examples" / "lenet.net")
    magic = {"a.svg": b"<?xml", "a.png": b"\x89PNG\r\n\x1a\n", "a.pdf": b"%PDF-", "a.dot": b"digraph"}
    for name, head in magic.items():
        assert main(["render", spec, "-o", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_bytes().startswith(head), name
    assert main(["render", spec, "-o", str(tmp_path / "b.out"), "--format", "png"]) == 0
    assert (tmp_path / "b.out").read_bytes().startswith(magic["a.png"])
    assert main(["render", spec, "-o", str(tmp_path / "c"), "--rankdir", "LR", "--depth", "1"]) == 0
    assert (tmp_path / "c").read_bytes().startswith(b"<?xml")
    assert capsys.readouterr().err == ""


def test_cli_svg_equals_the_python_api(tmp_path):
    spec = ROOT / "examples" / "resnet18.net"
    assert main(["render", str(spec), "-o", str(tmp_path / "r.svg"), "--depth", "2"]) == 0
    assert (tmp_path / "r.svg").read_bytes() == svg_of(program(spec), None, 2)
    path = program(spec).render("ResNet18", str(tmp_path / "p.svg"), depth=2)
    assert Path(path).read_bytes() == (tmp_path / "r.svg").read_bytes()


def test_spec_with_errors_renders_nothing(tmp_path, capsys):
    out = tmp_path / "bad.svg"
    assert main(["render", str(FIX / "lenet_no_flatten.net"), "-o", str(out)]) == 1
    assert not out.exists()
    assert "error: linear needs a 2-d input" in capsys.readouterr().err


def test_optimized_draws_the_fused_graph(tmp_path):
    spec = tmp_path / "cbr.net"
    spec.write_text("model M(x: float[N, 3, 8, 8]) -> float[N, 4, 8, 8] {\n"
                    "    return x -> conv2d(4, 3, padding=1) -> batchnorm -> relu\n}\n")
    plain, fused = tmp_path / "p.dot", tmp_path / "o.dot"
    assert main(["render", str(spec), "-o", str(plain)]) == 0
    assert main(["render", str(spec), "-o", str(fused), "--optimized"]) == 0
    assert "batchnorm" in plain.read_text()
    assert "batchnorm" not in fused.read_text()
    assert "relu" in fused.read_text()


def test_missing_dot_is_a_clear_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "x.svg"
    assert main(["render", str(FIX / "lenet.net"), "-o", str(out)]) == 2
    assert "`dot` program is not installed" in capsys.readouterr().err
    assert not out.exists()
    assert main(["render", str(FIX / "lenet.net"), "-o", str(tmp_path / "x.dot")]) == 0  # source needs no dot
    with pytest.raises(RenderError):
        to_bytes(diagram({"LeNet": program(FIX / "lenet.net").graph("LeNet")}), "svg")
    assert program(FIX / "lenet.net")._repr_svg_() is None


@pytest.mark.parametrize("args, needle", [
    (["--model", "Nope"], "--model Nope: no such model"),
    (["--depth", "0"], "--depth must be at least 1"),
    (["--format", "jpg"], "invalid choice"),
    (["--rankdir", "XY"], "invalid choice"),
])
def test_bad_usage_exits_2(tmp_path, capsys, args, needle):
    out = tmp_path / "u.svg"
    try:
        rc = main(["render", str(FIX / "lenet.net"), "-o", str(out), *args])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    assert rc == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()


def test_notebook_reprs_are_svg():
    prog = program(ROOT / "examples" / "dcgan.net")
    svg = prog._repr_svg_()
    d = parse(svg.encode())
    assert {"cluster_Generator", "cluster_Discriminator"} <= {x.title for x in d["cluster"]}
    assert any(x.text.startswith("hand-off") for x in d["edge"])
    m = prog.model("Generator")
    assert m.graph is prog.graph("Generator")
    assert m.summary().params == prog.summary("Generator").params
    assert m._repr_svg_() == to_bytes(prog.diagram("Generator"), "svg").decode()
    with pytest.raises(KeyError):
        prog.model("DCGAN")


@pytest.mark.parametrize("name", ["x.jpg", "x.jpeg", "x.webp", "x.txt"])
def test_unsupported_suffix_is_an_error_listing_the_formats(tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["render", str(FIX / "lenet.net"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out.suffix} files; the formats are .svg, .png, .pdf, .dot, .gv, .html, .htm" in err
    assert "Traceback" not in err
    assert not out.exists()
    with pytest.raises(RenderError, match="formats are"):
        program(FIX / "lenet.net").render("LeNet", str(out))


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_a_png_past_graphviz_s_limit_is_folded_with_a_note_never_shrunk(tmp_path, capsys):
    """30 applications of a 20-op block: about 50,000 px tall at -O0's full depth. dot would
    scale it down to 32,767 px; netc draws it folded (--depth 1) and says so."""
    spec = tmp_path / "tall.net"
    spec.write_text("block B(x: [N, 4]) {\n    return x" + " -> relu -> tanh" * 10 + "\n}\n"
                    "model Tall(x: float[N, 4]) -> float[N, 4] {\n    return x" + " -> B" * 30 + "\n}\n")
    out = tmp_path / "tall.png"
    assert main(["render", str(spec), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "larger than graphviz's bitmap limit (32,767 px a side)" in err
    assert "drew it with blocks folded instead (--depth 1)" in err
    w, h = png_size(out.read_bytes())
    assert max(w, h) < 32767
    assert main(["render", str(spec), "-o", str(tmp_path / "tall.svg")]) == 0  # SVG has no such limit
    assert capsys.readouterr().err == ""


def test_a_png_too_large_even_folded_is_refused(tmp_path, capsys):
    spec = tmp_path / "chain.net"
    spec.write_text("model Chain(x: float[N, 4]) -> float[N, 4] {\n    return x" + " -> relu" * 600 + "\n}\n")
    out = tmp_path / "chain.png"
    assert main(["render", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "larger than graphviz's bitmap limit" in err and "write SVG or PDF" in err
    assert not out.exists()


def test_html_is_the_explorer_and_says_which_options_it_does_not_use(tmp_path, capsys):
    out = tmp_path / "m.html"
    assert main(["render", str(FIX / "lenet.net"), "-o", str(out), "--depth", "1", "--optimized"]) == 0
    assert "--depth, --optimized not used" in capsys.readouterr().err
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and '"LeNet"' in text
    assert set(re.findall(r"https?://[^\"' ]+", text)) == {"http://www.w3.org/2000/svg"}  # a namespace, not a fetch
    assert "<script src" not in text and "<link" not in text
