"""Without torch, graphviz or onnx, the API and the command line say which package is missing
and how to install it (netc's ``MissingDependency``, exit 2), never a bare ImportError. The
packages are hidden from a real interpreter by a meta path finder, as if not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]

HIDE = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "graphviz", "onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Hide())
"""

SCRIPT = HIDE + """
import contextlib, io, json
import netc
from netc.cli import main

prog = netc.compile_file("examples/lenet.net")
out = {}
for what, call in [("api_to_torch", lambda: prog.to_torch("LeNet")),
                   ("api_to_onnx", lambda: prog.to_onnx("LeNet")),
                   ("api_render", lambda: prog.render("LeNet", "lenet.svg"))]:
    try:
        call()
        out[what] = "no error"
    except Exception as e:
        out[what] = [type(e).__name__, isinstance(e, ImportError), str(e)]
for args in (["run", "examples/lenet.net", "--backend", "torch"],
             ["compile", "examples/lenet.net", "--backend", "onnx", "-o", "lenet.onnx"],
             ["render", "examples/lenet.net", "-o", "lenet.svg"]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    out[args[0]] = [code, err.getvalue()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def without_packages(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("nopkg")
    (cwd / "examples").symlink_to(ROOT / "examples")
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=cwd, capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(cwd)}, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_api_names_the_package_and_the_extra(without_packages):
    name, is_import_error, text = without_packages["api_to_torch"]
    assert (name, is_import_error) == ("MissingDependency", True)
    assert "prog.to_torch needs torch, which is not installed" in text
    assert "pip install 'netc[torch]'" in text
    name, is_import_error, text = without_packages["api_to_onnx"]
    assert name == "MissingDependency" and "needs onnx, which is not installed" in text and "pip install 'netc[onnx]'" in text
    name, _, text = without_packages["api_render"]
    assert name == "RenderError" and "graphviz Python package" in text and "pip install 'netc[render]'" in text


def test_the_command_line_says_it_and_exits_2(without_packages):
    for command, package, extra in (("run", "torch", "torch"), ("compile", "onnx", "onnx"),
                                    ("render", "graphviz", "render")):
        code, err = without_packages[command]
        assert code == 2, (command, err)
        assert err.startswith("netc: error: ") and f"pip install 'netc[{extra}]'" in err, (command, err)
        assert package in err and "Traceback" not in err and "internal error" not in err


def test_render_without_the_dot_program(monkeypatch, tmp_path):
    """The graphviz package is there, its `dot` program is not on PATH."""
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run_cli("render", str(ROOT / "examples/lenet.net"), "-o", "lenet.svg", cwd=tmp_path,
                             monkeypatch=monkeypatch)
    assert code == 2 and out == ""
    assert err.startswith("netc: error: graphviz's `dot` program is not installed or not on PATH"), err
    assert not (tmp_path / "lenet.svg").exists()
