"""`netc run` and `netc verify` on hostile specs and weights (issue 17): what they report must
be true (identical non-finite values agree, dtypes and 0-d shapes match across backends),
what they cannot do in budget is refused with a located diagnostic, and weights are checked
before they are read."""

from __future__ import annotations

import numpy as np
from netc.runtime.parity import compare

from netc.cli import main


def netc_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def spec(tmp_path, text: str, name: str = "m.net"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- item 12: verify tells the truth -----------------------------------------------------------

def test_verify_identical_non_finite_values_agree(tmp_path, capsys):
    path = spec(tmp_path, "model M(x: float[N, 4]) {\n    return x / 0.0, log(x - x - 1.0)\n}\n")
    code, out, err = netc_cli(capsys, "verify", path)
    assert code == 0, out + err
    assert err == ""  # no RuntimeWarning from NumPy either
    assert "max abs diff 0, max rel diff 0" in out
    assert "both give non-finite values, the first inf at output0[0, 0]" in out
    assert "the first nan at output1[0, 0]" in out


def test_compare_reports_the_first_non_finite_difference():
    want = np.array([[1.0, np.nan], [np.inf, 2.0]], np.float32)
    assert compare("y", want.copy(), want).problem is None
    got = want.copy()
    got[1, 0] = 3.0  # torch has inf there
    o = compare("y", got, want)
    assert o.max_abs == np.inf
    assert o.problem == "first non-finite difference at y[1, 0]: NumPy 3.0, torch inf"
    got = want.copy()
    got[1, 0] = -np.inf
    assert "y[1, 0]: NumPy -inf, torch inf" in compare("y", got, want).problem


def test_verify_keeps_0d_inputs_and_int_division_dtypes(tmp_path, capsys):
    path = spec(tmp_path, "model M(x: float[], y: int[N, 4]) {\n    return x + 1.0, y / 2, 1.0 / y\n}\n")
    code, out, err = netc_cli(capsys, "verify", path)
    assert code == 0, out + err
    assert "shape" not in out and "dtype" not in out
    for backend in ("torch", "numpy"):
        code, out, err = netc_cli(capsys, "run", "--backend", backend, path)
        assert code == 0, err
        assert "output0  [] float32" in out
        assert "output1  [2, 4] float32" in out and "output2  [2, 4] float32" in out
