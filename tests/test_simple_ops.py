"""The simple ops of issue 12 inside whole specs: the new activations fuse like the old ones
(into a conv's ``activation``, or into one ``fused_elementwise``) with -O2 equal to -O0, and
pad, expand, broadcast_to and repeat with symbolic sizes give the same numbers in torch and
NumPy at several input sizes. (Shapes against torch: test_op_shapes.py; kernels against
torch: test_numpy_backend.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from netc.compiler.passes import format_report

import netc

ACT = """
model Act(x: float[N, 3, H, W]) -> float[N, 8, H, W] {
    h = x -> conv2d(8, 3, padding=1) -> relu6
        -> conv2d(8, 1) -> hardswish
        -> conv2d(8, 1) -> hardsigmoid
        -> conv2d(8, 1) -> gelu(approximate="tanh")
    return h * 8.0 -> sin -> cos -> rsqrt -> clamp(max=1.2)
}
"""

GROW = """
model Grow(x: float[N, C, H, W], s: float[N, C, 1, 1]) -> (p: float[N, C, 2 * H, W + 3],
        r: float[N, C, H + 2, W + 4], e: float[N, C, H, W], t: float[N, 2 * C, H, 3 * W],
        b: float[2, N, C, H, W], c: float[N, C, H - 1, W - 2]) {
    p = x -> pad((1, 2, 0, H), value=0.5)
    r = x -> pad((2, 2, 1, 1), mode="reflect")
    e = x + (s -> expand(-1, -1, H, W))
    t = x -> repeat(1, 2, 1, 3)
    b = s -> broadcast_to(2, N, C, H, W)
    c = x -> pad((-1, -1, 0, -1), mode="constant")
    return p, r, e, t, b, c
}
"""


def compile_text(tmp_path, text: str):
    spec = tmp_path / "m.net"
    spec.write_text(text)
    return netc.compile_file(spec)


def test_new_activations_fuse_and_agree(tmp_path):
    prog = compile_text(tmp_path, ACT)
    report = format_report(prog.optimized(2).reports["Act"])
    for act in ("relu6", "hardswish", "hardsigmoid"):
        assert f"fused {act} `" in report, report
    nodes = [n for n in prog.optimized(2).graph("Act").nodes() if n.op not in ("input", "memory_format")]
    # the tanh gelu is no fused step (only default attrs are), nor is clamp (two attributes)
    assert [n.op for n in nodes] == ["conv2d"] * 4 + ["gelu", "fused_elementwise", "clamp"]
    assert nodes[5].attrs.steps == (("mul", 8.0), ("sin", None), ("cos", None), ("rsqrt", None))
    x = torch.randn(2, 3, 7, 5, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    base = prog.to_torch("Act").eval()
    fused = prog.to_torch("Act", opt=2).eval()
    fused.load_state_dict(prog.convert_weights("Act", base.state_dict(), opt=2))
    with torch.no_grad():
        want, got = base(x), fused(x)
    assert want.min() < 1.1 and (want == 1.2).any() and want.std() > 0.02  # the clamp bites, below it varies
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for opt in (0, 2):
        sd = base.state_dict() if opt == 0 else fused.state_dict()
        out = prog.to_numpy("Act", weights=sd, opt=opt)(x.numpy())
        np.testing.assert_allclose(out, want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sizes", [(1, 2, 3, 4), (2, 3, 5, 7)])
def test_symbolic_grow_ops_agree(tmp_path, sizes):
    n, c, h, w = sizes
    prog = compile_text(tmp_path, GROW)
    rng = np.random.default_rng(sum(sizes))
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    s = rng.standard_normal((n, c, 1, 1)).astype(np.float32)
    with torch.no_grad():
        want = [y.numpy() for y in prog.to_torch("Grow").eval()(torch.from_numpy(x), torch.from_numpy(s))]
    assert [y.shape for y in want] == [(n, c, 2 * h, w + 3), (n, c, h + 2, w + 4), (n, c, h, w),
                                       (n, 2 * c, h, 3 * w), (2, n, c, h, w), (n, c, h - 1, w - 2)]
    np.testing.assert_array_equal(want[0], np.pad(x, [(0, 0), (0, 0), (0, h), (1, 2)], constant_values=0.5))
    np.testing.assert_array_equal(want[1], np.pad(x, [(0, 0), (0, 0), (1, 1), (2, 2)], mode="reflect"))
    np.testing.assert_array_equal(want[3], np.tile(x, (1, 2, 1, 3)))
    np.testing.assert_array_equal(want[5], x[:, :, :-1, 1:-1])
    for opt in (0, 2):
        got = prog.to_numpy("Grow", opt=opt)(x, s)
        for g, y in zip(got, want):
            np.testing.assert_allclose(g, y, rtol=1e-6, atol=1e-6)
