"""Layer initialisers: ``weight_init=`` / ``bias_init=`` on a layer and ``defaults`` for a
body and the blocks it applies, as ``nn.init`` calls in the emitted torch module (statistics of
the initial weights), torch against NumPy with those weights, and -O2 against -O0."""

from __future__ import annotations

import numpy as np
import torch
from netc.runtime.parity import verify

import netc

SPEC = """
block Mlp(x: [N, D], hidden: int) {
    return x -> linear(hidden) -> gelu -> linear(D, bias_init=full(0.5))
}

block Plain(x: [N, D]) {
    defaults weight_init=uniform(-0.25, 0.25)
    return x -> linear(D)
}

model M(x: float[N, 256]) -> float[N, 256] {
    h = x -> layernorm -> linear(2048, weight_init=normal(0.02), bias_init=zeros)
    defaults weight_init=normal(0.05), bias_init=zeros
    h = h -> Mlp(1024) -> linear(256) -> Plain -> layernorm
    seq, _ = h[:, None] -> lstm(32, bias_init=ones)
    return seq[:, 0] -> linear(256, weight_init=trunc_normal(0.01)) -> linear(256)
}
"""


def compile_text(tmp_path, text: str):
    path = tmp_path / "spec.net"
    path.write_text(text)
    return netc.compile_file(path)


def test_initial_weights_follow_the_spec(tmp_path):
    prog = compile_text(tmp_path, SPEC)
    torch.manual_seed(0)
    sd = prog.to_torch("M").state_dict()
    w = sd["linear.weight"]  # 2048 x 256: the std is within 2 % of 0.02
    assert w.shape == (2048, 256) and abs(w.std().item() - 0.02) < 0.0004 and abs(w.mean().item()) < 0.0005
    assert torch.equal(sd["linear.bias"], torch.zeros(2048))
    # `defaults` of the model reach the block (declared after the first layer: it holds for the whole body)
    assert abs(sd["mlp.linear.weight"].std().item() - 0.05) < 0.001
    assert torch.equal(sd["mlp.linear.bias"], torch.zeros(1024))
    assert torch.equal(sd["mlp.linear_1.bias"], torch.full((2048,), 0.5))  # the layer's own overrides
    assert abs(sd["linear_1.weight"].std().item() - 0.05) < 0.001
    # the block's own `defaults` override the model's for its weights, and keep its bias default
    pw = sd["plain.linear.weight"]
    assert pw.abs().max().item() <= 0.25 and abs(pw.std().item() - 0.5 / 12 ** 0.5) < 0.005
    assert torch.equal(sd["plain.linear.bias"], torch.zeros(256))
    # norms keep their ones and zeros; every lstm weight follows the default, its biases bias_init
    assert torch.equal(sd["layernorm.weight"], torch.ones(256)) and torch.equal(sd["layernorm_1.bias"], torch.zeros(256))
    assert abs(sd["lstm.weight_ih_l0"].std().item() - 0.05) < 0.002
    assert torch.equal(sd["lstm.bias_ih_l0"], torch.ones(128)) and torch.equal(sd["lstm.bias_hh_l0"], torch.ones(128))
    t = sd["linear_2.weight"]
    assert abs(t.std().item() - 0.01) < 0.0005  # torch's trunc_normal_ cuts at ±2 (absolute)
    assert abs(sd["linear_3.weight"].std().item() - 0.05) < 0.001


def test_a_block_instance_takes_initialisers_that_beat_its_own_defaults(tmp_path):
    spec = ("block B(x: [N, D]) {\n    defaults weight_init=zeros, bias_init=zeros\n    return x -> linear(D)\n}\n"
            "model M(x: float[N, 512]) {\n    return x -> B(weight_init=normal(0.02)) -> B\n}\n")
    prog = compile_text(tmp_path, spec)
    torch.manual_seed(0)
    sd = prog.to_torch("M").state_dict()
    assert abs(sd["b.linear.weight"].std().item() - 0.02) < 0.001 and torch.equal(sd["b.linear.bias"], torch.zeros(512))
    assert torch.equal(sd["b_1.linear.weight"], torch.zeros(512, 512))


def test_without_initialisers_torch_keeps_its_own(tmp_path):
    prog = compile_text(tmp_path, "model M(x: float[N, 768]) {\n    return x -> linear(768)\n}\n")
    torch.manual_seed(0)
    w = prog.to_torch("M").state_dict()["linear.weight"]
    assert abs(w.std().item() - 1 / (3 * 768) ** 0.5) < 0.001  # nn.Linear's kaiming-uniform
    assert "nn.init" not in prog.torch_source("M")


def test_emitted_source_starts_weights_after_each_layer(tmp_path):
    src = compile_text(tmp_path, SPEC).torch_source("M")
    assert ("        self.linear = nn.Linear(256, 2048)\n"
            "        nn.init.normal_(self.linear.weight, std=0.02)\n"
            "        nn.init.zeros_(self.linear.bias)\n") in src
    assert "nn.init.constant_(self.linear_1.bias, 0.5)" in src
    assert "nn.init.ones_(self.lstm.bias_hh_l0)" in src and "layernorm.weight" not in src


def test_torch_equals_numpy_with_initialised_weights(tmp_path):
    prog = compile_text(tmp_path, SPEC)
    for v in verify(prog, "M", dtype="float64"):
        assert v.ok and np.abs(v.outputs[0].value).max() > 1e-3


def test_o2_equals_o0_and_keeps_the_initialisers(tmp_path):
    prog = compile_text(tmp_path, SPEC)
    torch.manual_seed(0)
    m0 = prog.to_torch("M", opt=0).eval()
    torch.manual_seed(0)
    m2 = prog.to_torch("M", opt=2).eval()
    assert torch.equal(m2.state_dict()["linear.bias"], torch.zeros(2048))
    m2.load_state_dict(prog.convert_weights("M", m0.state_dict(), opt=2))
    x = torch.randn(3, 256)
    torch.testing.assert_close(m2(x), m0(x), rtol=1e-5, atol=1e-6)


def test_qkv_fusion_keeps_differently_started_linears_apart(tmp_path):
    spec = ("model M(x: float[N, 8]) {\n"
            "    return (x -> linear(8, weight_init=zeros)) + (x -> linear(8)) + (x -> linear(8))\n}\n")
    prog = compile_text(tmp_path, spec)
    src = prog.optimized(2).torch_source("M")
    assert "nn.init.zeros_(" in src
    sd = prog.to_torch("M", opt=2).state_dict()
    assert any(torch.equal(v, torch.zeros(8, 8)) for k, v in sd.items() if k.endswith("weight"))
