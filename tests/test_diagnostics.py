"""Golden-file tests of the diagnostics: every ``tests/diagnostics/NAME.net`` is a malformed
spec, and ``NAME.err`` holds ``exit: N`` and then the exact stderr of ``netc check NAME.net``
run in that folder with NO_COLOR=1. A first line ``# args: -D k=v`` gives extra arguments
(``# args: --max-params 1000``, ``# args: --allow-imports-outside``).

Helper files that cases import live in ``tests/diagnostics/lib/`` and are not cases.
Regenerate the goldens after a deliberate change with::

    NETC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_diagnostics.py

and read every changed ``.err`` before committing it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from netc.cli import main

HERE = Path(__file__).parent / "diagnostics"
CASES = sorted(p.stem for p in HERE.glob("*.net"))
UPDATE = os.environ.get("NETC_UPDATE_GOLDEN") == "1"


def case_args(name: str) -> list[str]:
    first = (HERE / f"{name}.net").read_text().splitlines()[0]
    m = re.match(r"#\s*args:(.*)$", first)
    return shlex.split(m.group(1)) if m else []


def run_in_process(name: str, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(HERE)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["check", f"{name}.net", *case_args(name)])
        except SystemExit as e:  # argparse
            code = e.code
    return code, out.getvalue(), err.getvalue()


def run_subprocess(name: str) -> tuple[int, str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    p = subprocess.run([sys.executable, "-m", "netc.cli", "check", f"{name}.net", *case_args(name)],
                       cwd=HERE, env=env, capture_output=True, text=True, timeout=120, check=False)
    return p.returncode, p.stdout, p.stderr


def check_case(name: str, code: int, out: str, err: str) -> None:
    golden = HERE / f"{name}.err"
    got = f"exit: {code}\n{err}"
    assert "Traceback" not in out + err and "internal error" not in err, err
    assert code in (1, 2), f"{name}: exit {code}\n{err}"
    first = err.splitlines()[0] if err else ""
    if "-D" in case_args(name):  # an error in a -D value; other flags leave the spec at fault
        assert re.match(r"^<command line>:1:\d+: error: ", first), first
    else:
        assert re.match(rf"^{re.escape(name)}\.net:\d+:\d+: error: ", first), first
    if UPDATE:
        golden.write_text(got)
        return
    assert golden.exists(), f"no golden {golden.name}; run with NETC_UPDATE_GOLDEN=1"
    assert got == golden.read_text()


def test_there_are_cases():
    assert len(CASES) >= 34
    helpers = {p.name for p in (HERE / "lib").glob("*.net")}
    assert helpers, "helper files for import cases live in tests/diagnostics/lib/"
    stray = sorted(p.name for p in HERE.glob("*.err") if p.stem not in CASES)
    assert not stray, f"goldens without a case: {stray}"


@pytest.mark.parametrize("name", CASES)
def test_golden(name, monkeypatch):
    check_case(name, *run_in_process(name, monkeypatch))


@pytest.mark.parametrize("name", ["several_errors", "define_unknown_name"])
def test_golden_through_the_console(name):
    """The real command line (a fresh interpreter, exit status, streams) agrees with the goldens."""
    code, out, err = run_subprocess(name)
    assert out == ""
    check_case(name, code, out, err)


def test_all_errors_of_a_file_in_source_order(monkeypatch):
    code, out, err = run_in_process("several_errors", monkeypatch)
    assert code == 1 and out == ""
    heads = re.findall(r"^several_errors\.net:(\d+):(\d+): error: ", err, re.MULTILINE)
    places = [(int(line), int(col)) for line, col in heads]
    assert len(places) >= 3, err
    assert places == sorted(places), places
    assert len({line for line, _ in places}) == len(places), "each error is on its own line"


# Inputs that once made netc fail with an internal error. Each must now end in a diagnostic
# (exit 1) or compile (exit 0).
CRASHERS = {
    "scalar piped into an op": ("model M(x: float[N, 4]) {\n    return 3 -> linear(3)\n}\n", 1),
    "transpose of a 0-d tensor": ("model M(x: float[]) {\n    return x -> transpose(0, 0)\n}\n", 0),
    "layer in a const": ("const A = linear(3)\nmodel M(x: float[N, 4]) {\n    return x -> linear(A)\n}\n", 1),
    "block in a const": ("const A = B(3)\nblock B(x) {\n    return x\n}\n", 1),
    "sqrt of a number": ("model M(q: float[N, T, 64]) {\n    return q / sqrt(64)\n}\n", 0),
    "unknown dtype": ("model M(x: double[N, 4]) {\n    return x\n}\n", 1),
    "duplicate model input": ("model M(x: float[N, 4], x: float[N, 4]) {\n    return x\n}\n", 1),
    "duplicate cell state": (("cell C(x: [N, I], h: [N, H], h: [N, H]) -> [N, H] {\n    return h\n}\n"
                              "model M(x: float[N, T, 4]) {\n    return x -> scan(C, hidden=3)\n}\n"), 1),
}


@pytest.mark.parametrize("name", sorted(CRASHERS))
def test_no_internal_error(name, tmp_path, monkeypatch):
    text, want = CRASHERS[name]
    (tmp_path / "spec.net").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["check", "spec.net"])
    assert "internal error" not in err.getvalue() and "Traceback" not in err.getvalue(), err.getvalue()
    assert code == want, err.getvalue()
    if want:
        assert re.match(r"^spec\.net:\d+:\d+: error: ", err.getvalue()), err.getvalue()
