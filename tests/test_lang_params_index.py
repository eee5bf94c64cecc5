"""Learned free tensors (``param``) and subscripts (``x[:, 0]``): the shape rule against
NumPy's own indexing, torch against NumPy, -O2 against -O0, and a param's name, count and
initialisation in the torch module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from netc.runtime.parity import verify

import netc

SPEC = """
block Head(x: [N, T, D]) {
    param cls: [1, 1, D] = zeros
    param pos: [1, T + 1, D] = normal(0.02)
    param gamma: [D] = full(0.5)
    y = concat(cls + x[:, :1] * 0.0, x, dim=1) + pos
    return y * gamma
}

model M(x: float[N, 5, 64]) -> float[N, 64] {
    h = x -> Head
    return h[:, 1:][:, -1] + h[:, 0] + h[:, None, -3:-1][:, 0, 0] + h[:, ::2, None][:, 0, 0] + h[..., 3:4][:, 2]
}
"""


def compile_text(tmp_path, text: str, name: str = "spec.net"):
    path = tmp_path / name
    path.write_text(text)
    return netc.compile_file(path)


def test_param_is_a_named_counted_initialised_weight(tmp_path):
    prog = compile_text(tmp_path, SPEC)
    assert prog.summary("M").params == 64 + 6 * 64 + 64
    torch.manual_seed(0)
    m = prog.to_torch("M")
    sd = m.state_dict()
    assert set(sd) == {"h.cls", "h.pos", "h.gamma"}
    assert all(isinstance(p, torch.nn.Parameter) for p in m.parameters())
    assert torch.equal(sd["h.cls"], torch.zeros(1, 1, 64))
    assert torch.equal(sd["h.gamma"], torch.full((64,), 0.5))
    assert sd["h.pos"].shape == (1, 6, 64) and 0.015 < sd["h.pos"].std().item() < 0.025


def test_params_and_subscripts_torch_equals_numpy(tmp_path):
    prog = compile_text(tmp_path, SPEC)
    for v in verify(prog, "M", dtype="float64"):
        assert v.ok and v.outputs[0].value.shape == (2, 64)
        assert np.abs(v.outputs[0].value).max() > 1e-3  # not vacuous: the params reach the output


def test_params_and_subscripts_o2_equals_o0(tmp_path):
    prog = compile_text(tmp_path, SPEC)
    torch.manual_seed(0)
    m0 = prog.to_torch("M", opt=0).eval()
    m2 = prog.to_torch("M", opt=2).eval()
    m2.load_state_dict(m0.state_dict())
    x = torch.randn(3, 5, 64)
    torch.testing.assert_close(m2(x), m0(x), rtol=0, atol=0)


# each subscript on a float[2, 5, 7] input; the result shape must be NumPy's
SUBSCRIPTS = ["0", "-1", ":, 0", ":, -5", "..., 0", "..., :3", ":, 1:", ":, ::2", "1:, 1:4:2, -3:",
              ":, None", "None, ..., None", ":, :, None, 0", "...", ":, 2:100", "-100:, :-1"]


@pytest.mark.parametrize("sub", SUBSCRIPTS)
def test_subscript_shape_is_pythons(tmp_path, sub):
    prog = compile_text(tmp_path, f"model M(x: float[2, 5, 7]) {{\n    return x[{sub}]\n}}\n")
    x = np.arange(70, dtype=np.float64).reshape(2, 5, 7)
    want = eval(f"x[{sub}]", {"x": x})  # the same text means the same in Python
    [v] = verify(prog, "M", dtype="float64")
    assert v.ok and v.outputs[0].value.shape == want.shape


def test_symbolic_slices(tmp_path):
    prog = compile_text(tmp_path, "model M(x: float[N, T, 8]) {\n"
                                  "    return x[:, 1:], x[:, :-1], x[:, ::2], x[:, 0], x[:, -2:]\n}\n")
    shapes = [r.shape for r in prog.summary("M").rows if r.op == "index"]
    assert shapes == ["[N, T - 1, 8]", "[N, T - 1, 8]", "[N, (T + 1) // 2, 8]", "[N, 8]", "[N, 2, 8]"]
    for v in verify(prog, "M", dtype="float64", sizes={"N": 2, "T": 5}):
        assert v.ok


def test_cse_merges_equal_subscripts_and_dce_drops_unused(tmp_path):
    prog = compile_text(tmp_path, "model M(x: float[N, 4, 8]) -> float[N, 8] {\n"
                                  "    unused = x[:, 2]\n    return x[:, 0] + x[:, 0]\n}\n")
    src = prog.optimized(1).torch_source("M")
    assert src.count("x[:, 0]") == 1 and "x[:, 2]" not in src
