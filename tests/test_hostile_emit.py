"""Emitted programs under attack (issue 17): a shared layer repeated, dimension symbols named
like emitted code, hash-seed independence, concurrent ``to_torch`` and how output files are
written. Each test here failed on the code before its fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import netc


def _spec(tmp_path, text: str, name: str = "spec.net") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _torch_vs_numpy(prog, module, name: str, *inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torch module's outputs and the NumPy program's, on the module's weights."""
    module.eval()
    with torch.no_grad():
        got = module(*(torch.from_numpy(x) for x in inputs)).numpy()
    want = prog.to_numpy(name, weights=module.state_dict())(*inputs)
    return got, want


# -- item 3: a shared layer repeated is one layer applied n times ----------------------------------

SHARED_REPEAT = """\
model M(x: float[N, 4]) -> float[N, 4] {
    let l = linear(4)
    return x -> l * 3
}
"""


def test_shared_layer_repeated_is_one_module(tmp_path):
    prog = netc.compile_file(_spec(tmp_path, SHARED_REPEAT))
    module = prog.to_torch("M")
    assert prog.summary("M").params == 20
    assert sum(p.numel() for p in module.parameters()) == 20
    assert sorted(module.state_dict()) == sorted(prog.graph("M").weights()) == ["l.bias", "l.weight"]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    got, want = _torch_vs_numpy(prog, module, "M", x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    w, b = (module.state_dict()[k].numpy() for k in ("l.weight", "l.bias"))
    y = x
    for _ in range(3):
        y = y @ w.T + b
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-6)


def test_shared_layer_used_alone_and_repeated(tmp_path):
    # the let layer applied once, then repeated: still one weight set
    spec = """\
model M(x: float[N, 4]) -> float[N, 4] {
    let l = linear(4)
    return x -> l -> tanh -> l * 2 -> tanh
}
"""
    prog = netc.compile_file(_spec(tmp_path, spec))
    module = prog.to_torch("M")
    assert sum(p.numel() for p in module.parameters()) == prog.summary("M").params == 20
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    got, want = _torch_vs_numpy(prog, module, "M", x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# -- item 5: sizes are code built from the symbolic expression, not text substitution ---------------

CLASHING_SYMBOLS = {
    # a symbol named `shape`, replaced inside the code of a longer one (`a.a.shape[0][1]`)
    "shape": """\
model M(a: float[shape, widths, 2]) -> float[shape * widths * 2] {
    return a -> reshape(shape * widths * 2) -> relu
}
""",
    # a symbol named like the renamed input its sizes are read from (`layer` is `layer_1` in
    # the forward: `layer_1.shape[1].shape[2]`)
    "input": """\
model M(layer: float[N, layer_1, columns_]) -> float[N, layer_1 * columns_] {
    return layer -> reshape(N, layer_1 * columns_) -> relu
}
""",
}


def test_clashing_symbol_names_give_the_right_sizes(tmp_path):
    for key, text in CLASHING_SYMBOLS.items():
        prog = netc.compile_file(_spec(tmp_path, text, f"{key}.net"))
        src = prog.torch_source("M")
        assert "].shape" not in src and "][" not in src and ".a." not in src, src
        x = np.random.default_rng(2).standard_normal((5, 4, 3 if key == "input" else 2)).astype(np.float32)
        got, want = _torch_vs_numpy(prog, prog.to_torch("M"), "M", x)
        assert got.shape == want.shape == ((5, 12) if key == "input" else (40,))
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, np.maximum(x.reshape(got.shape), 0))


def test_dim_code_is_built_from_terms():
    from netc.compiler.dims import code, sym

    shape, width = sym("shape"), sym("width")
    d = (shape * width + 1) // 2 - 3 * shape
    reads = {"shape": "x.shape[0]", "width": "x.shape[1]"}
    assert code(d, reads.__getitem__) == "-3*x.shape[0] + (x.shape[0]*x.shape[1] + 1) // 2"
    assert code(d, str) == str(d)
    assert eval(code(d, reads.__getitem__), {"x": np.zeros((7, 5))}) == (35 + 1) // 2 - 21


_SEED_SCRIPT = """\
import hashlib, sys
import netc
for path in sys.argv[1:]:
    prog = netc.compile_file(path)
    for text in (prog.torch_source(), prog.optimized(2).torch_source(), prog.numpy_source()):
        print(path, hashlib.sha256(text.encode()).hexdigest())
"""


def test_emitted_source_does_not_depend_on_the_hash_seed(tmp_path):
    import os
    import subprocess
    import sys

    # five symbols of one length: their order in a set decides which is substituted first
    spec = _spec(tmp_path, """\
model M(a: float[shape, width, depth, count, 2]) -> float[shape * width * depth * count * 2] {
    return a -> reshape(shape * width * depth * count * 2) -> relu
}
""")
    paths = [spec, "examples/lenet.net", "examples/gpt2.net"]
    outs = set()
    for seed in ("0", "1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        run = subprocess.run([sys.executable, "-c", _SEED_SCRIPT, *paths], env=env, capture_output=True, text=True, check=False,
                             timeout=120)
        assert run.returncode == 0, run.stderr
        outs.add(run.stdout)
    assert len(outs) == 1, outs


# -- item 8: to_torch from many threads ---------------------------------------------------------------

def test_to_torch_from_many_threads(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("NETC_CACHE", str(tmp_path / "cache"))  # an empty cache: the threads race to write it
    # specs of their own (no earlier test has imported their modules), four at once
    spec = "model M(x: float[N, 4]) -> float[N, {k}] {{\n    return x -> linear(4, bias=false) -> linear({k})\n}}\n"
    progs = [netc.compile_file(_spec(tmp_path, spec.format(k=k), f"s{k}.net")) for k in range(1, 5)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        modules = list(pool.map(lambda i: progs[i % 4].to_torch("M"), range(64)))
    for k in range(1, 5):
        mine = modules[k - 1::4]
        assert all(type(m) is type(mine[0]) for m in mine)  # one import of each module
        assert [p.shape[0] for p in mine[0].parameters()][-2:] == [k, k]
    assert len({type(m) for m in modules}) == 4
    assert sorted(p.name for p in (tmp_path / "cache" / "torch").glob("*.py")) == sorted(
        type(m).__module__ + ".py" for m in modules[:4])


def test_a_cut_short_cache_file_is_written_again(tmp_path, monkeypatch):
    from netc.runtime.torch_modules import load_source

    monkeypatch.setenv("NETC_CACHE", str(tmp_path / "cache"))
    source = "X = 1\n\n\ndef f():\n    return X + 1\n"
    name = "netc_generated_cut_" + __import__("hashlib").sha256(source.encode()).hexdigest()[:16]
    (tmp_path / "cache" / "torch").mkdir(parents=True)
    (tmp_path / "cache" / "torch" / f"{name}.py").write_text(source[:9])  # `X = 1\n\n\nd`: a write cut short
    assert load_source(source, stem="cut").f() == 2
    assert (tmp_path / "cache" / "torch" / f"{name}.py").read_text() == source


# -- item 10: output files are written whole, never over an input, `-o -` is stdout --------------------

def _cli(*args: str) -> int:
    from netc.cli import main

    return main(list(args))


def _two_files(tmp_path) -> tuple[str, str]:
    """A spec and the file it imports."""
    lib = _spec(tmp_path, SHARED_REPEAT, "lib.net")
    spec = _spec(tmp_path, 'import "lib.net"\nmodel W(x: float[N, 4]) -> float[N, 4] {\n    return x -> M -> relu\n}\n')
    return spec, lib


def test_output_never_overwrites_the_spec_or_an_import(tmp_path, capsys):
    spec, lib = _two_files(tmp_path)
    before = {p: Path(p).read_text() for p in (spec, lib)}
    for target in (spec, lib, str(tmp_path / "." / "lib.net")):
        for cmd in (["compile", spec, "--backend", "torch"], ["compile", spec, "--backend", "numpy"],
                    ["render", spec, "--format", "dot"]):
            assert _cli(*cmd, "-o", target) == 2, (cmd, target)
            err = capsys.readouterr().err
            assert "will not overwrite" in err and "Traceback" not in err, err
    assert {p: Path(p).read_text() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib.net", "spec.net"]  # no temporary file left


def test_dash_output_is_stdout(tmp_path, capsys, monkeypatch):
    spec, _ = _two_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _cli("compile", spec, "--backend", "torch", "-o", "-") == 0
    out = capsys.readouterr().out
    assert out.startswith("# Generated by netc from spec.net") and "class W(nn.Module)" in out
    assert _cli("compile", spec, "--backend", "numpy", "-o", "-") == 0
    assert "def forward(weights, x):" in capsys.readouterr().out
    assert not (tmp_path / "-").exists()


def test_a_failed_write_leaves_the_old_file(tmp_path):
    import subprocess
    import sys

    # the child may write no file over 2000 bytes: the emitted source is longer, so its write fails
    # part-way (EFBIG), as on a full disk
    limited = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
               "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000)); "
               "from netc.cli import main; sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "model.py"
    out.write_text("# the previous output\n")
    out.chmod(0o640)
    run = subprocess.run([sys.executable, "-c", limited, "compile", "examples/resnet18.net", "--backend", "torch",
                          "-o", str(out)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"netc: error: cannot write {out}: File too large"), run.stderr
    assert out.read_text() == "# the previous output\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]
    # and without the limit it is replaced whole, keeping its mode
    assert _cli("compile", "examples/resnet18.net", "--backend", "torch", "-o", str(out)) == 0
    assert out.read_text() == netc.compile_file("examples/resnet18.net").torch_source()
    assert out.stat().st_mode & 0o777 == 0o640
