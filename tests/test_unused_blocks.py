"""Blocks and cells no model applies are checked once (issue 17): errors in them are errors,
and valid ones, whether elaborated with symbolic sizes or checked statically, give none.
The failing cases are golden diagnostics: ``tests/diagnostics/unused_block_*.net``."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
from netc.compiler.pipeline import compile_spec
from netc.compiler.source import SpecError

ROOT = Path(__file__).resolve().parent.parent

VALID = """\
const width = 8

# generic: every size symbolic, defaults used, an int without a default a symbol
block Gate(x: [N, D], k: int, scale: float = 0.5) {
    y = x -> sigmoid
    h: [N, D] = x * y * scale
    return h + x
}

# static: conv2d sizes its weights and `if C == out` needs concrete sizes
block Res(x: [N, C, H, W], out: int, stride: int = 1) {
    y = x -> conv2d(out, 3, stride=stride, padding=1) -> batchnorm -> relu
    skip = if C == out and stride == 1 then x else x -> conv2d(out, 1, stride=stride)
    return (y + skip) -> relu
}

# static: a bare tensor parameter, a shared layer
block Twice(x, d: int = width) {
    let proj = linear(d)
    return x -> proj -> relu -> proj
}

cell Step(x: [N, I], h: [N, H]) -> [N, H] {
    a = x -> linear(H)
    return (a + h) -> tanh
}

model Net(x: float[N, 16]) {
    return x -> linear(4) -> relu
}
"""


def test_valid_unused_blocks_give_no_error(tmp_path):
    spec = tmp_path / "valid.net"
    spec.write_text(VALID)
    out = compile_spec(str(spec))
    assert list(out.graphs) == ["Net"]


def test_unused_blocks_of_an_import_are_not_checked(tmp_path):
    (tmp_path / "lib.net").write_text("block Broken(x: [N, D]) {\n    return x -> reluu -> nothere\n}\n")
    spec = tmp_path / "main.net"
    spec.write_text('import "lib.net"\n\nmodel Net(x: float[N, 16]) {\n    return x -> linear(4) -> relu\n}\n')
    assert list(compile_spec(str(spec)).graphs) == ["Net"]


def test_an_unused_block_with_an_error_fails(tmp_path):
    spec = tmp_path / "bad.net"
    spec.write_text(VALID.replace("h + x", "h + z"))
    with pytest.raises(SpecError) as e:
        compile_spec(str(spec))
    [d] = e.value.diagnostics
    assert d.message == "unknown name `z`" and "used by no model" in d.notes[-1][0]


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "specs/std/*.net"))), ids=lambda p: Path(p).name)
def test_std_blocks_checked_as_root_are_clean(path):
    compile_spec(path)  # every std block is unused when the std file is the root


INT_PARAM = """\
# `out` has no default: it is a fresh symbol; linear(out) needs a concrete size, so it and what
# follows it are not checked, but the rest of the body is
block Head(x: [N, T, D], out: int) {
    h = x -> maxpool2d(2)
    y = x -> linear(out) -> relu
    return y + h
}

model Net(x: float[N, 16]) {
    return x -> linear(4) -> relu
}
"""


def test_a_shape_error_in_an_unused_block_with_a_required_int_parameter_is_reported(tmp_path):
    spec = tmp_path / "head.net"
    spec.write_text(INT_PARAM)
    with pytest.raises(SpecError) as e:
        compile_spec(str(spec))
    [d] = e.value.diagnostics
    assert d.message == "maxpool2d needs a 4-d input [N, C, H, W]; got float[N, T, D]"
    assert (d.span.line, d.span.column) == (4, 14)
    assert d.notes[-1][0] == "`Head` is used by no model; it is checked on its own, its sizes symbolic"
    # an error about the int parameter's symbol may hold for some values only: not reported
    # (reshape(N, T * D * out) fits when out == 1)
    spec.write_text(INT_PARAM.replace("    h = x -> maxpool2d(2)\n", "    h = x -> reshape(N, T * D * out)\n"))
    assert list(compile_spec(str(spec)).graphs) == ["Net"]


def test_what_a_symbolic_int_cannot_decide_is_left_to_the_static_check(tmp_path):
    spec = tmp_path / "res.net"
    # valid: sizing weights by `out` and branching on `C == out` are not errors
    spec.write_text(INT_PARAM.replace("    h = x -> maxpool2d(2)\n", "    h = x -> linear(out)\n"))
    assert list(compile_spec(str(spec)).graphs) == ["Net"]
    # a misspelt argument after the poisoned value is still found, by the static check
    spec.write_text(INT_PARAM.replace("    h = x -> maxpool2d(2)\n", "    h = x -> linear(out) -> dropout(pp=0.1)\n"))
    with pytest.raises(SpecError) as e:
        compile_spec(str(spec))
    [d] = e.value.diagnostics
    assert d.message == "dropout has no argument `pp`" and (d.span.line, d.span.column) == (4, 37)
    assert "its names, ops and argument names are checked" in d.notes[-1][0]
