"""Hostile input at the command line and the API: every bad input is a diagnostic with
file:line:col (never a traceback), lines and columns agree with the excerpt whatever the
line endings, a spec's strings cannot forge diagnostic lines or send terminal codes, and the
first-day rough edges (--version, python -m netc, a misspelt --model, a non-UTF-8 stdout)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

import netc
from netc.cli import main


def netc_check(tmp_path, text: str, *args: str, name: str = "spec.net") -> tuple[int, str, str]:
    (tmp_path / name).write_bytes(text.encode("utf-8", "surrogatepass"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(tmp_path / name), *args])
    return code, out.getvalue(), err.getvalue()


# -- item 4: internal errors instead of diagnostics --------------------------------------------

@pytest.mark.parametrize("path, why", [("\\x00", "NUL"), ("\\ud800.net", "cannot encode"),
                                       ("a\\x1bb.net", "control character")])
def test_an_import_path_no_file_can_have_is_a_diagnostic(tmp_path, monkeypatch, path, why):
    monkeypatch.setenv("NO_COLOR", "1")
    code, _, err = netc_check(tmp_path, f'import "{path}"\nmodel M(x: float[N, 4]) {{ return x -> linear(2) }}\n')
    assert code == 1, err
    assert re.match(r".*spec\.net:1:1: error: cannot import \"", err)
    assert why in err and "internal error" not in err
    assert "\x1b" not in err and "\x00" not in err


def test_a_nan_const_is_an_error_at_the_arithmetic(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    code, _, err = netc_check(tmp_path, "const big = 1e308 * 10.0\nconst bad = big - big\n"
                                        "model M(x: float[N, 4]) { return x -> linear(2) -> leaky_relu(bad) }\n")
    assert code == 1
    assert err.startswith(f"{tmp_path / 'spec.net'}:2:13: error: inf - inf is not a number (NaN)")


@pytest.mark.parametrize("size", ["N=²", "N=٣", "N=1.5"])
def test_size_with_a_non_ascii_digit_is_a_usage_error(tmp_path, monkeypatch, capsys, size):
    monkeypatch.setenv("NO_COLOR", "1")
    (tmp_path / "m.net").write_text("model M(x: float[N, 4]) { return x -> linear(2) }\n")
    assert main(["run", str(tmp_path / "m.net"), "--backend", "numpy", "--size", size]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"netc: error: --size needs SYM=K with K a whole number >= 1; got '{size}'"), err


# -- item 11: control characters and line separators ------------------------------------------

def test_diagnostics_escape_control_characters_from_the_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    forged = 'a\\nspec.net:9:9: error: forged\\x1b[2J\\x07'
    code, _, err = netc_check(tmp_path, f'model M(x: float[N, 4]) {{\n    return x -> linear("{forged}")\n}}\n')
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err
    lines = err.splitlines()
    assert len(lines) == 3, err  # the message, the excerpt, the carets: no forged line
    assert lines[0].endswith('got "a\\nspec.net:9:9: error: forged\\x1b[2J\\x07"')
    # the carets stay under the (escaped) string in the excerpt
    start = lines[1].index('"a\\n')
    assert lines[2] == " " * start + "^" * len('"a\\nspec.net:9:9: error: forged\\x1b[2J\\x07"')


@pytest.mark.parametrize("sep", ["\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_line_numbers_count_every_line_break_the_excerpt_does(tmp_path, monkeypatch, sep):
    monkeypatch.setenv("NO_COLOR", "1")
    text = f"# one{sep}# two\nmodel M(x: float[N, 4]) {{\n    return x -> bogus\n}}\n"
    code, _, err = netc_check(tmp_path, text)
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'spec.net'}:4:17: error: unknown op or block `bogus`"), err
    assert lines[1] == "        return x -> bogus"
    assert lines[2] == " " * 20 + "^^^^^"


def test_cr_and_crlf_files_point_at_the_right_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    for nl in ("\r", "\r\n", "\n"):
        text = nl.join(["model M(x: float[N, 4]) {", "    return x", "        -> linear(2)",
                        "        -> bogus", "}", ""])
        code, _, err = netc_check(tmp_path, text)
        assert code == 1
        assert err.splitlines()[:3] == [f"{tmp_path / 'spec.net'}:4:12: error: unknown op or block `bogus`",
                                        "            -> bogus", "               ^^^^^"], (repr(nl), err)


def test_syntax_errors_after_a_cr_only_line_break_point_at_their_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    code, _, err = netc_check(tmp_path, "model M(x: float[N, 4]) {\r    return x -> linear(2);\r}\r")
    assert code == 1
    assert err.splitlines()[:2] == [f"{tmp_path / 'spec.net'}:2:26: error: syntax error: unexpected character ';'",
                                    "        return x -> linear(2);"], err


# -- item 13: large values through the API; --max-params names the layers -----------------------

@pytest.mark.parametrize("value, says", [(10**10000, "integers are at most 2**63 - 1"),
                                         (-(2**64), "integers are at most 2**63 - 1"),
                                         (float("nan"), "NaN"), ((1, float("nan")), "NaN"),
                                         (object(), "not a .net value")],
                         ids=["10**10000", "-2**64", "nan", "tuple-nan", "object"])
def test_api_defines_out_of_range_are_spec_errors(tmp_path, value, says):
    (tmp_path / "m.net").write_text("model M(x: float[N, 4], k: int = 2) { return x -> linear(k) }\n")
    with pytest.raises(netc.SpecError) as e:
        netc.compile_file(tmp_path / "m.net", defines={"k": value})
    assert says in str(e.value)
    assert str(e.value).startswith("<command line>:1:1: error: bad -D value for `k`")


def test_max_params_notes_name_the_largest_layers(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    code, _, err = netc_check(tmp_path, "model Big(x: float[N, 100000]) {\n    return x\n"
                                        "        -> linear(100000000)\n        -> linear(2)\n}\n")
    assert code == 1
    spec = tmp_path / "spec.net"
    assert f"{spec}:1:7: error: model `Big` has 10,000,300,000,002 parameters" in err
    notes = [line for line in err.splitlines() if "note:" in line]
    assert notes == [f"  note: `linear` (layer `linear`) holds 10,000,100,000,000 parameters at {spec}:3:12",
                     f"  note: `linear` (layer `linear_1`) holds 200,000,002 parameters at {spec}:4:12"], err


# -- item 14: first-day rough edges -----------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_python_dash_m_netc_and_version():
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "netc", "--version"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"netc {netc.__version__}\n"


def test_a_misspelt_model_lists_the_spec_models_and_the_closest(monkeypatch, capsys):
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["summary", str(ROOT / "examples" / "autoencoder.net"), "--model", "Autoencoder"]) == 2
    assert capsys.readouterr().err == ("netc: error: --model Autoencoder: no such model or pair; the spec has "
                                       "Encoder, Decoder, AutoEncoder\n  hint: did you mean `AutoEncoder`?\n")


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}])
def test_summary_on_a_stdout_that_cannot_write_unicode(env):
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LC_ALL", "LANG", "PYTHONUTF8")}
    p = subprocess.run([sys.executable, "-m", "netc", "summary", "examples/lenet.net"], cwd=ROOT,
                       env={**clean, **env}, capture_output=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode("ascii")  # nothing but ASCII
    assert "Total MACs: 4,241,152*N" in out and "-" * 20 in out


def test_run_numpy_without_torch_says_which_weights(tmp_path, monkeypatch, capsys):
    import sys

    (tmp_path / "m.net").write_text("model M(x: float[N, 4]) { return x -> linear(2) }\n")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    assert main(["run", str(tmp_path / "m.net"), "--backend", "numpy"]) == 0
    err = capsys.readouterr().err
    assert "torch is not installed: the NumPy program runs netc's own seeded weights" in err
    from netc.cli import build_parser

    run_help = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "without torch installed, numpy runs netc's own seeded" in " ".join(run_help.split())


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_verify_says_what_it_is_doing_on_a_terminal(tmp_path, monkeypatch):
    (tmp_path / "m.net").write_text("model M(x: float[N, 4]) { return x -> linear(2) }\n")
    err = _Terminal()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["verify", str(tmp_path / "m.net")]) == 0
    lines = err.getvalue().splitlines()
    assert lines[0] == "netc: verifying M (torch and NumPy)..."
    assert re.fullmatch(r"netc: verifying M \(torch and NumPy\): done in \d+\.\d s", lines[1])
