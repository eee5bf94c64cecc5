"""`netc check` and `netc summary` load only what they need: no torch, graphviz, onnx (or
NumPy), nor pydantic's model layer (op attributes are checked by pydantic-core), read from the process's own ``sys.modules`` as it exits; and the parser that lark
builds is kept in the cache folder and read back (the next process builds no tables)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "graphviz", "onnx", "onnxruntime", "numpy", "safetensors", "transformers", "pygls")

# Runs the command in-process, then prints the top-level modules that were loaded.
PROBE = """
import json, sys
from netc.cli import main
try:
    code = main(sys.argv[1:])
finally:
    sys.stdout.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def _loaded(*args: str, env: dict | None = None) -> tuple[set[str], subprocess.CompletedProcess]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stderr.strip().splitlines()[-1])), proc


def test_check_and_summary_import_no_heavy_library(tmp_path):
    env = dict(os.environ, NETC_CACHE_DIR=str(tmp_path))
    for args in (("check", "examples/gpt2.net"), ("summary", "examples/resnet18.net")):
        mods, proc = _loaded(*args, env=env)
        assert "ok" in proc.stdout or "params" in proc.stdout.lower()
        tops = {m.split(".")[0] for m in mods}
        assert {"netc", "networkx", "lark", "pydantic_core", "netc.specs.attrs"} <= tops | mods  # real imports
        assert not tops & set(HEAVY), f"netc {args[0]} imported {sorted(tops & set(HEAVY))}"
        assert not {"pydantic.main", "netc.backends.render", "netc.compiler.format"} & mods, sorted(mods)


def test_the_parser_is_cached_and_read_back(tmp_path):
    env = dict(os.environ, NETC_CACHE_DIR=str(tmp_path / "cache"))
    _loaded("check", "examples/lenet.net", env=env)
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].name.startswith("parser-") and files[0].stat().st_size > 1000
    # the second process loads it: lark's table builder never runs
    probe = ("import sys, lark.parsers.lalr_analysis as a\n"
             "a.LALR_Analyzer.compute_lalr = lambda self: sys.exit('built the tables again')\n"
             "from netc.cli import main\nsys.exit(main(['check', 'examples/lenet.net']))")
    proc = subprocess.run([sys.executable, "-c", probe], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    # a damaged cache is rebuilt, not an error
    files[0].write_bytes(b"not a parser")
    _, proc = _loaded("check", "examples/lenet.net", env=env)
    assert "ok" in proc.stdout
    assert files[0].stat().st_size > 1000
