"""Emitted programs under attack (issue 17): a shared layer repeated, dimension symbols named
like emitted code, hash-seed independence, concurrent ``to_torch`` and how output files are
written. Each test here failed on the code before its fix."""

from __future__ import annotations

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
