"""Fusions and blocks. fuse_elementwise inside blocks: a chain in a block's body fuses in
every instance of it, with the -O0 numbers in torch and NumPy; a value that crosses a
block's boundary and has another reader is reported as read twice (the reason that stops
it), never as a block boundary; GPT-2's -O2 report has no block-boundary skips.

Across a block's result: an activation after a block, the only reader of its result, fuses
into the node that computes it (a ResNet ConvBN's convolution; a chain ending the block) as
an epilogue of that block instance; the block keeps one torch class (the activation is a
constructor argument), and the numbers and gradients are -O0's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from netc.compiler.passes import format_report
from netc.runtime.torch_modules import load_source

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


MINI_RESNET = """
import "std/resnet.net"

model Mini(image: float[N, 3, 16, 16]) -> float[N, 16, 8, 8] {
    return image -> ConvBN(8) -> relu -> Basic(8) -> Basic(16, stride=2) -> Basic(16)
}
model Shared(image: float[N, 3, 8, 8]) -> float[N, 8, 8, 8] {
    y = image -> ConvBN(8)
    return relu(y) + y        # the result of ConvBN has a second reader: no fusion
}
"""


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> netc.Program:
    path = tmp_path_factory.mktemp("xfuse") / "mini.net"
    path.write_text(MINI_RESNET)
    return netc.compile_file(path)


def _classes(src: str) -> list[str]:
    return [line for line in src.splitlines() if line.startswith("class ")]


def _bn_stats(net: torch.nn.Module) -> None:
    for mod in net.modules():  # non-trivial running statistics, so that folding them matters
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)


def test_relu_after_convbn_fuses_across_its_result(mini):
    opt = mini.optimized(2)
    report = format_report(opt.reports["Mini"])
    across = [line for line in report.splitlines() if "across the result of ConvBN" in line]
    assert len(across) == 4 and all("rewrote" in line and "fused relu" in line for line in across), report
    assert "different blocks" not in report and "result of a model or block" not in report
    g = opt.graph("Mini")
    assert sum(n.op == "conv2d" and n.attrs.activation == "relu" for n in g.nodes()) == 4
    assert not any(n.op == "relu" for n in g.nodes())
    src = opt.torch_source("Mini")
    assert _classes(src) == _classes(mini.torch_source("Mini"))  # one ConvBN class, as at -O0
    assert "    def __init__(self, C, out, k, stride, activation=None):" in src
    assert "        self.activation = nn.Identity() if activation is None else activation" in src
    assert "        return self.activation(conv2d)" in src
    assert "self.conv_bn = ConvBN(out, out, 3, 1, activation=nn.ReLU(inplace=True))" in src
    assert "self.conv_bn_1 = ConvBN(out, out, 3, 1)\n" in src
    convbn = load_source(src, "mini").ConvBN(4, 6, 3, 1, activation=torch.nn.ReLU())  # a class, usable alone
    assert (convbn(torch.randn(2, 4, 5, 5)) >= 0).all()


def test_a_second_reader_stops_it(mini):
    report = format_report(mini.optimized(2).reports["Shared"])
    assert "relu `relu` not fused into conv2d `y.conv2d`: `y.conv2d` is also read by `add`" in report
    assert not mini.optimized(2).graph("Shared").blocks["y"].epilogue


def test_across_the_result_gives_the_O0_numbers_and_gradients(mini):
    torch.manual_seed(0)
    m0 = mini.to_torch("Mini").eval()
    _bn_stats(m0)
    m2 = mini.to_torch("Mini", opt=2).eval()
    m2.load_state_dict(mini.convert_weights("Mini", m0.state_dict(), 2))
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16))
    with torch.no_grad():
        want = m0(torch.from_numpy(x).float()).numpy()
        got = m2(torch.from_numpy(x).float()).numpy()
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())
    w64 = {k: v.double().numpy() for k, v in m0.state_dict().items()}
    o0 = mini.to_numpy("Mini", weights=w64)(x)
    o2 = mini.to_numpy("Mini", weights=w64, opt=2)(x)
    assert np.abs(o2 - o0).max() <= 1e-10 * max(1.0, np.abs(o0).max())
    # training: the relu applied in place inside ConvBN keeps the gradients of -O2 without the fusion
    plain = mini.optimized(2, disable=("fuse_activation",)).to_torch("Mini")
    fused = mini.to_torch("Mini", opt=2)
    fused.load_state_dict(plain.state_dict())
    xt = torch.from_numpy(x).float()
    for net in (plain, fused):
        net(xt).square().sum().backward()
    grads = dict(fused.named_parameters())
    for k, p in plain.named_parameters():
        assert torch.allclose(grads[k].grad, p.grad, rtol=1e-5, atol=1e-6), k


CHAINS = """
block Scale(x: [N, D]) {
    y = x -> linear(D)
    return y * 0.5 + x
}
block Res(x: [N, D]) {
    h = x -> linear(D)
    return h + x
}
block Neg(x: [N, D]) {
    return neg(x)
}
model M(x: float[N, 8]) -> float[N, 8] {
    a = x -> Scale -> sigmoid -> Scale
    b = a -> Res -> relu -> Res
    c = b -> Neg -> leaky_relu(0.2) -> Neg
    return (c -> Res -> Scale -> tanh) * 3.0
}
"""


def test_a_chain_continues_across_a_block_result(tmp_path):
    """A chain ending a block (Scale's mul+add; Res's add; Neg's neg) takes the activation
    after it, as that instance's epilogue; the block keeps one class; -O0's numbers."""
    (tmp_path / "m.net").write_text(CHAINS)
    prog = netc.compile_file(tmp_path / "m.net")
    opt = prog.optimized(2)
    g = opt.graph("M")
    epilogues = {p: b.epilogue for p, b in g.blocks.items() if b.epilogue}
    assert epilogues == {"scale": ((0, "sigmoid", None),), "res": ((0, "relu", None),),
                         "neg": ((0, "leaky_relu", 0.2),), "scale_2": ((0, "tanh", None),)}
    assert [s[0] for s in g.node("scale.add").attrs.steps] == ["mul", "add", "sigmoid"]
    report = format_report(opt.reports["M"])
    assert "add+relu (`res.add` -> `relu`) ==> fused_elementwise `res.add` across the result of Res `res`" in report
    assert "`res_1.add` -> `neg.neg` not fused: `res_1.add` is an input of block `neg`" in report
    src = opt.torch_source("M")
    assert _classes(src) == _classes(prog.torch_source("M"))
    assert "self.res = Res(activation=nn.ReLU(inplace=True))" in src and "self.res_1 = Res()" in src
    assert "self.neg = Neg(activation=nn.LeakyReLU(0.2))" in src
    assert "        add = h + x  # [N, 8]  m.net:8" in src  # as the instances without one write it
    torch.manual_seed(0)
    m0, m2 = prog.to_torch("M").eval(), opt.to_torch("M").eval()
    m2.load_state_dict(m0.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 8))
    with torch.no_grad():
        want = m0(torch.from_numpy(x).float()).numpy()
        np.testing.assert_allclose(m2(torch.from_numpy(x).float()).numpy(), want, rtol=1e-5, atol=1e-6)
    w64 = {k: v.double().numpy() for k, v in m0.state_dict().items()}
    np.testing.assert_allclose(prog.to_numpy("M", weights=w64, opt=2)(x), prog.to_numpy("M", weights=w64)(x),
                               rtol=1e-10, atol=1e-12)
