"""The IR keeps the author's blocks and names: block instances are data (declaration,
arguments by parameter name, repeat index and count), values carry the names the spec gave
them, and the emitted code tells the truth about that structure.

The NumPy golden file of char_rnn is regenerated like the torch ones:
``NETC_UPDATE_GOLDEN=1 pytest tests/test_ir_blocks.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from netc.compiler.passes import optimize
from netc.runtime.torch_modules import load_source

import netc

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"

STAGE = """
block Stage(x: [N, C, H, W], heads: int, width: int) {
    return x -> conv2d(width, 3, padding=1) -> relu
}
model Net(image: float[N, 3, 32, 32]) -> float[N, 32, 32, 32] {
    return image -> Stage(16, 16) -> Stage(32, 32)
}
"""

RESIDUAL = """
block Res(x: [N, D]) {
    h = x -> linear(D) -> relu
    x = x + (h -> linear(D))
    return relu(x)
}
model Chain(x: float[N, 16]) -> float[N, 16] {
    y = x -> Res -> Res * 2
    return y
}
"""


def compile_text(tmp_path: Path, text: str, name: str = "spec.net") -> netc.Program:
    path = tmp_path / name
    path.write_text(text)
    return netc.compile_file(path)


# -- block instances are data ------------------------------------------------------------------

def test_block_instances_know_declaration_arguments_and_repeats():
    g = netc.compile_file(ROOT / "examples" / "resnet18.net").graph("ResNet18")
    stack = g.blocks["basic"]
    assert (stack.kind, stack.name, stack.count, stack.label) == ("stack", "Basic", 2, "Basic ×2")
    copy = g.blocks["basic.1"]
    assert (copy.kind, copy.name, copy.parent, copy.index) == ("block", "Basic", "basic", 1)
    assert copy.args == {"out": 64, "stride": 1}
    assert [name for name, _ in copy.inputs] == ["x"] and len(copy.outputs) == 1
    down = g.blocks["basic_1"]
    assert down.args == {"out": 128, "stride": 2} and down.env["C"] == 64
    inner = g.blocks["basic_1.conv_bn"]
    assert (inner.name, inner.parent, inner.args) == ("ConvBN", "basic_1", {"out": 128, "k": 3, "stride": 2})
    # every node knows its instance; the chain and the enclosing block come from the IR
    conv = g.node("basic.1.conv_bn.conv2d")
    assert conv.block == "basic.1.conv_bn"
    assert [b.path for b in g.chain(conv.block)] == ["basic", "basic.1", "basic.1.conv_bn"]
    assert g.block_of(conv.id) == "basic.1.conv_bn" and g.enclosing_block("basic") == ""


def test_op_copies_of_a_stack_carry_their_index(tmp_path):
    g = compile_text(tmp_path, "model M(x: float[N, 8]) -> float[N, 8] { return x -> linear(8) * 3 }").graph("M")
    assert g.blocks["linear"].kind == "stack" and g.blocks["linear"].count == 3
    assert [(n.block, n.index) for n in g.nodes() if n.op == "linear"] == [("linear", 0), ("linear", 1), ("linear", 2)]


# -- names the spec gave ------------------------------------------------------------------------

def test_assignment_targets_name_values(tmp_path):
    g = netc.compile_file(ROOT / "examples" / "char_rnn.net").graph("CharLSTM")
    cell = next(n for n in g.nodes() if n.op == "scan").attrs.cell.graph
    split = next(n for n in cell.nodes() if n.op == "split")
    assert split.names == ("i", "f", "g", "o")
    assert [name for _, ref in cell.outputs for name in [cell.producer(ref).name_of(ref[1])]] == ["h", "c"]
    # a block's values are named in the block, not by the statement that applies it
    res = compile_text(tmp_path, RESIDUAL).graph("Chain")
    assert res.producer(res.blocks["res"].outputs[0]).names == ()
    assert {n.name_of(0) for n in res.nodes() if n.op == "add"} == {"x"}


def test_cell_variables_are_named_as_the_spec_names_them():
    prog = netc.compile_file(ROOT / "examples" / "char_rnn.net")
    src = prog.torch_source("CharLSTM")
    assert "gates = linear + linear_1" in src
    assert "i, f, g, o = torch.split(gates, 128, dim=1)" in src
    assert "c = mul + mul_1" in src and "h = sigmoid_2 * tanh_1" in src and "return h, c" in src
    np_src = prog.numpy_source("CharLSTM")
    assert "i, f, g, o = split(gates, sizes=128, dim=1)" in np_src
    assert "c = add(mul_, mul_1)" in np_src and "return h, c" in np_src
    path = GOLDEN / "char_rnn_numpy.py"
    if os.environ.get("NETC_UPDATE_GOLDEN") == "1":
        path.write_text(np_src)
    assert np_src == path.read_text(), "char_rnn's NumPy program differs from its golden file"


def test_reused_names_keep_the_numbers(tmp_path):
    """A name taken over once its old value is dead (`c = ...` in the cell) computes the same
    as before: torch and NumPy agree on char_rnn and on a residual chain."""
    for prog, model in ((netc.compile_file(ROOT / "examples" / "char_rnn.net"), "CharLSTM"),
                        (compile_text(tmp_path, RESIDUAL), "Chain")):
        torch.manual_seed(0)
        m = prog.to_torch(model).double().eval()
        x = torch.randint(0, 96, (2, 5)) if model == "CharLSTM" else torch.randn(3, 16, dtype=torch.float64)
        want = m(x).detach().numpy()
        got = prog.to_numpy(model, weights={k: v.double() for k, v in m.state_dict().items()})(x.numpy())
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# -- block classes ------------------------------------------------------------------------------

def test_block_class_takes_the_parameters_it_uses_by_their_spec_names(tmp_path):
    prog = compile_text(tmp_path, STAGE)
    src = prog.torch_source("Net")
    assert "class Stage(nn.Module):" in src
    assert "def __init__(self, C, width):" in src  # heads is unused; C comes from the input's shape
    assert "nn.Conv2d(C, width, kernel_size=3, stride=1, padding=1)" in src
    assert "self.stage = Stage(3, 16)" in src and "self.stage_1 = Stage(16, 32)" in src
    stage = load_source(src, "stage").Stage(C=32, width=48)  # a width it was never instantiated with
    y = stage(torch.randn(2, 32, 8, 8))
    assert y.shape == (2, 48, 8, 8) and (y >= 0).all()


def test_resnet18_keeps_its_block_classes_at_O2():
    prog = netc.compile_file(ROOT / "examples" / "resnet18.net", defines={"classes": 10})

    def classes(src: str) -> list[str]:
        return [line.split("(")[0].removeprefix("class ") for line in src.splitlines() if line.startswith("class ")]

    o0, o2 = prog.torch_source("ResNet18"), prog.optimized(2).torch_source("ResNet18")
    assert classes(o2) == classes(o0) == ["ConvBN", "Basic", "Basic2", "ResNet18"]
    torch.manual_seed(0)
    m0 = prog.to_torch("ResNet18").eval()
    for mod in m0.modules():  # non-trivial running statistics, so that folding them matters
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    m2 = prog.to_torch("ResNet18", opt=2).eval()
    m2.load_state_dict(prog.convert_weights("ResNet18", m0.state_dict(), 2))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want, got = m0(x), m2(x)
    assert (got - want).abs().max().item() <= 1e-5 * max(1.0, want.abs().max().item())


def test_a_fusion_across_a_block_result_is_the_instances():
    """ResNet's relus after a ConvBN live in Basic (or the model), the ConvBN's parent: each
    fuses into the ConvBN's convolution as an epilogue of that ConvBN instance, not of the
    block: the second ConvBN of each Basic, whose result the residual add reads, has none."""
    g = netc.compile_file(ROOT / "examples" / "resnet18.net").graph("ResNet18")
    out = optimize(g, 2)
    fused = sorted(n.block for n in out.graph.nodes() if n.op == "conv2d" and n.attrs.activation == "relu")
    with_epilogue = sorted(p for p, b in out.graph.blocks.items() if b.epilogue)
    assert fused == with_epilogue and len(fused) == 9 and "conv_bn" in fused
    assert all(out.graph.blocks[p].epilogue == ((0, "relu", None),) for p in fused)
    assert not any(p.endswith(("conv_bn_1", "skip")) for p in fused)
    skipped = [str(c) for p, r in out.report if p.name == "fuse_activation" for c in r.skipped]
    assert skipped == []


@pytest.mark.parametrize("spec", sorted(p.name for p in (ROOT / "examples").glob("*.net")))
def test_O2_emits_the_block_classes_of_O0(spec):
    """A rewrite applies inside a block to every instance or to none: -O2 never splits a
    block's class (ResNet's ConvBN into ConvBN and ConvBN2) nor merges two."""
    prog = netc.compile_file(ROOT / "examples" / spec)

    def classes(src: str) -> list[str]:
        return [line for line in src.splitlines() if line.startswith("class ")]

    assert classes(prog.optimized(2).torch_source()) == classes(prog.torch_source())


SAME_PADDING = """
block Same(x: [N, C, H, W], k: int) {
    return x -> conv2d(8, k, padding=k // 2) -> relu
}
model Net(image: float[N, 3, 16, 16]) -> float[N, 8, 16, 16] {
    return image -> Same(3) -> Same(5)
}
"""


def test_sizes_the_spec_computes_are_computed_in_the_class(tmp_path):
    """A size no parameter equals is derived from the parameters as the spec derives it
    (``padding=k // 2``), so the class is right for any k, not only those instantiated."""
    src = compile_text(tmp_path, SAME_PADDING).torch_source("Net")
    assert "def __init__(self, C, k):" in src
    assert "nn.Conv2d(C, 8, kernel_size=k, stride=1, padding=k // 2)" in src
    same = load_source(src, "same").Same(C=4, k=7)  # a kernel size it was never built with
    assert same(torch.randn(2, 4, 9, 9)).shape == (2, 8, 9, 9)


def test_value_names_reach_the_summary_and_the_diagram():
    prog = netc.compile_file(ROOT / "examples" / "lenet.net")
    rows = {r.name: r for r in prog.summary("LeNet").rows}
    assert rows["maxpool2d_1"].value == "features" and rows["conv2d"].value is None
    assert rows["maxpool2d_1"].as_json()["value"] == "features"
    assert "features" in prog.diagram("LeNet").source  # the maxpool's box names its value


def test_a_model_result_from_a_block_goes_back_to_the_standard_layout_in_the_model(tmp_path):
    """-O2's use_channels_last turns a 4-d result back to the standard layout where the model
    reads it: a block's result is converted in the model, not inside the block (whose
    internal value the model cannot read). Found by the fuzz test at -O2."""
    prog = compile_text(tmp_path, """
block Res(x: [N, C, H, W], k: int = 3) {
    y = x -> conv2d(C, k, padding=k // 2) -> batchnorm
    return relu(y + x)
}
model Net(a: float[N, 1, 2, 2]) {
    a = a -> Res
    return a
}
""")
    g = prog.optimized(2).graph("Net")
    out = g.producer(g.outputs[0][1])
    assert out.op == "memory_format" and out.block == ""
    torch.manual_seed(0)
    m0 = prog.to_torch("Net").eval()
    m2 = prog.to_torch("Net", opt=2).eval()
    m2.load_state_dict(prog.convert_weights("Net", m0.state_dict(), 2))
    x = torch.randn(2, 1, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(m2(x), m0(x), rtol=1e-5, atol=1e-6)
