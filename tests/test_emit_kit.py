"""The emitter toolkit both backends share (``netc.backends.emit_kit``): literals, fresh names,
file names, statement layout; and the torch emitter's structured result (``TorchSource``)."""

from __future__ import annotations

import ast
import builtins
import keyword
import math
from pathlib import Path

import numpy as np
import pytest
from netc.backends import emit_kit
from netc.backends.emit_kit import Names, Raw, file_name, identifier, literal, stmt, tuple_code
from netc.backends.numpy import emit as numpy_emit
from netc.backends.torch import emit as torch_emit
from netc.backends.torch import write as torch_write
from netc.backends.torch.source import emit_torch

import netc


def test_backends_share_the_toolkit():
    assert torch_emit.literal is numpy_emit.literal is torch_write.literal is literal
    assert torch_emit.file_name is numpy_emit.file_name is file_name
    assert torch_write.stmt is numpy_emit.stmt is stmt


# -- literals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (None, "None"), (True, "True"), (False, "False"), (0, "0"), (-3, "-3"), (2.5, "2.5"), (1e-05, "1e-05"),
    (float("inf"), 'float("inf")'), (float("-inf"), 'float("-inf")'), (float("nan"), 'float("nan")'),
    ("same", '"same"'), ('a"b\\c', '"a\\"b\\\\c"'), ((), "()"), ((1,), "(1,)"), ((1, "x", None), '(1, "x", None)'),
    (((1, 2), (3,)), "((1, 2), (3,))"), (Raw("x.shape[0]"), "x.shape[0]"), ((Raw("n"), 4), "(n, 4)"),
    (np.float64(0.5), "0.5"), (np.int64(7), "7"), (np.bool_(True), "True"), (np.float32(0.5), "0.5"),
])
def test_literal(value, text):
    assert literal(value) == text


@pytest.mark.parametrize("s", ['"; import os; "', "a\nb", "a\rb\x00\t", '\\"', "é\u2028", "'''", '"""'])
def test_string_literals_stay_one_string(s):
    text = literal(s)
    assert text.isascii() and "\n" not in text and "\r" not in text
    assert ast.literal_eval(text) == s
    assert isinstance(ast.parse(text).body[0].value, ast.Constant)


def test_non_finite_floats_evaluate_back():
    for v in (float("inf"), float("-inf")):
        assert eval(literal(v)) == v
    assert math.isnan(eval(literal(float("nan"))))


def test_literal_refuses_other_values():
    with pytest.raises(TypeError):
        literal([1, 2])
    with pytest.raises(TypeError):
        literal(object())


def test_tuple_code():
    assert tuple_code(["a"]) == "(a,)" and tuple_code(["a", "b"]) == "(a, b)" and tuple_code([]) == "()"


# -- names ------------------------------------------------------------------------------------

def test_names_suffix_conventions():
    plain = Names({"y"})
    assert [plain.fresh(b) for b in ("x", "x", "x", "y")] == ["x", "x_1", "x_2", "y_1"]
    classes = Names(sep="", start=2)
    assert [classes.fresh("M") for _ in range(3)] == ["M", "M2", "M3"]
    numbered = Names(start=2)
    assert [numbered.fresh("cell") for _ in range(3)] == ["cell", "cell_2", "cell_3"]
    trailing = Names(start=2, trailing=True)
    assert [trailing.fresh("relu") for _ in range(3)] == ["relu", "relu_", "relu_2"]


@pytest.mark.parametrize("base", ["lambda", "None", "print", "type", "__import__", "", "3d", "a.b-c",
                                  "é", "x\ny", "_", "__class__"])
def test_names_are_identifiers_never_keywords_or_builtins(base):
    for names in (Names(), Names(sep="", start=2), Names(start=2, trailing=True)):
        for _ in range(3):
            name = names.fresh(base)
            assert name.isidentifier() and name.isascii(), name
            assert not keyword.iskeyword(name) and name not in dir(builtins), name
    assert len({Names().fresh(base) for _ in range(3)}) == 1  # (a fresh namespace each time)


def test_identifier():
    assert identifier("conv2d") == "conv2d" and identifier("block.0.conv") == "block_0_conv"
    assert identifier("0") == "_0" and identifier("") == "_" and identifier("café") == "caf_"


# -- file names -------------------------------------------------------------------------------

@pytest.mark.parametrize("path, shown", [
    ("examples/lenet.net", "lenet.net"), ("/tmp/a b/x-1+2.net", "x-1+2.net"),
    ('x"""\nimport os\nos.getcwd() # .net', "x____import_os_os.getcwd_____.net"),
    ("évil $(id).net", "_vil___id_.net"), ("a\\b'c.net", "a_b_c.net"),
])
def test_file_name(path, shown):
    assert file_name(path) == shown


# -- layout -----------------------------------------------------------------------------------

def test_stmt_layout():
    assert stmt("    ", "y = f(x)", "[N, 4]  m.net:3") == ["    y = f(x)  # [N, 4]  m.net:3"]
    long_comment = "c" * 80
    assert stmt("    ", "y = f(x)", long_comment) == [f"    # {long_comment}", "    y = f(x)"]
    assert stmt("    ", "y = f(x)", long_comment, comment_width=110) == [f"    y = f(x)  # {long_comment}"]
    args = [f"{'a' * 24}{i}" for i in range(3)]  # too long for one line, not for an indented one
    assert stmt("    ", f"y = f({', '.join(args)})") == ["    y = f(", f"        {', '.join(args)}", "    )"]
    args = [f"argument_number_{i}" for i in range(8)]
    code = f"y = f({', '.join(args)})"
    assert stmt("    ", code, "c", comment_width=200) == ["    # c", "    y = f("] + [f"        {a}," for a in args] + ["    )"]
    assert stmt("    ", "def forward(self, " + ", ".join(args) + "):")[-1] == "    ):"


def test_layout_respects_strings():
    """Brackets, commas and escaped quotes inside a string literal do not split it."""
    s = literal('a"), (b, [c')
    args = [s] + [f"argument_number_{i}" for i in range(6)] + [s]
    lines = stmt("", f"y = f({', '.join(args)})")
    assert lines[1:-1] == [f"    {a}," for a in args]
    ast.parse("\n".join(lines))


def test_toolkit_imports_nothing_of_the_compiler():
    tree = ast.parse(Path(emit_kit.__file__).read_text())
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.startswith(("netc", ".")) for m in mods if m), mods


# -- the torch emitter's result ---------------------------------------------------------------

RENAMED = """\
model def(x: float[N, 4]) -> float[N, 2] {
    return x -> linear(2)
}
model Module(y: float[N, 2]) {
    return y -> linear(1)
}
model Net(z: float[N, 3]) {
    return z -> linear(1)
}
pair range {
    encoder: def
    decoder: Module
}
"""


def test_emit_torch_names_each_class(tmp_path):
    """``to_torch`` takes the class of a model or pair from the emitter's result: a renamed
    class (a keyword, a builtin, nn's Module) is found without reading docstrings."""
    path = tmp_path / "renamed.net"
    path.write_text(RENAMED)
    prog = netc.compile_file(path)
    emitted = emit_torch(prog._c)
    assert emitted.text == prog.torch_source()
    assert set(emitted.classes) == {"def", "Module", "Net", "range"}
    assert emitted.classes["Net"] == "Net"
    tree = ast.parse(emitted.text)
    docs = {n.name: ast.get_docstring(n) for n in tree.body if isinstance(n, ast.ClassDef)}
    for name, cls in emitted.classes.items():
        assert docs[cls].startswith((f"Model `{name}` of ", f"Pair `{name}` of ")), (name, cls)
        if name != "Net":
            assert cls != name
    only = emit_torch(prog._c, ["range"])
    assert set(only.classes) == {"def", "Module", "range"}


def test_to_torch_uses_the_emitted_class(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("NETC_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "renamed.net"
    path.write_text(RENAMED)
    prog = netc.compile_file(path)
    classes = emit_torch(prog._c).classes
    for name in ("def", "range", "Net"):
        assert type(prog.to_torch(name)).__name__ == classes[name]
