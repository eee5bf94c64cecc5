"""`netc import`: real models exported to ONNX here (random weights, nothing downloaded) come
back as short specs with their repeated blocks found, the original's parameter count, and
the original's outputs in ONNX Runtime when compiled to torch and to NumPy with the imported
weights. What a spec cannot express is refused naming the ONNX node.

Sizes are small to keep the file fast: 32 x 32 images, 10 classes for the CNNs; ViT is
torchvision's vit_b_16 itself at 224 x 224 (about 8 s); GPT-2 is GPT2LMHeadModel with 4
layers of width 32.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from cli_helpers import run_cli
from netc.frontends.errors import ImportRefused
from netc.runtime.weights import numpy_to_state_dict
from onnx import TensorProto, helper

import netc

TOL = 1e-4


def export(module, inputs, **kw) -> bytes:
    buf = io.BytesIO()
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # nn.MultiheadAttention as its ops, not one fused kernel
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), inputs, buf, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE,
                              do_constant_folding=False, **kw)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    return buf.getvalue()


def shake_batchnorms(module) -> None:
    """Running statistics and affine terms away from their defaults, so that they matter."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)


def params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def round_trip(imported, model_bytes: bytes, feeds: dict, original_params: int, tmp_path, monkeypatch):
    """`netc check` with the original's count; torch and NumPy equal ONNX Runtime."""
    spec = tmp_path / "imported.net"
    spec.write_text(imported.text)
    code, out, err = run_cli("check", str(spec), cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0, err
    assert f"params {original_params:,}" in out, out
    # short: at most a fifth of the ONNX nodes in lines (Identity nodes, which the exporter adds for
    # weights equal at initialisation, not counted)
    nodes = [n for n in onnx.load_from_string(model_bytes).graph.node if n.op_type != "Identity"]
    assert imported.lines * 5 <= len(nodes), (imported.lines, len(nodes))
    want = ort.InferenceSession(model_bytes).run(None, feeds)[0]
    assert np.abs(want).max() > 1e-2  # outputs that say something
    prog = netc.compile_file(str(spec))
    net = prog.to_torch(imported.model).eval()
    net.load_state_dict(numpy_to_state_dict(imported.weights))
    with torch.no_grad():
        got = net(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    assert np.abs(got - want).max() <= TOL
    got_np = prog.to_numpy(imported.model, weights=imported.weights)(*feeds.values())
    assert np.abs(np.asarray(got_np) - want).max() <= TOL
    return prog


def image(seed=0, n=1):
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)


def model_lines(text: str, model: str) -> str:
    return text[text.index(f"model {model}"):]


def test_resnet18_has_one_residual_block_in_four_stages(tmp_path, monkeypatch):
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=10)
    shake_batchnorms(m)
    data = export(m, (torch.from_numpy(image()),), input_names=["image"])
    imported = netc.import_onnx(data, name="ResNet18")
    round_trip(imported, data, {"image": image()}, params(m), tmp_path, monkeypatch)
    # one basic block for all eight (layer1's two as `* 2`), its shortcut projection optional
    (name, (uses, copies)), = imported.blocks.items()
    assert (uses, copies) == (7, 8) and f"{name}(64, 1) * 2" in imported.text
    body = imported.text[imported.text.index(f"block {name}("):]
    body = body[:body.index("}")]
    assert "skip = if C == out and stride == 1 then x else x -> conv2d(out, 1, stride=stride" in body
    assert "y + skip" in body  # the residual connection
    for stage in ("64, 1", "128, 2", "256, 2", "512, 2"):  # four stages
        assert f"{name}({stage})" in model_lines(imported.text, "ResNet18")


def test_mobilenet_v2_round_trips_with_its_inverted_residuals(tmp_path, monkeypatch):
    torch.manual_seed(0)
    m = torchvision.models.mobilenet_v2(num_classes=10)
    shake_batchnorms(m)
    data = export(m, (torch.from_numpy(image()),), input_names=["image"])
    imported = netc.import_onnx(data, name="MobileNetV2")
    round_trip(imported, data, {"image": image()}, params(m), tmp_path, monkeypatch)
    # features.2-17, with and without the residual: one inverted-residual block, its expansion
    # written from the input's width, the `+` where the shape allows it
    (name, (_, copies)), = imported.blocks.items()
    assert copies == 16 and "conv2d(C * 6, 1, bias=false)" in imported.text
    assert "return if stride == 1 and C == out then x + y else y" in imported.text
    assert f"{name}(1, 64) * 3" in imported.text


def test_vit_b_16_has_one_encoder_block_times_12(tmp_path, monkeypatch):
    """torchvision's vit_b_16 itself (86,567,656 parameters, 224 x 224)."""
    torch.manual_seed(0)
    m = torchvision.models.vit_b_16()
    with torch.no_grad():  # torchvision starts the head at 0 and the class token at 0
        torch.nn.init.normal_(m.heads.head.weight, std=0.02)
        torch.nn.init.normal_(m.class_token)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    data = export(m, (torch.from_numpy(x),), input_names=["image"])
    imported = netc.import_onnx(data, name="ViT")
    assert params(m) == 86_567_656
    round_trip(imported, data, {"image": x}, params(m), tmp_path, monkeypatch)
    (name, (uses, copies)), = imported.blocks.items()
    assert (uses, copies) == (1, 12) and f"{name} * 12" in imported.text
    assert "self_attention(12)" in imported.text and "param class_token: [1, 1, 768]" in imported.text


class _Logits(torch.nn.Module):
    """GPT-2 given an all-ones attention mask (Hugging Face's mask code for a missing mask uses
    torch.diff, which the TorchScript exporter cannot write), returning the logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(ids, attention_mask=torch.ones_like(ids)).logits


def test_gpt2_has_one_transformer_block_times_4_and_a_tied_head(tmp_path, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=4, n_embd=32, n_head=2, n_positions=64, vocab_size=100, use_cache=False,
                     bos_token_id=0, eos_token_id=0)
    m = GPT2LMHeadModel(cfg)
    ids = np.random.default_rng(0).integers(0, 100, (1, 8))
    data = export(_Logits(m), (torch.from_numpy(ids),), input_names=["input_ids"])
    imported = netc.import_onnx(data, name="GPT2")
    round_trip(imported, data, {"input_ids": ids}, params(m), tmp_path, monkeypatch)
    (name, (uses, copies)), = imported.blocks.items()
    assert (uses, copies) == (1, 4) and f"{name} * 4" in imported.text
    assert "self_attention(2, causal=true)" in imported.text
    assert 'gelu(approximate="tanh")' in imported.text
    assert "unembed(wte)" in imported.text  # the output projection is the token embedding
    # --dynamic N,T: the same spec over symbolic sizes runs at another batch and length
    dynamic = netc.import_onnx(data, name="GPT2", dynamic=["N", "T"])
    assert "model GPT2(input_ids: int[N, T]) -> float[N, T, 100]" in dynamic.text
    (tmp_path / "dynamic.net").write_text(dynamic.text)
    net = netc.compile_file(str(tmp_path / "dynamic.net")).to_torch("GPT2").eval()
    net.load_state_dict(numpy_to_state_dict(dynamic.weights))
    ids = torch.from_numpy(np.random.default_rng(1).integers(0, 100, (2, 5)))
    with torch.no_grad():
        assert (net(ids) - m.eval()(ids).logits).abs().max() <= TOL


def test_import_torch_resnet18_from_the_command_line(tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    code, out, err = run_cli("import", "--torch", "torchvision.models:resnet18", "--input-shape", "1,3,32,32",
                             "-o", "r.net", "--weights", "r.safetensors", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0, err
    torch.manual_seed(0)  # what the command built
    original = torchvision.models.resnet18().eval()
    text = (tmp_path / "r.net").read_text()
    code, out, err = run_cli("check", "r.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0 and f"params {params(original):,}" in out, (out, err)
    assert re.search(r"\w+\(64, 1\) \* 2", text) and len(re.findall(r"^block ", text, re.MULTILINE)) == 1
    prog = netc.compile_file(str(tmp_path / "r.net"))
    model = prog.models[0]
    net = prog.to_torch(model).eval()
    net.load_state_dict(numpy_to_state_dict(load_file(str(tmp_path / "r.safetensors"))))
    x = torch.from_numpy(image(3))
    with torch.no_grad():
        want = original(x).numpy()
        assert np.abs(net(x).numpy() - want).max() <= TOL
    got = prog.to_numpy(model, weights=load_file(str(tmp_path / "r.safetensors")))(x.numpy())
    assert np.abs(np.asarray(got) - want).max() <= TOL


def test_import_then_render_and_named_dims(tmp_path, monkeypatch):
    """`netc import m.onnx -o m.net && netc render m.net -o m.svg`; a dim named in ONNX stays a
    symbol of the spec, and the spec runs at another batch size."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                            torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                            torch.nn.Flatten(), torch.nn.Linear(8 * 32 * 32, 5))
    shake_batchnorms(m)
    data = export(m, (torch.from_numpy(image()),), input_names=["image"], dynamic_axes={"image": {0: "batch"}})
    (tmp_path / "m.onnx").write_bytes(data)
    code, _, err = run_cli("import", "m.onnx", "-o", "m.net", "--weights", "m.npz", cwd=tmp_path,
                             monkeypatch=monkeypatch)
    assert code == 0, err
    code, _, err = run_cli("render", "m.net", "-o", "m.svg", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0, err
    assert (tmp_path / "m.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    text = (tmp_path / "m.net").read_text()
    assert "image: float[batch, 3, 32, 32]" in text and "-> float[batch, 5]" in text
    prog = netc.compile_file(str(tmp_path / "m.net"))
    x = image(5, n=3)
    want = ort.InferenceSession(data).run(None, {"image": x})[0]
    got = prog.to_numpy(prog.models[0], weights=str(tmp_path / "m.npz"))(x)
    assert np.abs(np.asarray(got) - want).max() <= TOL


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _t(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _branch(op):
    return helper.make_graph([helper.make_node(op, ["x"], ["b"])], op, [], [_t("b", [1, 4])])


REFUSED = {
    "unsupported op": (_model([helper.make_node("Hardmax", ["x"], ["y"], name="odd_one")], [_t("x", [1, 4])],
                              [_t("y", [1, 4])]), "ONNX op Hardmax (node `odd_one`)"),
    "If": (_model([helper.make_node("If", ["c"], ["y"], name="branchy", then_branch=_branch("Relu"),
                                    else_branch=_branch("Neg"))],
                  [_t("x", [1, 4]), _t("c", [], TensorProto.BOOL)], [_t("y", [1, 4])]),
           "ONNX If node `branchy`"),
    "Loop": (_model([helper.make_node("Loop", ["n", "", "x"], ["y"], name="loopy", body=helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]), helper.make_node("Relu", ["xi"], ["xo"])], "body",
        [_t("i", [], TensorProto.INT64), _t("cond", [], TensorProto.BOOL), _t("xi", [1, 4])],
        [_t("cond_out", [], TensorProto.BOOL), _t("xo", [1, 4])]))],
        [_t("x", [1, 4]), _t("n", [], TensorProto.INT64)], [_t("y", [1, 4])]), "ONNX Loop node `loopy`"),
    "dynamic reshape": (_model([helper.make_node("Reshape", ["x", "s"], ["y"], name="reshaper")],
                               [_t("x", [2, 6]), _t("s", [2], TensorProto.INT64)], [_t("y", [3, 4])]),
                        "dynamic reshape: ONNX Reshape node `reshaper`"),
    "invalid model": (_model([helper.make_node("Relu", ["nowhere"], ["y"], name="dangling")], [_t("x", [1, 4])],
                             [_t("y", [1, 4])]), "not a valid ONNX model"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_a_spec_cannot_express_is_refused_naming_the_node(case, tmp_path, monkeypatch):
    model, needle = REFUSED[case]
    with pytest.raises(ImportRefused) as e:
        netc.import_onnx(model.SerializeToString())
    assert needle in str(e.value)
    onnx.save(model, str(tmp_path / "bad.onnx"))
    code, _, err = run_cli("import", "bad.onnx", "-o", "bad.net", cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 1 and err.startswith("bad.onnx: error: ") and needle in err, err
    assert "Traceback" not in err and not (tmp_path / "bad.net").exists()


def test_layer_norm_and_gelu_written_out_are_recognised(tmp_path):
    """Opset 16 has no LayerNormalization or Gelu: the exporter writes their math, which comes
    back as `layernorm` (its scale and shift as weights) and `gelu`."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.GELU(), torch.nn.Linear(16, 4))
    with torch.no_grad():
        m[1].weight.uniform_(0.5, 1.5)
        m[1].bias.uniform_(-1, 1)
    x = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)
    data = export(m, (torch.from_numpy(x),), input_names=["x"], opset_version=16)
    assert {"ReduceMean", "Erf"} <= {n.op_type for n in onnx.load_from_string(data).graph.node}
    imported = netc.import_onnx(data, name="Mlp")
    assert "return x -> linear(16) -> layernorm -> gelu -> linear(4)" in imported.text
    (tmp_path / "mlp.net").write_text(imported.text)
    prog = netc.compile_file(str(tmp_path / "mlp.net"))
    got = prog.to_numpy(imported.model, weights=imported.weights)(x)
    assert np.abs(np.asarray(got) - ort.InferenceSession(data).run(None, {"x": x})[0]).max() <= TOL

