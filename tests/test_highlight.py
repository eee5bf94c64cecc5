"""The Pygments lexer: found through its entry point by name and by file name, and without an
error token on any example, standard-library file, messy fmt fixture or ```netc block of the
docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pygments import cmdline
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String

from netc.highlight import NetcLexer

ROOT = Path(__file__).resolve().parents[1]
SPECS = (sorted((ROOT / "examples").glob("*.net")) + sorted((ROOT / "specs" / "std").glob("*.net"))
         + sorted((ROOT / "tests" / "fixtures" / "fmt").glob("*.net")))
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
_FENCE = re.compile(r"^([ \t]*)```netc[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)


def netc_blocks() -> list[tuple[str, str]]:
    """(file:line, code) of every ```netc block of the docs and the README."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in _FENCE.finditer(text):
            out.append((f"{doc.name}:{text.count(chr(10), 0, m.start()) + 1}", m.group(2)))
    return out


def errors(text: str) -> list[str]:
    return [value for kind, value in NetcLexer().get_tokens(text) if kind in Error]


def test_pygments_finds_the_lexer_by_name_and_file_name():
    assert isinstance(get_lexer_by_name("netc"), NetcLexer)
    assert isinstance(get_lexer_by_name("net"), NetcLexer)
    assert isinstance(get_lexer_for_filename("examples/lenet.net"), NetcLexer)


def test_pygmentize_highlights_a_spec(tmp_path):
    """pygmentize's own command line (in this process), finding the lexer by its name."""
    out = tmp_path / "lenet.html"
    assert cmdline.main(["pygmentize", "-l", "netc", "-f", "html", "-o", str(out), str(ROOT / "examples" / "lenet.net")]) == 0
    html = out.read_text()
    assert '<span class="k' in html and '<span class="nc">LeNet</span>' in html and '<span class="nf">conv2d</span>' in html


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_error_tokens_in_specs(path):
    assert errors(path.read_text()) == []


def test_no_error_tokens_in_the_docs_netc_blocks():
    blocks = netc_blocks()
    assert len(blocks) >= 14, "the docs' .net examples are fenced as ```netc"
    bad = {where: errs for where, code in blocks if (errs := errors(code))}
    assert not bad


def test_token_kinds():
    text = ('import "std/x.net"\nmodel M(x: float[N, 3], k: int = 1) {  # note\n'
            "    return x[:, 0] -> linear(k * 2, bias=true) -> relu\n}\n")
    kinds = {value: kind for kind, value in NetcLexer().get_tokens(text) if value.strip()}
    assert kinds["import"] in Keyword and kinds['"std/x.net"'] in String
    assert kinds["model"] in Keyword.Declaration and kinds["M"] in Name.Class
    assert kinds["float"] in Keyword.Type and kinds["true"] in Keyword.Constant
    assert kinds["linear"] in Name.Function and kinds["relu"] in Name.Function
    assert kinds["->"] in Operator and kinds["3"] in Number and kinds["# note"] in Comment
    assert errors("model M() { return x ; y → z }") == [";", "→"]
