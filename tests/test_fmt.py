"""``netc fmt``: the layout is idempotent, keeps the syntax tree and every comment in its place
(on the examples, the standard library, a corpus of messy specs and the fuzzer's specs laid
out at random), and the command's --check, --diff, stdin and in-place modes."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import fuzzing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netc.compiler import format as fmt
from netc.compiler.format import FormatError, format_source, same_tree
from netc.compiler.format_layout import WIDTH, tokens
from netc.compiler.parse import parse
from netc.compiler.source import SourceFile, SpecError

from netc import cli

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "examples").glob("*.net")) + sorted((ROOT / "specs" / "std").glob("*.net"))
MESSY = sorted((ROOT / "tests" / "fixtures" / "fmt").glob("*.net"))


def _read(path: Path) -> str:
    with open(path, newline="") as f:  # keep the fixtures' \r\n
        return f.read()


def _places(text: str) -> tuple[list[str], list[tuple[str, int]]]:
    """The code tokens (a trailing comma before a closing bracket aside: fmt drops it outside
    tuples) and each comment with the number of code tokens before it: equal for two texts when
    every comment sits between the same two tokens."""
    toks = tokens(text)
    code: list[str] = []
    comments: list[tuple[str, int]] = []
    for i, t in enumerate(toks):
        if t.comment:
            comments.append((t.text, len(code)))
            continue
        nxt = next((u for u in toks[i + 1:] if not u.comment), None)
        if t.text == "," and nxt is not None and nxt.text in (")", "]"):
            continue
        code.append(t.text)
    return code, comments


def _ast(text: str):
    tree = parse(SourceFile("<t>", text))
    assert not hasattr(tree, "message"), tree
    return tree


def assert_round_trip(text: str) -> str:
    out = format_source(text)
    assert format_source(out) == out, "not idempotent"
    assert same_tree(_ast(text), _ast(out))
    assert _places(out) == _places(text)
    assert out.endswith("\n") or out == "" == text.strip()
    assert not any(line != line.rstrip() for line in out.split("\n"))
    assert not any(line.startswith("\t") for line in out.split("\n"))
    return out


@pytest.mark.parametrize("path", SHIPPED + MESSY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_round_trip(path):
    text = _read(path)
    out = assert_round_trip(text)
    if path in MESSY:
        assert out != text, f"{path.name} is meant to be messy"
    else:
        assert out == text, f"{path.name} is not formatted: run `netc fmt {path.relative_to(ROOT)}`"
        for line in out.splitlines():  # code within the width; a trailing comment may pass it
            code = line.split("#")[0] if '"' not in line else line
            assert len(code.rstrip()) <= WIDTH, line


def test_shipped_specs_pass_fmt_check(capsys):
    """The CI check: `netc fmt --check` over the examples and the standard library."""
    assert cli.main(["fmt", "--check", str(ROOT / "examples"), str(ROOT / "specs" / "std")]) == 0
    assert f"0 files would be reformatted, {len(SHIPPED)} left unchanged" in capsys.readouterr().err


def test_the_rules():
    messy = ('import"std/vision.net"\nconst  k=3\n\n\n\nconst j = -k*2\nblock B(x:[N,C,H,W],out:int=8){\n\n\n'
             "  y=x->conv2d(out,k,padding=k//2)->relu   # conv\n  z = y[:,0,::2]  # slice\n\n\n\n  return z}\n"
             "model M(x:float[N,3,8,8])->float[N,8,8,4]{defaults weight_init=zeros return x->B(8)}")
    assert format_source(messy) == (
        'import "std/vision.net"\nconst k = 3\n\nconst j = -k * 2\n\n'
        "block B(x: [N, C, H, W], out: int = 8) {\n"
        "    y = x -> conv2d(out, k, padding=k // 2) -> relu  # conv\n"
        "    z = y[:, 0, ::2]                                 # slice\n\n"
        "    return z\n}\n\n"
        "model M(x: float[N, 3, 8, 8]) -> float[N, 8, 8, 4] {\n    defaults weight_init=zeros\n"
        "    return x -> B(8)\n}\n")


def test_long_pipelines_break_at_arrows_and_keep_the_authors_breaks():
    stages = " -> ".join(f"linear({n})" for n in range(100, 130))
    out = format_source(f"model M(x: float[N, 4]) {{\n    return x -> {stages}\n}}\n")
    lines = out.splitlines()[1:-1]
    assert len(lines) > 2 and all(len(line) <= WIDTH for line in lines)
    assert all(line.startswith("        -> ") for line in lines[1:])
    kept = "model M(x: float[N, 4]) {\n    return x\n        -> relu\n        -> relu -> relu\n}\n"
    assert format_source(kept) == kept
    assert format_source(kept.replace("\n        -> relu -> relu", " -> relu ->\n relu")) == (
        "model M(x: float[N, 4]) {\n    return x\n        -> relu -> relu\n        -> relu\n}\n")


def test_long_parameter_lists_fill_to_the_width_aligned_after_the_bracket():
    params = ", ".join(f"p{n}: int = {n}" for n in range(20))
    out = format_source(f"model M(x: float[N, 4], {params}) -> float[N, 4] {{\n    return x\n}}\n")
    head = out.splitlines()[:-2]
    assert len(head) > 1 and all(len(line) <= WIDTH for line in head)
    assert all(line.startswith(" " * len("model M(")) and not line[len("model M("):].startswith(" ")
               for line in head[1:])


def test_syntax_error_is_a_spec_error_with_its_place():
    with pytest.raises(SpecError) as e:
        format_source("model M(x float) {}\n", "bad.net")
    assert str(e.value.diagnostics[0].span) == "bad.net:1:11"
    with pytest.raises(SpecError, match="not a text file"):  # lark would take a NUL in a string
        format_source('import "a\x00.net"\n', "bad.net")


def test_a_layout_that_changes_the_tree_is_refused(monkeypatch, tmp_path, capsys):
    """The safety net: a formatter bug that changes a token or loses a comment is caught, the
    file left as it was, and the place reported."""
    spec = tmp_path / "m.net"
    text = "model M(x: float[N, 4]) {\n    return x -> linear(4) # head\n}\n"
    spec.write_text(text)
    render = fmt._Layout.render
    monkeypatch.setattr(fmt._Layout, "render", lambda self: render(self).replace("linear(4)", "linear(5)"))
    with pytest.raises(FormatError) as e:
        format_source(text, "m.net")
    assert str(e.value.diagnostics[0].span) == "m.net:2:24"  # the argument that changed
    assert cli.main(["fmt", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:2:24: error: netc fmt would change the meaning of this file" in err and "Traceback" not in err
    assert spec.read_text() == text
    monkeypatch.setattr(fmt._Layout, "render", lambda self: render(self).replace(" # head", ""))
    with pytest.raises(FormatError, match="lose or reorder a comment"):
        format_source(text)


def test_check_diff_in_place_and_stdin(tmp_path, capsys, monkeypatch):
    clean, messy, broken = tmp_path / "clean.net", tmp_path / "messy.net", tmp_path / "broken.net"
    clean.write_text("model M(x: float[N, 4]) {\n    return x -> relu\n}\n")
    messy.write_text("model M(x:float[N,4]){return x->relu}")
    broken.write_text("model M(x: float[N, 4]) {\n    return x -> \n}\n")

    assert cli.main(["fmt", "--check", str(clean)]) == 0
    assert cli.main(["fmt", "--check", str(clean), str(messy)]) == 1
    assert f"would reformat {messy}" in capsys.readouterr().err
    assert messy.read_text() == "model M(x:float[N,4]){return x->relu}"

    assert cli.main(["fmt", "--diff", str(messy)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"--- {messy}\n+++ {messy} (formatted)\n")
    assert "-model M(x:float[N,4]){return x->relu}" in out and "+    return x -> relu" in out
    assert cli.main(["fmt", "--check", "--diff", str(messy)]) == 1
    assert messy.read_text() == "model M(x:float[N,4]){return x->relu}"

    assert cli.main(["fmt", str(messy), str(clean)]) == 0
    assert messy.read_text() == clean.read_text()
    assert "1 file reformatted, 1 left unchanged" in capsys.readouterr().err

    assert cli.main(["fmt", "--check", str(broken), str(clean)]) == 1
    err = capsys.readouterr().err
    assert f"{broken}:3:1: error: syntax error" in err and "Traceback" not in err
    assert cli.main(["fmt", "--check", str(tmp_path / "missing.net")]) == 1
    assert "cannot read" in capsys.readouterr().err

    monkeypatch.setattr(sys, "stdin", io.StringIO("model M(x:float[N,4]){return x->relu}"))
    assert cli.main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == clean.read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO("model M(x:float[N,4]){return x->relu}"))
    assert cli.main(["fmt", "--check", "-"]) == 1

    with pytest.raises(SystemExit) as e:
        cli.main(["fmt"])
    assert e.value.code == 2


# -- the fuzzer's specs, laid out at random ---------------------------------------------------

_SPACES = [" ", "  ", "\n", "\t", "\n\n\n", " \n  \t", "  # note\n", "\n    # own line\n", "\n\r\n"]


@st.composite
def relaid_specs(draw) -> str:
    """A generated spec (or a perturbed one) with every run of white space replaced: spaces,
    tabs, blank lines, comments at the end of a line or on their own."""
    text = draw(fuzzing.specs() | fuzzing.perturbed_specs())
    return "".join(draw(st.sampled_from(_SPACES)) if t.isspace() else t for t in fuzzing.tokens(text))


@settings(max_examples=50, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(relaid_specs())
def test_fuzzer_specs_round_trip(text):
    if "\x00" in text or hasattr(parse(SourceFile("<t>", text)), "message"):  # not a spec: fmt refuses it
        with pytest.raises(SpecError):
            format_source(text)
        return
    assert_round_trip(text)
