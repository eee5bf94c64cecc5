"""``let`` of a block instance: ``let tower = Tower(64)`` applied to two inputs shares all of
the block's weights: one module called twice in torch, one set of weights in NumPy and in
the summary, each use drawn with the sharing named, and -O2 keeps it."""

from __future__ import annotations

import numpy as np
import torch
from netc.runtime.parity import verify

import netc

SIAMESE = """
block Tower(x: [N, F], width: int) {
    let proj = linear(width)
    h = x -> proj -> relu -> batchnorm
    h = h + (h -> proj -> tanh) * 0.5
    return h -> linear(width // 2) -> layernorm
}

model Siamese(a: float[N, 32], b: float[N, 32]) -> float[N, 1] {
    let tower = Tower(32)
    ea = a -> tower
    eb = b -> tower
    d = ea - eb
    return sum(d * d, dim=-1)[:, None] -> sqrt
}
"""
TOWER_PARAMS = (32 * 32 + 32) + 2 * 32 + (32 * 16 + 16) + 2 * 16


def compile_text(tmp_path, text: str):
    path = tmp_path / "spec.net"
    path.write_text(text)
    return netc.compile_file(path)


def test_one_module_applied_twice(tmp_path):
    prog = compile_text(tmp_path, SIAMESE)
    src = prog.torch_source("Siamese")
    assert src.count("self.tower = Tower()") == 1 and "class Tower2" not in src
    assert "self.tower(a)" in src and "self.tower(b)" in src
    m = prog.to_torch("Siamese").eval()
    assert {k.split(".")[0] for k in m.state_dict()} == {"tower"}
    assert sum(p.numel() for p in m.parameters()) == TOWER_PARAMS
    x = torch.randn(4, 32)
    assert torch.equal(m(x, x), torch.zeros(4, 1))  # the same weights on both sides
    assert m(x, torch.randn(4, 32)).abs().min() > 0


def test_counted_once_in_summary(tmp_path):
    s = compile_text(tmp_path, SIAMESE).summary("Siamese")
    assert s.params == TOWER_PARAMS
    rows = {r.name: r for r in s.rows}
    assert rows["tower"].params == TOWER_PARAMS and rows["tower_1"].params == 0
    assert rows["tower_1.linear"].macs == rows["tower.linear"].macs  # each use still does the work


def test_torch_equals_numpy_with_one_set_of_weights(tmp_path):
    prog = compile_text(tmp_path, SIAMESE)
    torch.manual_seed(0)
    m = prog.to_torch("Siamese").eval()
    with torch.no_grad():
        for k, v in m.state_dict().items():
            if k.endswith("running_var"):
                v.uniform_(0.5, 2.0)
            elif v.is_floating_point():
                v.normal_(0, 0.3)
    ex = prog.to_numpy("Siamese", weights=m.state_dict())
    a, b = np.random.default_rng(0).standard_normal((2, 3, 32)).astype(np.float32)
    want = m(torch.from_numpy(a), torch.from_numpy(b)).detach().numpy()
    got = ex(a, b)
    got = got[0] if isinstance(got, (list, tuple)) else got
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.abs(want).min() > 1e-2
    for p in (prog, prog.optimized(2)):
        for v in verify(p, "Siamese", dtype="float64"):
            assert v.ok


def test_o2_keeps_the_sharing(tmp_path):
    prog = compile_text(tmp_path, SIAMESE)
    torch.manual_seed(0)
    m0 = prog.to_torch("Siamese", opt=0).eval()
    m2 = prog.to_torch("Siamese", opt=2).eval()
    src = prog.optimized(2).torch_source("Siamese")
    assert src.count("self.tower = Tower()") == 1 and "self.tower(b)" in src
    m2.load_state_dict(prog.convert_weights("Siamese", m0.state_dict(), opt=2))
    a, b = torch.randn(2, 3, 32)
    torch.testing.assert_close(m2(a, b), m0(a, b), rtol=1e-5, atol=1e-6)


def test_render_names_the_sharing(tmp_path):
    prog = compile_text(tmp_path, SIAMESE)
    from pathlib import Path

    text = Path(prog.render("Siamese", str(tmp_path / "s.svg"))).read_text()
    assert "shares the weights of tower" in text and "weights of tower.linear" in text
    folded = Path(prog.render("Siamese", str(tmp_path / "f.svg"), depth=1)).read_text()
    assert folded.count("weights of tower") == 1


def test_repeated_shared_block_and_mismatched_use(tmp_path):
    prog = compile_text(tmp_path, "block B(x: [N, D]) {\n    return x -> linear(D) -> relu\n}\n"
                                  "model M(x: float[N, 16]) {\n    let b = B()\n    return x -> b * 3\n}\n")
    assert prog.summary("M").params == 16 * 16 + 16
    m = prog.to_torch("M")
    assert prog.torch_source("M").count("self.b(") == 3
    for v in verify(prog, "M", dtype="float64"):
        assert v.ok
    assert sum(p.numel() for p in m.parameters()) == 272
