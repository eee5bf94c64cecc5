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


def _probe(code: str, env: dict) -> None:
    """Run ``code`` in a fresh interpreter (netc's checkout, ``env``); it must exit 0."""
    proc = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr


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
             "real = a.LALR_Analyzer.compute_lalr\n"
             "a.LALR_Analyzer.compute_lalr = lambda self: sys.exit('built the tables again')\n"
             "from netc.cli import main\nassert main(['check', 'examples/lenet.net']) == 0\n"
             # the parser read back parses as a freshly built one does (lark compares the table's
             # actions by identity: an unpickled copy of Shift would be taken for a Reduce)
             "from lark import Lark\nfrom netc.compiler import parse\n"
             "a.LALR_Analyzer.compute_lalr = real\n"
             "fresh = Lark(open('specs/grammar.lark').read(), **parse._OPTIONS)\n"
             "for f in ('examples/gpt2.net', 'examples/unet.net', 'specs/std/transformer.net'):\n"
             "    text = open(f).read()\n"
             "    assert parse.parser().parse(text, start='start') == fresh.parse(text, start='start'), f\n"
             "assert parse.parser().parse('a + b * 2', start='expr') == fresh.parse('a + b * 2', start='expr')\n")
    _probe(probe, env)
    # a damaged cache is rebuilt, not an error
    files[0].write_bytes(b"not a parser")
    _, proc = _loaded("check", "examples/lenet.net", env=env)
    assert "ok" in proc.stdout
    assert files[0].stat().st_size > 1000


def test_standard_library_asts_are_cached_and_read_back(tmp_path):
    """`import "std/transformer.net"`: the file's AST is kept on disk; the next process loads
    it without parsing, and gets the AST a parse gives; a damaged file is parsed again."""
    cache = tmp_path / "cache"
    env = dict(os.environ, NETC_CACHE_DIR=str(cache))
    _loaded("check", "examples/gpt2.net", env=env)
    asts = sorted(cache.glob("ast-*.pickle"))
    assert len(asts) == 1 and asts[0].stat().st_size > 1000
    probe = ("import sys\n"
             "import netc.compiler.parse as p\n"
             "real, seen = p.parse, []\n"
             "def parse(source, start='start'):\n"
             "    seen.append(source)\n"
             "    return real(source, start)\n"
             "p.parse = parse\n"
             "import netc\n"
             "netc.compile_file('examples/gpt2.net')\n"  # its own file is parsed by the loader's name
             "assert not seen, f'parsed {[s.path for s in seen]} again'\n"
             "from netc.compiler.loader import _PARSED\n"
             "[(src, got)] = _PARSED.items()\n"
             "assert src.path.endswith('transformer.net')\n"
             "from netc.compiler.format import same_tree\n"
             "want = real(src)\n"
             "assert len(got.decls) == 3 and same_tree(got, want), 'cached AST differs from a parse'\n"
             "assert [d.span for d in got.decls] == [d.span for d in want.decls]\n")
    _probe(probe, env)
    # the user's own file is not kept (it changes); a damaged cache file is parsed again and rewritten
    asts[0].write_bytes(b"\x80\x05not a pickle")
    _, proc = _loaded("check", "examples/gpt2.net", env=env)
    assert "ok" in proc.stdout
    assert sorted(cache.glob("ast-*.pickle")) == asts and asts[0].stat().st_size > 1000


def test_importing_netc_leaves_the_garbage_collector_as_it_was():
    """netc pauses the cyclic collector while its modules load (a sixth of `netc check`'s
    time went to collections walking the objects they make); after the import it runs, or
    stays off, as the importer had it."""
    env = dict(os.environ)
    for before in ("True", "False"):
        _probe("import gc\n"
               f"if not {before}: gc.disable()\n"
               "import netc\n"
               f"assert gc.isenabled() is {before}, gc.isenabled()\n"
               "assert netc.compile_file", env)


def test_check_leaves_its_heap_to_the_exit_and_a_library_call_does_not():
    """The `netc check` process moves its objects out of the collector's reach as it exits
    (gc.freeze: the shutdown's full collections would walk them all again); `main([...])`
    called by a program that goes on (the tests, the language server) leaves the collector
    as it was, or that program's cyclic garbage would never be freed."""
    env = dict(os.environ)
    report = ("import atexit, gc, sys\n"
              "atexit.register(lambda: print('frozen', gc.get_freeze_count(), file=sys.stderr))\n")
    proc = subprocess.run([sys.executable, "-c", report + "sys.argv = ['netc', 'check', 'examples/lenet.net']\n"
                           "from netc.cli import main\nsys.exit(main())"],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr
    assert int(proc.stderr.split("frozen")[-1]) > 10_000, proc.stderr  # the whole heap, frozen
    _probe("import gc, io, contextlib\nfrom netc.cli import main\n"
           "with contextlib.redirect_stdout(io.StringIO()):\n"
           "    assert main(['check', 'examples/lenet.net']) == 0\n"
           "    assert main(['summary', 'examples/lenet.net']) == 0\n"
           "import atexit; atexit._run_exitfuncs()\n"
           "assert gc.get_freeze_count() == 0 and gc.isenabled()", env)
