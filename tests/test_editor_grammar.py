"""The VS Code extension (editors/vscode/): its TextMate grammar passes the assertions of
tests/*.test.net under npm's vscode-tmgrammar-test (VS Code's own vscode-textmate engine),
scopes every token of every example and standard-library file with no "invalid" scope, and
the extension's manifest ties the .net language to the grammar, the language configuration
and `netc lsp`. node_modules comes from `make node` (a prerequisite of `make test`)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "editors" / "vscode"
TOOL = EXT / "node_modules" / ".bin" / "vscode-tmgrammar-test"
SPECS = sorted((ROOT / "examples").glob("*.net")) + sorted((ROOT / "specs" / "std").glob("*.net"))


@pytest.fixture(scope="module")
def node_modules():
    assert TOOL.exists(), "editors/vscode/node_modules is missing: run `make node` (npm ci --prefix editors/vscode)"


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, cwd=EXT, capture_output=True, text=True, timeout=120)


def test_grammar_assertions(node_modules, tmp_path):
    """The assertions of tests/*.test.net hold; a wrong one, run with them, fails alone."""
    bad = tmp_path / "bad.test.net"
    bad.write_text('# SYNTAX TEST "source.netc" "a wrong assertion"\nmodel M() {}\n# <----- keyword.control.netc\n')
    cases = sorted((EXT / "tests").glob("*.test.net"))
    r = _run(str(TOOL), "-g", "syntaxes/netc.tmLanguage.json", *map(str, cases), str(bad))
    assert r.returncode != 0 and "missing required scopes: keyword.control.netc" in r.stdout
    assert r.stdout.count("missing required scopes") == 1, r.stdout
    assert r.stdout.count("run successfuly") == len(cases) >= 2, r.stdout


def test_every_example_token_is_scoped_and_none_invalid(node_modules, tmp_path):
    """Every token of the examples and std has a scope, none "invalid"; a stray `;` is one."""
    wrong = tmp_path / "wrong.net"
    wrong.write_text("model M(x: float[N, 4]) {\n    return x -> relu;\n}\n")
    r = _run("node", "tests/scopes.js", *map(str, SPECS), str(wrong))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[:-1] == [line for line in lines[:-1] if line.startswith("ok ")] and len(lines) == len(SPECS) + 1
    assert lines[-1] == f"{wrong}:2:21: \";\" scoped source.netc invalid.illegal.character.netc"


def test_manifest():
    pkg = json.loads((EXT / "package.json").read_text())
    (lang,) = pkg["contributes"]["languages"]
    (grammar,) = pkg["contributes"]["grammars"]
    assert lang["id"] == grammar["language"] == "netc" and lang["extensions"] == [".net"]
    assert json.loads((EXT / grammar["path"]).read_text())["scopeName"] == grammar["scopeName"] == "source.netc"
    config = json.loads((EXT / lang["configuration"]).read_text())
    assert config["comments"] == {"lineComment": "#"}
    assert sorted(map(tuple, config["brackets"])) == [("(", ")"), ("[", "]"), ("{", "}")]
    props = pkg["contributes"]["configuration"]["properties"]
    assert props["netc.server.command"]["default"] == "netc" and props["netc.server.args"]["default"] == ["lsp"]
    js = (EXT / pkg["main"]).read_text()
    assert 'require("vscode-languageclient/node")' in js and re.search(r'"server\.args", \["lsp"\]', js)
    lock = json.loads((EXT / "package-lock.json").read_text())
    assert lock["packages"][""]["devDependencies"] == pkg["devDependencies"]
