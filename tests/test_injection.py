"""No code or text from a spec reaches the generated source except validated identifiers and
numbers: names that are Python keywords, builtins, dunders or names the emitted code uses
itself are renamed; strings are checked against each op's schema; file names are sanitised.

Each test puts dangerous names or strings in one position (declaration names, parameters,
inputs, variables, `let` layers, symbols, results, string attributes, import paths, ``-D``
values, the spec's own file name), then parses the emitted torch and NumPy source with
``ast`` and runs it.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from pathlib import Path

import fuzzing
import pytest
from cli_helpers import run_cli
from netc.compiler.parse import KEYWORDS

import netc

# Python keywords that are names in .net, builtins that would be shadowed or called, dunders,
# names Python mangles in a class body, and the names generated code relies on.
PY_KEYWORDS = sorted(set(keyword.kwlist) - KEYWORDS)
DANGEROUS = PY_KEYWORDS + [
    "eval", "exec", "compile", "open", "input", "print", "getattr", "setattr", "globals", "vars", "super",
    "object", "type", "__import__", "__builtins__", "__init__", "__class__", "__dict__", "__call__", "__x",
    "__1", "_1", "__", "_modules", "_parameters", "training", "forward", "state_dict", "self", "torch",
    "nn", "F", "np", "math", "os", "sys", "weights", "prefix", "load_weights", "layer", "Module",
    "Sequential", "ModuleList", "conv2d", "softmax",  # op names (not those the specs below apply)
]
SAFE_STRING = re.compile(r"^[A-Za-z0-9_. ]*$")  # weight keys and kernel words ("same", "relu")
ALLOWED_IMPORTS = {"math", "numpy", "torch", "torch.nn.functional"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals",
                   "locals", "vars", "input", "breakpoint", "system", "popen"}


def assert_clean(source: str, payloads=()) -> None:
    """The emitted source parses; imports only what netc emits; calls nothing dangerous; its
    string constants are docstrings, weight keys or kernel words; no payload text survives."""
    tree = ast.parse(source)
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= ALLOWED_IMPORTS, ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            assert node.module == "torch" and [a.name for a in node.names] == ["nn"], ast.unparse(node)
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            assert name not in FORBIDDEN_CALLS, ast.unparse(node)
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                assert f.value.id not in ("os", "sys", "subprocess", "builtins"), ast.unparse(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            assert SAFE_STRING.match(node.value), repr(node.value)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assert not keyword.iskeyword(node.id) and node.id not in ("__builtins__", "__import__"), node.id
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            assert not (node.name.startswith("__") and not node.name.endswith("__")), node.name
            assert node.name not in dir(builtins) or node.name in ("__init__", "__call__"), node.name
    for p in payloads:
        assert p not in source, p


def compile_and_run(path: Path) -> None:
    """Both backends' source is clean, and both build, run and agree (fuzzing.check_backends)."""
    prog = netc.compile_file(str(path))
    assert_clean(prog.torch_source())
    for name in prog.models:
        assert_clean(prog.numpy_source(name))
    assert fuzzing.check_backends(path) >= 1


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NETC_CACHE", str(tmp_path / "cache"))


# -- names ----------------------------------------------------------------------------------


def _chain(names: list[str], first: str) -> tuple[list[str], str]:
    lines, cur = [], first
    for i, n in enumerate(names):
        lines.append(f"{n} = {cur} -> linear({4 + i % 3}) -> relu")
        cur = n
    return lines, cur


SPECS = {
    "variables": lambda names: "model M(x: float[N, 4]) {\n    "
    + "\n    ".join(_chain(names, "x")[0]) + f"\n    return {_chain(names, 'x')[1]}\n}}\n",
    "let layers": lambda names: "model M(x: float[N, 4]) {\n"
    + "".join(f"    let {n} = linear(4)\n" for n in names)
    + "    h = x\n" + "".join(f"    h = h -> {n} -> {n}\n" for n in names) + "    return h\n}\n",
    "block parameters": lambda names: f"block B(x: [N, F], {', '.join(f'{n}: int = 2' for n in names)}) {{\n"
    + "    return x" + "".join(f" -> linear({n})" for n in names) + " -> linear(F)\n}\n"
    "model M(x: float[N, 4]) {\n    return x -> B(" + ", ".join(f"{n}={i % 5 + 1}" for i, n in enumerate(names))
    + ") -> B(" + ", ".join(f"{n}={i % 3 + 2}" for i, n in enumerate(names)) + ")\n}\n",
    "model inputs": lambda names: f"model M({', '.join(f'{n}: float[N, 4]' for n in names)}) {{\n"
    + "    return " + " + ".join(f"({n} -> linear(4))" for n in names) + "\n}\n",
    "symbols": lambda names: "model M(x: float[N, " + ", ".join(names) + ", 3]) {\n"
    + "    y = x -> flatten(1) -> relu\n    return y -> reshape(N, " + ", ".join(names) + ", 3) -> tanh\n}\n",
    "named results": lambda names: "model M(x: float[N, 4]) -> (" + ", ".join(f"{n}: float[N, 4]" for n in names)
    + ") {\n    return " + ", ".join("x -> linear(4)" for _ in names) + "\n}\n",
    "unpacked tuples": lambda names: "model M(x: float[N, 4]) {\n"
    + "".join(f"    {n}, _ = (x -> linear(4), x)\n" for n in names)
    + "    return " + " + ".join(names) + "\n}\n",
}


@pytest.mark.parametrize("position", sorted(SPECS))
def test_dangerous_names_in_every_position(position, tmp_path):
    names = DANGEROUS
    if position == "symbols":  # a tensor has at most 32 dims: a few of each kind
        names = ["lambda", "None", "eval", "__x", "self", "weights", "prefix"]
    path = tmp_path / "names.net"
    path.write_text(SPECS[position](names))
    compile_and_run(path)


@pytest.mark.parametrize("name", DANGEROUS)
def test_dangerous_declaration_names(name, tmp_path):
    """A model, block, cell and pair named ``name`` (each in its own spec: one namespace)."""
    specs = [
        (f"block {name}(x: [N, F]) {{\n    return x -> linear(F) -> relu\n}}\n"
        f"model M(x: float[N, 4]) {{\n    return x -> {name} -> {name}() * 2\n}}\n"),
        (f"cell {name}(x: [N, I], h: [N, H]) -> [N, H] {{\n    return tanh(linear(x, H) + linear(h, H))\n}}\n"
        f"model M(x: float[N, T, 3]) {{\n    return x -> scan({name}, hidden=2) -> scan({name}, hidden=3)\n}}\n"),
        (f"model {name}(x: float[N, 4]) -> float[N, 2] {{\n    return x -> linear(2)\n}}\n"
        f"model Other(y: float[N, 2]) {{\n    return y -> linear(1)\n}}\n"
        f"pair P {{\n    generator: {name}\n    discriminator: Other\n}}\n"),
        (f"model G(x: float[N, 4]) -> float[N, 2] {{\n    return x -> linear(2)\n}}\n"
        f"model D(y: float[N, 2]) {{\n    return y -> linear(1)\n}}\n"
        f"pair {name} {{\n    encoder: G\n    decoder: D\n}}\n"),
    ]
    for i, text in enumerate(specs):
        path = tmp_path / f"decl{i}.net"
        path.write_text(text)
        prog = netc.compile_file(str(path))
        assert_clean(prog.torch_source())
        for m in prog.models:
            assert_clean(prog.numpy_source(m))
        fuzzing.check_backends(path)
        for m in prog.models:  # a pair too: its container class builds and runs
            prog.to_torch(m)


def test_grammar_names_are_ascii(tmp_path, monkeypatch):
    """Unicode look-alikes are not names: a Cyrillic `а`, full-width letters, an accent."""
    for name in ["lаyer", "ｌａｙｅｒ", "café", "x\u200b"]:  # Cyrillic a; full-width; é; zero-width space
        (tmp_path / "u.net").write_text(f"model M(x: float[N, 4]) {{\n    {name} = x -> relu\n    return x\n}}\n")
        code, _, err = run_cli("check", "u.net", cwd=tmp_path, monkeypatch=monkeypatch)
        assert code == 1 and err.startswith("u.net:2:"), err
        assert "syntax error: unexpected character" in err, err


def test_long_names_are_refused(tmp_path, monkeypatch):
    (tmp_path / "long.net").write_text("model " + "M" * 10_000 + "(x: float[N, 4]) {\n    return x\n}\n")
    code, _, err = run_cli("check", "long.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1
    assert err.splitlines()[0] == "long.net:1:7: error: name `MMMMMMMMMMMMMMMMMMMM...` is 10000 characters long; " \
                                  "names have at most 100 (the limit)"
    assert max(len(line) for line in err.splitlines()) < 200  # the excerpt is a window, not the whole line
    (tmp_path / "ok.net").write_text("model " + "M" * 100 + "(x: float[N, 4]) {\n    return x -> linear(2)\n}\n")
    compile_and_run(tmp_path / "ok.net")


# -- strings --------------------------------------------------------------------------------

PAYLOAD = 'nearest\\"); import os; os.system(\\"echo pwned\\"); (\\"'
STRING_SPECS = {
    "padding": 'model M(x: float[N, 3, 8, 8]) {{\n    return x -> conv2d(4, 3, padding="{p}")\n}}\n',
    "mode": 'model M(x: float[N, 3, 8, 8]) {{\n    return x -> upsample(2, mode="{p}")\n}}\n',
    "nonlinearity": 'model M(x: float[N, 5, 3]) {{\n    s, _ = x -> rnn(4, nonlinearity="{p}")\n    return s\n}}\n',
    "const": 'const MODE = "{p}"\nmodel M(x: float[N, 3, 8, 8]) {{\n    return x -> upsample(2, mode=MODE)\n}}\n',
    "block parameter": ('block Up(x: [N, C, H, W], how: str = "{p}") {{\n    return x -> upsample(2, mode=how)\n}}\n'
                        'model M(x: float[N, 3, 8, 8]) {{\n    return x -> Up\n}}\n'),
    "as a size": 'model M(x: float[N, 4]) {{\n    return x -> linear("{p}")\n}}\n',
}


@pytest.mark.parametrize("position", sorted(STRING_SPECS))
def test_strings_are_checked_against_the_schema(position, tmp_path, monkeypatch):
    (tmp_path / "s.net").write_text(STRING_SPECS[position].format(p=PAYLOAD))
    code, out, err = run_cli("compile", "s.net", "--backend", "torch", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and out == "", err
    assert re.match(r"^s\.net:\d+:\d+: error: ", err), err
    code, out, err = run_cli("compile", "s.net", "--backend", "numpy", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and out == "", err


def test_define_values_and_names(tmp_path, monkeypatch):
    (tmp_path / "d.net").write_text('model M(x: float[N, 3, 8, 8], how: str = "nearest") {\n'
                                    "    return x -> upsample(2, mode=how)\n}\n")
    code, out, _ = run_cli("compile", "d.net", "--backend", "torch", "-D", f'how="{PAYLOAD}"',
                           cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and out == ""
    for bad in ['__import__("os").system("x")=1', "how=__import__('os')", 'how="a" + "b"', "how=exec"]:
        code, out, err = run_cli("compile", "d.net", "--backend", "torch", "-D", bad, cwd=tmp_path,
                                 monkeypatch=monkeypatch)
        assert code == 2 and out == "", (bad, err)
        assert "Traceback" not in err
    code, out, _ = run_cli("compile", "d.net", "--backend", "numpy", "-D", 'how="bilinear"', cwd=tmp_path,
                           monkeypatch=monkeypatch)
    assert code == 0
    assert_clean(out)


@pytest.mark.parametrize("path", ['x.net\\"); import os; (\\"', "x.net\\n import os", "../../../etc/passwd",
                                  "/dev/zero", "std/../../../netc/cli.py"])
def test_import_paths(path, tmp_path, monkeypatch):
    (tmp_path / "i.net").write_text(f'import "{path}"\nmodel M(x: float[N, 4]) {{\n    return x\n}}\n')
    code, out, err = run_cli("compile", "i.net", "--backend", "torch", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and out == "", err
    assert err.startswith("i.net:1:1: error: cannot import"), err


@pytest.mark.parametrize("stem", ['evil"""; import os; """', "evil\nimport os\n", "evil'; import os #", "évil $(id)"])
def test_spec_file_names_do_not_reach_code(stem, tmp_path):
    path = tmp_path / f"{stem}.net"
    path.write_text("model M(x: float[N, 4]) {\n    return x -> linear(2) -> relu\n}\n")
    prog = netc.compile_file(str(path))
    for source in (prog.torch_source(), prog.numpy_source("M")):
        assert_clean(source, payloads=["import os", "$(id)"])
        assert "\nimport os" not in source
    fuzzing.check_backends(path)
