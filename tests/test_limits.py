"""Every resource limit (compiler/limits.py) is an error that says which limit was hit, at a
place in the spec, with exit 1: never a crash, a hang or a traceback. Golden cases in
tests/diagnostics/limit_*.net show the full messages; these tests hit each limit through the
CLI or the API, and check the imports sandbox (``--allow-imports-outside``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from cli_helpers import first_error, run_cli
from netc.compiler import calls, limits

import netc

MODEL = "model M(x: float[N, 4]) {\n    return x -> linear(2)\n}\n"




# -- --max-params ------------------------------------------------------------------------------

BIG = "model Big(x: float[N, 1000]) -> float[N, 1000] {\n    return x -> linear(1000) -> relu -> linear(1000)\n}\n"


@pytest.mark.parametrize("command", [["check"], ["summary"], ["compile", "--backend", "torch"],
                                     ["compile", "--backend", "numpy"], ["render", "-o", "out.svg"]])
def test_max_params_on_every_spec_command(command, tmp_path, monkeypatch):
    (tmp_path / "big.net").write_text(BIG)
    code, out, err = run_cli(command[0], "big.net", *command[1:], "--max-params", "1000000", cwd=tmp_path,
                         monkeypatch=monkeypatch)
    assert code == 1 and out == ""
    assert first_error(err, "big.net") == ("big.net:1:7: error: model `Big` has 2,002,000 parameters, more than "
                                           "the limit of 1,000,000")
    assert "hint: if that is intended, raise the limit: --max-params 2002000" in err
    assert not (tmp_path / "out.svg").exists()
    code, _, err = run_cli("check", "big.net", "--max-params", "2002000", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0, err


def test_max_params_default_is_ten_billion(tmp_path, monkeypatch):
    assert limits.DEFAULT_MAX_PARAMS == 10_000_000_000
    # 100,000 x 100,001 weights is 10.0001 billion parameters: never allocated, counted on the IR
    (tmp_path / "huge.net").write_text("model Huge(x: float[N, 100000]) {\n    return x -> linear(100001)\n}\n")
    start = time.monotonic()
    code, _, err = run_cli("check", "huge.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and time.monotonic() - start < 5
    assert "model `Huge` has 10,000,200,001 parameters, more than the limit of 10,000,000,000" in err
    code, out, _ = run_cli("summary", "huge.net", "--max-params", "20_000_000_000", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0 and "10,000,200,001" in out


def test_max_params_in_the_api(tmp_path):
    (tmp_path / "big.net").write_text(BIG)
    with pytest.raises(netc.SpecError, match=r"more than the limit of 1,000"):
        netc.compile_file(tmp_path / "big.net", max_params=1000)
    assert netc.compile_file(tmp_path / "big.net").summary("Big").params == 2_002_000


@pytest.mark.parametrize("value", ["lots", "-5", "1e9"])
def test_max_params_needs_a_whole_number(value, tmp_path, monkeypatch):
    (tmp_path / "m.net").write_text(MODEL)
    code, _, err = run_cli("check", "m.net", "--max-params", value, cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 2 and "--max-params needs a whole number" in err


# -- sizes of the input --------------------------------------------------------------------------


def test_file_size(tmp_path, monkeypatch):
    big = "# padding\n" * (limits.MAX_FILE_BYTES // 10 + 1) + MODEL
    (tmp_path / "big.net").write_text(big)
    code, _, err = run_cli("check", "big.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1
    assert first_error(err, "big.net") == f"big.net:1:1: error: big.net is larger than {limits.MAX_FILE_BYTES} bytes"
    (tmp_path / "main.net").write_text('import "big.net"\n' + MODEL)
    code, _, err = run_cli("check", "main.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1
    assert first_error(err, "main.net").startswith("main.net:1:1: error: big.net is larger than")


def test_import_depth(tmp_path, monkeypatch):
    n = limits.MAX_IMPORT_DEPTH + 2
    for i in range(n):
        (tmp_path / f"f{i}.net").write_text(f'import "f{i + 1}.net"\n' if i + 1 < n else "")
    (tmp_path / "f0.net").write_text('import "f1.net"\n' + MODEL)
    code, _, err = run_cli("check", "f0.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1
    deep = limits.MAX_IMPORT_DEPTH
    assert err.splitlines()[0] == f'f{deep}.net:1:1: error: imports nest deeper than {deep} files', err
    (tmp_path / f"f{deep}.net").write_text("")  # one file fewer: fine
    code, _, err = run_cli("check", "f0.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0, err


def test_name_length(tmp_path, monkeypatch):
    ok = "a" * limits.MAX_NAME_LENGTH
    (tmp_path / "n.net").write_text(f"model M(x: float[N, 4]) {{\n    {ok} = x\n    return {ok}\n}}\n")
    assert run_cli("check", "n.net", cwd=tmp_path, monkeypatch=monkeypatch)[0] == 0
    (tmp_path / "n.net").write_text(f"model M(x: float[N, 4]) {{\n    {ok}b = x\n    return x\n}}\n")
    code, _, err = run_cli("check", "n.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and "names have at most 100 (the limit)" in first_error(err, "n.net")


# -- nesting -----------------------------------------------------------------------------------


def test_parentheses_100k_deep_are_fine(tmp_path, monkeypatch):
    """Parentheses only group: the tree stays flat, however many there are."""
    d = 100_000
    (tmp_path / "p.net").write_text("model M(x: float[N, 4]) {\n    return " + "(" * d + "x" + ")" * d + "\n}\n")
    start = time.monotonic()
    code, out, err = run_cli("check", "p.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0 and "ok, 1 model" in out, err
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("form", [
    lambda d: "relu(" * d + "x" + ")" * d,  # calls
    lambda d: "(x + " * d + "x" + ")" * d,  # parenthesised sums
    lambda d: "x" + " + x" * d,  # a long sum (left-nested)
    lambda d: "-" * d + "x",  # negations
    lambda d: "if true then " * d + "x" + " else x" * d,  # conditionals
    lambda d: "(" * d + "x," + ")," * (d - 1) + ")",  # tuples
    lambda d: "x -> linear(" * d + "3" + ")" * d,  # stage arguments
])
def test_deep_expressions_hit_the_limit(form, tmp_path, monkeypatch):
    for d in (limits.MAX_EXPR_DEPTH + 1, 3000):  # 3000: far past Python's stack of 1000 frames
        (tmp_path / "e.net").write_text("model M(x: float[N, 4]) {\n    return " + form(d) + "\n}\n")
        code, _, err = run_cli("check", "e.net", cwd=tmp_path, monkeypatch=monkeypatch)
        assert code == 1
        assert "expression nests deeper than 100 levels (the limit)" in first_error(err, "e.net")


def test_long_pipelines_are_not_nesting(tmp_path, monkeypatch):
    """A pipeline is elaborated as a loop: 5000 stages are fine."""
    (tmp_path / "p.net").write_text("model M(x: float[N, 4]) {\n    return x" + " -> relu" * 5000 + "\n}\n")
    code, _out, err = run_cli("check", "p.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0, err


def _nested_blocks(n: int, depth: int) -> str:
    blocks = "".join(f"block B{i}(x: [N, F]) {{\n    return x -> B{i + 1}\n}}\n" for i in range(n))
    inner = "relu(" * depth + "x" + ")" * depth
    return blocks + f"block B{n}(x: [N, F]) {{\n    return {inner}\n}}\nmodel M(x: float[N, 4]) {{\n    return x -> B0\n}}\n"


def test_block_depth(tmp_path, monkeypatch):
    deepest = limits.MAX_BLOCK_DEPTH - 2  # B0..B62 and the model: 64 levels
    (tmp_path / "b.net").write_text(_nested_blocks(deepest, limits.MAX_EXPR_DEPTH - 1))
    code, _, err = run_cli("check", "b.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0, err  # every limit at once, well inside Python's stack
    (tmp_path / "b.net").write_text(_nested_blocks(deepest + 1, 1))
    code, _, err = run_cli("check", "b.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and f"blocks nest deeper than {limits.MAX_BLOCK_DEPTH} levels" in first_error(err, "b.net")


def test_recursion_backstop_names_the_model(tmp_path, monkeypatch):
    """Each limit alone stays well inside Python's stack; deep expressions at every level of
    deeply nested blocks together do not. That is an error at the model, not a traceback."""
    blocks = "".join(f"block B{i}(x: [N, F]) {{\n    return {'relu(' * 90}x -> B{i + 1}{')' * 90}\n}}\n"
                     for i in range(60))
    (tmp_path / "b.net").write_text(blocks + "block B60(x: [N, F]) {\n    return x\n}\n"
                                    "model M(x: float[N, 4]) {\n    return x -> B0\n}\n")
    code, _, err = run_cli("check", "b.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1
    assert first_error(err, "b.net") == "b.net:184:7: error: model `M` nests blocks and expressions too deeply to compile"


def test_recursive_blocks_name_the_cycle(tmp_path, monkeypatch):
    (tmp_path / "r.net").write_text("block A(x: [N, D]) {\n    return x -> B\n}\n"
                                    "block B(x: [N, D]) {\n    return x -> A\n}\n"
                                    "model M(x: float[N, 4]) {\n    return x -> A\n}\n")
    code, _, err = run_cli("check", "r.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1
    assert first_error(err, "r.net") == "r.net:5:17: error: `A` is recursive: A -> B -> A"
    assert "note: in `B` instantiated at r.net:2:17" in err


def test_thousands_of_errors_take_linear_time(tmp_path, monkeypatch):
    """The first MAX_ERRORS errors are found and reported (then netc stops looking), only the first MAX_HINTS search
    for a "did you mean" (each search looks at up to 500 names), and a source line is split
    once: 3000 errors among 3000 names took minutes before (quadratic); now about a second."""
    n = 3000
    (tmp_path / "e.net").write_text("model M(x: float[N, 4]) {\n" + "".join(f"    a{i} = x -> linear(q{i})\n"
                                                                          for i in range(n)) + "    return x\n}\n")
    start = time.process_time()
    code, _, err = run_cli("check", "e.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and time.process_time() - start < 10
    assert len(re.findall(r"^e\.net:\d+:\d+: error: unknown name `q\d+`", err, re.MULTILINE)) == limits.MAX_ERRORS
    assert err.rstrip().endswith("... and more errors, not searched for: netc stops after the first 1,000 "
                                 "(fix these and run it again)")
    assert err.count("did you mean") <= limits.MAX_HINTS


# -- sizes of what a spec builds ------------------------------------------------------------------


def test_repetition_count(tmp_path, monkeypatch):
    for n, ok in ((limits.MAX_REPEAT, True), (limits.MAX_REPEAT + 1, False)):
        (tmp_path / "r.net").write_text(f"model M(x: float[N, 4]) {{\n    return x -> relu * {n}\n}}\n")
        code, _, err = run_cli("check", "r.net", cwd=tmp_path, monkeypatch=monkeypatch)
        assert code == (0 if ok else 1), err
    assert f"a repetition count must be an int from 1 to {limits.MAX_REPEAT}; got 4097" in first_error(err, "r.net")


def test_node_count(tmp_path, monkeypatch):
    """The real limit is 20,000 nodes (under 4 s to reach); a smaller one keeps the test fast."""
    monkeypatch.setattr(calls, "MAX_NODES", 500)
    (tmp_path / "n.net").write_text("block L(x: [N, D]) {\n    return x -> linear(D) -> relu\n}\n"
                                    "model M(x: float[N, 4]) {\n    return x -> L * 300\n}\n")
    code, _, err = run_cli("check", "n.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and "the spec's models have more than 500 nodes together" in first_error(err, "n.net")


@pytest.mark.parametrize("body, message", [
    ("linear(9223372036854775807 + 1)", "is out of range: integers are at most 2**63 - 1 (the limit)"),
    ("linear(99999999999999999999)", "is too large; integers are at most 2**63 - 1"),
    ("split(1)", "at most 4096 (the limit)"),
    ("lstm(4, layers=5000)", "needs layers <= 4096 (the limit)"),
    ('linear(4) -> upsample(' + " * ".join(["1000000"] * 4) + ")", "out of range"),
])
def test_value_limits(body, message, tmp_path, monkeypatch):
    (tmp_path / "v.net").write_text(f"model M(x: float[N, T, 100000]) {{\n    y = x -> {body}\n    return x\n}}\n")
    code, _, err = run_cli("check", "v.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and message in first_error(err, "v.net"), err


def test_doubling_consts_stop_at_the_limit(tmp_path, monkeypatch):
    """Each const doubles the last: strings, tuples, ints and symbolic sizes all stop quickly."""
    for first, op in (('"ab"', "+"), ("(1, 2)", "+"), ("3", "*")):
        text = f"const C0 = {first}\n" + "".join(f"const C{i + 1} = C{i} {op} C{i}\n" for i in range(40))
        (tmp_path / "c.net").write_text(text + "model M(x: float[N, 4]) {\n    return x\n}\n")
        start = time.monotonic()
        code, _, err = run_cli("check", "c.net", cwd=tmp_path, monkeypatch=monkeypatch)
        assert code == 1 and "(the limit)" in first_error(err, "c.net"), err
        assert time.monotonic() - start < 5
    sizes = "".join(f"    s{i + 1} = s{i} * s{i}\n" for i in range(30))
    (tmp_path / "s.net").write_text("block Grow(x: [N, A, B]) {\n    s0 = A + B + 1\n" + sizes
                                    + "    return x\n}\nmodel M(x: float[N, A, B]) {\n    return x -> Grow\n}\n")
    code, _, err = run_cli("check", "s.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and "a symbolic size has grown past 64 terms" in first_error(err, "s.net")


# -- imports stay in the spec's folder ------------------------------------------------------------


@pytest.fixture
def tree(tmp_path) -> Path:
    """tmp/outside.net, tmp/proj/{main.net, lib/inner.net, lib/link.net -> ../../outside.net}."""
    block = "block Lin(x: [N, F]) {\n    return x -> linear(F)\n}\n"
    (tmp_path / "outside.net").write_text(block.replace("Lin", "Out"))
    proj = tmp_path / "proj"
    (proj / "lib").mkdir(parents=True)
    (proj / "lib" / "inner.net").write_text(block + 'import "../lib/../lib/more.net"\n')
    (proj / "lib" / "more.net").write_text("")
    (proj / "lib" / "link.net").symlink_to(tmp_path / "outside.net")
    return proj


@pytest.mark.parametrize("path, why", [
    ("../outside.net", "it resolves outside the spec's folder"),
    ("lib/link.net", "it resolves outside the spec's folder (through a symlink)"),
    ("{abs}", "an absolute path"),
])
def test_imports_outside_are_refused_unless_allowed(path, why, tree, monkeypatch):
    path = path.format(abs=tree.parent / "outside.net")
    model = "model M(x: float[N, 4]) {\n    return x -> Out\n}\n"
    (tree / "main.net").write_text(f'import "{path}"\n' + model)
    code, _, err = run_cli("check", "main.net", cwd=tree, monkeypatch=monkeypatch)
    assert code == 1
    assert first_error(err, "main.net") == f'main.net:1:1: error: cannot import "{path}": {why}'
    assert "pass --allow-imports-outside" in err
    for command in (["check"], ["summary"], ["compile", "--backend", "torch"], ["render", "-o", "out.dot"]):
        code, _, err = run_cli(command[0], "main.net", *command[1:], "--allow-imports-outside", cwd=tree,
                           monkeypatch=monkeypatch)
        assert code == 0, (command, err)
    with pytest.raises(netc.SpecError, match="cannot import"):
        netc.compile_file(tree / "main.net")
    assert netc.compile_file(tree / "main.net", allow_imports_outside=True).models == ["M"]


def test_imports_inside_and_std_are_allowed(tree, monkeypatch):
    (tree / "main.net").write_text('import "lib/inner.net"\nimport "std/resnet.net"\n'
                                   "model M(x: float[N, 4]) {\n    return x -> Lin\n}\n")
    code, _, err = run_cli("check", "main.net", cwd=tree, monkeypatch=monkeypatch)
    assert code == 0, err
    # run from elsewhere: the folder is the spec's, not the working directory's
    code, _, err = run_cli("check", str(tree / "main.net"), cwd=tree.parent, monkeypatch=monkeypatch)
    assert code == 0, err


def test_std_cannot_be_climbed_out_of(tree, monkeypatch):
    (tree / "main.net").write_text('import "std/../../netc/cli.net"\n' + MODEL)
    for extra in ([], ["--allow-imports-outside"]):
        code, _, err = run_cli("check", "main.net", *extra, cwd=tree, monkeypatch=monkeypatch)
        assert code == 1
        assert "it resolves outside the standard library" in first_error(err, "main.net")
