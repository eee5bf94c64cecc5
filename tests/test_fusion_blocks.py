"""fuse_elementwise inside blocks: a chain in a block's body fuses in every instance of it,
with the -O0 numbers in torch and NumPy; a value that crosses a block's boundary and has
another reader is reported as read twice (the reason that stops it), never as a block
boundary; GPT-2's -O2 report has no block-boundary skips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from netc.compiler.passes import format_report

import netc

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
block Gate(x: [N, D]) {
    y = x -> linear(D)
    return sigmoid(y * 0.5 + x) * 2.0
}
block Res(x: [N, D]) {
    h = x -> linear(D)
    return relu(h + x)
}
model M(x: float[N, 8]) -> float[N, 8] {
    return x -> Gate -> Gate -> Res
}
"""


def test_chains_fuse_inside_blocks_with_the_same_numbers(tmp_path):
    (tmp_path / "m.net").write_text(SPEC)
    prog = netc.compile_file(tmp_path / "m.net")
    g = prog.optimized(2).graph("M")
    fused = [n for n in g.nodes() if n.op == "fused_elementwise"]
    assert sorted(n.block for n in fused) == ["gate", "gate_1", "res"]
    gate = next(n for n in fused if n.block == "gate")
    assert [s[0] for s in gate.attrs.steps] == ["mul", "add", "sigmoid", "mul"]
    report = format_report(prog.optimized(2).reports["M"])
    skips = [s for s in report.splitlines() if "skipped" in s and "fused_elementwise" not in s]
    assert any("`gate.mul_1` -> `gate_1.add` not fused: `gate.mul_1` is also read by `gate_1.y`" in s
               for s in skips), report
    assert "is a result of a model or block" not in report
    torch.manual_seed(0)
    m0 = prog.to_torch("M").eval()
    m2 = prog.to_torch("M", opt=2).eval()
    m2.load_state_dict(prog.convert_weights("M", m0.state_dict(), 2))
    x = np.random.default_rng(0).standard_normal((3, 8))
    with torch.no_grad():
        want = m0(torch.from_numpy(x).float()).numpy()
        np.testing.assert_allclose(m2(torch.from_numpy(x).float()).numpy(), want, rtol=1e-5, atol=1e-6)
    w64 = {k: v.double().numpy() for k, v in m0.state_dict().items()}
    o0 = prog.to_numpy("M", weights=w64)(x)
    np.testing.assert_allclose(prog.to_numpy("M", weights=w64, opt=2)(x), o0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(o0, want, rtol=1e-4, atol=1e-5)


def test_gpt2_report_has_no_block_boundary_skips():
    prog = netc.compile_file(ROOT / "examples" / "gpt2.net", {"layers": 2, "width": 32, "vocab": 100, "heads": 2,
                                                               "context": 64})
    report = format_report(prog.optimized(2).reports["GPT2"])
    assert "fused_elementwise" in report or "fuse_elementwise" in report
    assert "result of a model or block" not in report and "different blocks" not in report, report
    assert report.count("`add` -> `gpt2_block.0.add` not fused: `add` is also read by `gpt2_block.0.layernorm`") == 1  # the residual, read twice
