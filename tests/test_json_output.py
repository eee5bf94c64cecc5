"""The JSON the command line prints: ``summary --json`` (netc.summary/1) and diagnostics
(netc.diagnostics/1), validated against the schemas in docs/schemas with jsonschema; the
structured MAC counts give the numbers a concrete size gives; the locations are the text
diagnostics' locations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from cli_helpers import run_cli
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "docs" / "schemas"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    docs = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.schema.json")}
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs.values())
    jsonschema.Draft202012Validator.check_schema(docs[name])
    return jsonschema.Draft202012Validator(docs[name], registry=registry)


SUMMARY = _validator("summary.schema.json")
DIAGNOSTICS = _validator("diagnostics.schema.json")


def cli(monkeypatch, *args, cwd=ROOT) -> tuple[int, dict, str]:
    code, out, err = run_cli(*args, cwd=cwd, monkeypatch=monkeypatch)
    return code, json.loads(out), err  # (one JSON document, nothing else)


def evaluate(count: dict, sizes: dict[str, int]) -> int:
    """A count object's number at these input sizes, from its terms (nothing evaluated as code)."""
    def dim(name: str) -> int:
        if name in count["atoms"]:
            atom = count["atoms"][name]
            return total(atom["terms"]) // atom["divisor"]
        return sizes[name]

    def total(terms) -> int:
        out = 0
        for t in terms:
            v = t["coeff"]
            for name, power in t["dims"].items():
                v *= dim(name) ** power
            out += v
        return out

    return total(count["terms"])


@pytest.mark.parametrize("spec", ["lenet.net", "unet.net", "gpt2.net", "dcgan.net", "seq2seq_attention.net"])
def test_summary_json_follows_the_schema(monkeypatch, spec):
    code, doc, err = cli(monkeypatch, "summary", "--json", f"examples/{spec}")
    assert code == 0 and err == ""
    SUMMARY.validate(doc)
    assert doc["schema"] == "netc.summary/1"
    for m in doc["models"]:
        assert isinstance(m["totals"]["params"], int)
        counts = [m["totals"]["macs"]] + [r["macs"] for r in m["rows"]]
        assert all((c["value"] is None) == bool(c["atoms"] or any(t["dims"] for t in c["terms"])) for c in counts)


def test_summary_json_counts_are_the_concrete_sizes_numbers(monkeypatch, tmp_path):
    """The same model with symbolic and with concrete input sizes: the terms (floor divisions
    too: a stride-2 convolution of an odd H) evaluated at those sizes are the concrete MACs."""
    body = ("    return x -> conv2d(8, 3, stride=2, padding=1) -> relu -> conv2d(4, 3, stride=2)\n"
            "        -> global_avgpool -> linear(5)\n}\n")
    (tmp_path / "sym.net").write_text("model M(x: float[N, 3, H, 13]) -> float[N, 5] {\n" + body)
    (tmp_path / "fixed.net").write_text("model M(x: float[2, 3, 11, 13]) -> float[2, 5] {\n" + body)
    _, sym, _ = cli(monkeypatch, "summary", "--json", "sym.net", cwd=tmp_path)
    _, fixed, _ = cli(monkeypatch, "summary", "--json", "fixed.net", cwd=tmp_path)
    SUMMARY.validate(sym)
    total = sym["models"][0]["totals"]["macs"]
    assert total["value"] is None and total["atoms"], total  # (H - 1) // 2 appears
    assert all(isinstance(t["coeff"], int) for t in total["terms"])
    want = fixed["models"][0]["totals"]["macs"]
    assert isinstance(want["value"], int) and want["value"] > 0
    assert evaluate(total, {"N": 2, "H": 11}) == want["value"]
    for r_sym, r_fixed in zip(sym["models"][0]["rows"], fixed["models"][0]["rows"]):
        assert evaluate(r_sym["macs"], {"N": 2, "H": 11}) == r_fixed["macs"]["value"], r_sym["name"]


BAD = """\
block Pair2(x: [N, C]) {
    return x -> linear(C)
}

model M(x: float[N, 8], y: float[N, 6]) -> float[N, 8] {
    h = x -> Pair2
    return h + y
}

model K(x: float[N, 4]) -> float[N, 4] {
    return x -> linaer(4)
}
"""


def test_check_json_of_a_spec_with_errors(monkeypatch, tmp_path):
    (tmp_path / "bad.net").write_text(BAD)
    code, doc, err = cli(monkeypatch, "check", "--json", "bad.net", cwd=tmp_path)
    assert code == 1 and err == ""
    DIAGNOSTICS.validate(doc)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["models"] == []
    # the same places and words as the text diagnostics
    _, _, text = run_cli("check", "bad.net", cwd=tmp_path, monkeypatch=monkeypatch)
    heads = re.findall(r"^(bad\.net):(\d+):(\d+): error: (.*)$", text, re.MULTILINE)
    assert [(d["file"], str(d["line"]), str(d["col"]), d["message"]) for d in doc["diagnostics"]] == heads
    assert len(heads) == 2
    shape, name = doc["diagnostics"]
    assert (shape["line"], shape["end_line"]) == (7, 7) and shape["end_col"] > shape["col"]
    assert shape["notes"] and all(n["file"] == "bad.net" and n["line"] for n in shape["notes"])
    assert [n["message"] for n in shape["notes"]] == re.findall(r"^  note: (.*) at bad\.net:\d+:\d+$", text, re.MULTILINE)[
        :len(shape["notes"])]
    assert name["hints"] == ["did you mean `linear`?"] and name["severity"] == "error"


def test_check_json_of_a_good_spec(monkeypatch):
    code, doc, err = cli(monkeypatch, "check", "--json", "examples/dcgan.net")
    assert code == 0 and err == ""
    DIAGNOSTICS.validate(doc)
    assert doc["ok"] is True and doc["diagnostics"] == []
    kinds = {m["name"]: m["kind"] for m in doc["models"]}
    assert "pair" in kinds.values() and "model" in kinds.values()
    model = next(m for m in doc["models"] if m["kind"] == "model")
    assert isinstance(model["params"], int) and model["params"] > 0


def test_other_commands_report_errors_as_json(monkeypatch, tmp_path):
    (tmp_path / "bad.net").write_text(BAD)
    code, doc, _ = cli(monkeypatch, "summary", "--json", "bad.net", cwd=tmp_path)  # errors, not a summary
    assert code == 1 and doc["schema"] == "netc.diagnostics/1" and len(doc["diagnostics"]) == 2
    code, doc, err = cli(monkeypatch, "compile", "--diagnostics-format", "json", "--backend", "torch",
                         "-D", "classes=ten", "examples/resnet18.net")
    DIAGNOSTICS.validate(doc)
    assert code == 2 and doc["exit_code"] == 2 and err == ""
    (d,) = doc["diagnostics"]
    assert d["file"] == "<command line>" and d["line"] == 1 and d["message"].startswith("bad -D value")
