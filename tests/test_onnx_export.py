"""The ONNX backend (``backends/onnx``): every example exports, passes the ONNX checker,
ONNX's shape inference agrees with netc's shapes, and ONNX Runtime gives the torch
backend's numbers with the same weights, at -O0 and -O2 and at two sizes of each symbolic
dim; small specs cover each lowering family; the catalogue is covered or listed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from netc.backends.onnx.emit import lower_model
from netc.backends.onnx.table import LOWERINGS, UNSUPPORTED
from netc.compiler.dims import subs
from netc.compiler.source import SpecError
from netc.runtime.numpy_program import as_arrays
from netc.specs.catalogue import all_ops

import netc

ROOT = Path(__file__).resolve().parents[1]

# Each example model, with defines that keep the vocabularies, widths and depths small (the
# lowerings are the same; the test stays fast), and the sizes of its symbolic dims to run at:
# two batch sizes and two sequence lengths. Full-size models export the same way.
SIZES = [{"N": 1, "T": 4, "S": 6}, {"N": 3, "T": 7, "S": 3}]
IMAGES = [{"N": 1, "H": 32, "W": 40}, {"N": 2, "H": 36, "W": 32}]
# The CNNs cost seconds per image on this machine: they run their first sizes at -O0 and
# their second at -O2 (both batch sizes, one level each); VGG-11 one image at each.
BIG = [{"N": 1}, {"N": 2}]
ONE = [{"N": 1}, {"N": 1}]
PER_LEVEL = {"ResNet18", "VGG11", "MobileNetV2", "EfficientNetB0", "ConvNeXtTiny", "UNet"}
SMALL_TEXT = {"layers": "2", "width": "32", "vocab": "100", "heads": "2", "context": "64"}
EXAMPLES = [
    ("lenet.net", "LeNet", {}, SIZES),
    ("resnet18.net", "ResNet18", {"classes": "10"}, BIG),
    ("vgg11.net", "VGG11", {"classes": "10"}, ONE),
    ("dcgan.net", "Generator", {"ngf": "8"}, SIZES),
    ("dcgan.net", "Discriminator", {"ndf": "8"}, SIZES),
    ("autoencoder.net", "Encoder", {}, SIZES),
    ("autoencoder.net", "Decoder", {}, SIZES),
    ("char_rnn.net", "CharRNN", {}, SIZES),
    ("char_rnn.net", "CharLSTM", {}, SIZES),
    ("gru_classifier.net", "GRUClassifier", {"vocab": "300"}, SIZES),
    ("lstm_lm.net", "LSTMLanguageModel", {"vocab": "300", "dim": "64"}, SIZES),
    ("seq2seq.net", "Encoder", {"vocab": "300"}, SIZES),
    ("seq2seq.net", "Decoder", {"vocab": "300"}, SIZES),
    ("seq2seq_attention.net", "Seq2SeqAttention", {"src_vocab": "50", "tgt_vocab": "40", "hidden": "16"}, SIZES),
    ("transformer.net", "Transformer", {}, SIZES),
    ("gpt2.net", "GPT2", SMALL_TEXT, SIZES),
    ("bert.net", "Bert", {**SMALL_TEXT, "ff": "64"}, SIZES),
    ("llama.net", "Llama", {"layers": "2", "width": "32", "vocab": "100", "heads": "4", "kv_heads": "2",
                            "ff": "48"}, SIZES),
    ("vae.net", "VAE", {}, SIZES),
    ("vit_b16.net", "ViTB16", {"size": "32", "patch": "8", "width": "32", "layers": "2", "heads": "2",
                               "mlp": "64", "classes": "10"}, SIZES),
    ("mobilenet_v2.net", "MobileNetV2", {"classes": "10"}, IMAGES),
    ("efficientnet_b0.net", "EfficientNetB0", {"classes": "10"}, IMAGES),
    ("convnext_tiny.net", "ConvNeXtTiny", {"classes": "10", "width": "8", "depth1": "1", "depth2": "1",
                                           "depth3": "2", "depth4": "1"}, IMAGES),
    # odd sizes: each upsampled map is padded (by a width computed from H and W) to its skip's size
    ("unet.net", "UNet", {}, [{"N": 1, "H": 19, "W": 23}, {"N": 2, "H": 16, "W": 17}]),
]


def session(model) -> ort.InferenceSession:
    """One-thread sessions: the models are small, and a thread pool costs more than they run."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _compile(spec: str, defines: dict) -> netc.Program:
    return netc.compile_file(ROOT / "examples" / spec, defines=defines)


def _inputs(graph, sizes: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for n in graph.input_nodes():
        shape = [int(subs(d, sizes)) for d in n.type.shape]
        if n.type.dtype == "int":  # (BERT's token types: 0 or 1)
            out[n.id] = rng.integers(0, 2 if n.id == "types" else 10, shape)
        elif n.type.dtype == "bool":  # a padding mask: the first position always real
            out[n.id] = rng.random(shape) > 0.4
            out[n.id][:, 0] = True
        else:
            out[n.id] = rng.standard_normal(shape).astype(np.float32)
    return out


def _random_zeros(module) -> None:
    """Weights that start at zero (ViT's head, biases) made random, so no output is 0 by its
    weights alone and the comparison means something."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point() and not t.any():
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)


def _torch_run(module, inputs: dict) -> tuple[np.ndarray, ...]:
    with torch.no_grad():
        y = module(*(torch.from_numpy(x) for x in inputs.values()))
    return tuple(t.numpy() for t in (y if isinstance(y, tuple) else (y,)))


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def _dims(vi) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]


def _check_shapes(model, values, graph, sizes: dict | None) -> int:
    """ONNX's inferred shape of every IR value against netc's: same rank, equal where ONNX
    knows a size (with ``sizes`` the inputs are made concrete, so ONNX knows most). Returns
    how many values ONNX inferred."""
    m = _without_weights(model)
    if sizes:
        for vi in m.graph.input:
            for d in vi.type.tensor_type.shape.dim:
                if d.dim_param:
                    d.dim_value = sizes[d.dim_param]
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    known = {vi.name: _dims(vi) for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]
             if vi.type.tensor_type.HasField("shape")}
    types = {(n.id, i): t for n in graph.nodes() for i, t in enumerate(n.types)}
    seen = 0
    for ref, name in values.items():
        if name not in known:
            continue
        seen += 1
        want = [subs(d, sizes) if sizes else d for d in types[ref].shape]
        got = known[name]
        assert len(got) == len(want), f"{ref}: ONNX {got}, netc {want}"
        for g, w in zip(got, want):
            if isinstance(g, int):
                assert g == w, f"{ref}: ONNX {got}, netc {want}"
    return seen


def _without_weights(model) -> onnx.ModelProto:
    """The model with its initialisers as typed graph inputs (no data): shape inference reads
    only their shapes, and copying hundreds of MB of weights would dominate the test."""
    g = model.graph
    big = [t for t in g.initializer if np.prod(t.dims) > 64]  # small ones are axes, shapes: inference reads them
    weights = [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in big]
    small = [t for t in g.initializer if np.prod(t.dims) <= 64]
    graph = onnx.helper.make_graph(g.node, g.name, [*g.input, *weights], g.output, small)
    return onnx.helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


@pytest.mark.parametrize("spec, model, defines, sizes", EXAMPLES, ids=[f"{s}:{m}" for s, m, _, _ in EXAMPLES])
def test_example_exports_and_matches_torch(spec, model, defines, sizes):
    prog = _compile(spec, defines)
    torch.manual_seed(0)
    module = prog.to_torch(model).eval()
    _random_zeros(module)
    state = module.state_dict()
    for opt in (0, 2):
        graph = prog.optimized(opt).graph(model)
        weights = as_arrays(prog.convert_weights(model, state, opt))
        m, values = lower_model(graph, weights, prog.path)
        onnx.checker.check_model(m, full_check=True)
        assert m.opset_import[0].version >= 20
        symbolic = [n for vi in m.graph.input for n in _dims(vi) if isinstance(n, str)]
        assert set(symbolic) <= {"N", "T", "S", "H", "W"} and symbolic, "the spec's symbolic dims stay named"
        assert _check_shapes(m, values, graph, None) >= len(values) // 2
        assert _check_shapes(m, values, graph, sizes[-1]) >= 0.9 * len(values)
        s = session(m)
        for size in [sizes[opt // 2]] if model in PER_LEVEL else sizes:
            inputs = _inputs(graph, size)
            got = s.run(None, inputs)
            for g, w in zip(got, _torch_run(module, inputs), strict=True):
                assert g.shape == w.shape and _rel(g, w) <= 1e-4, (opt, size, g.shape, _rel(g, w))
                assert np.abs(w).max() > 0


def test_every_example_is_covered():
    names = {(s, m) for s, m, _, _ in EXAMPLES}
    for path in sorted((ROOT / "examples").glob("*.net")):
        prog = netc.compile_file(path)
        for m in prog.models:
            if m not in prog.pairs:
                assert (path.name, m) in names, f"{path.name}:{m} has no ONNX export test"


def test_every_op_has_a_lowering_or_a_reason():
    """After a merge, an op added to the catalogue fails here until it has an ONNX lowering
    (backends/onnx/lowerings/) or an entry in UNSUPPORTED saying why it cannot have one."""
    missing = [op for op in all_ops() if op not in LOWERINGS and op not in UNSUPPORTED]
    assert not missing, f"ops with no ONNX lowering and no reason in UNSUPPORTED: {missing}"
    assert not set(LOWERINGS) - set(all_ops()), "a lowering for an op the catalogue does not have"
    assert all(reason.strip() for reason in UNSUPPORTED.values())


FAMILIES = """
model Acts(x: float[N, T, 8]) -> float[N, T, 8] {
    y = x -> gelu -> silu -> leaky_relu(0.2) -> tanh
    y = y + (x -> relu6) + (x -> hardsigmoid) + (x -> hardswish) + sin(x) * cos(x) + rsqrt(exp(x) + 1.0)
    y = y + (x -> gelu(approximate="tanh")) + (x -> clamp(min=-0.5)) + (x -> clamp(max=0.3)) + (x -> clamp(min=-0.2, max=0.4))
    return (y + sigmoid(x) - abs(x) / (exp(x) + 1.5)) -> softmax(dim=1) -> log_softmax
}
model Convs(x: float[N, 4, 10, 10]) -> float[N, 6] {
    y = x -> conv2d(8, 3, padding="same", dilation=2, groups=2) -> avgpool2d(3, stride=1, padding=1)
    y = y -> conv_transpose2d(4, 3, stride=2, padding=1, output_padding=1) -> groupnorm(2) -> relu
    y = y -> upsample(2, mode="bilinear") -> adaptive_avgpool2d(5) -> maxpool2d(2, padding=1)
    return y -> flatten -> linear(6)
}
model Seqs(x: float[N, T, 6]) -> float[N, T, 24] {
    a, h = x -> rnn(6, layers=2, bidirectional=true, nonlinearity="relu")
    b, _ = x -> lstm(6, layers=2, bidirectional=true)
    c, _ = x -> gru(6, bidirectional=true)
    return concat(a + b, c, dim=-1) -> layernorm
}
model Attn(x: float[N, T, 16], m: float[N, S, 16]) -> float[N, T, 16] {
    y = x -> positional_encoding -> self_attention(4, causal=true) -> cross_attention(m, 2)
    q = transpose(y, 1, 2) -> transpose(1, 2)
    lo, hi = split(y, 8, dim=-1)
    z = transpose(y, 1, 2) -> conv1d(16, 1) -> permute(0, 2, 1) -> mean(dim=-1, keepdim=true)
    return attention(q, m, m) + z + sum(concat(hi, lo, dim=-1), dim=-1, keepdim=true)
}
model Pools(x: float[N, 3, T, S]) {
    y = x -> maxpool2d(3, stride=2, ceil_mode=true) -> avgpool2d(3, stride=2, padding=1, ceil_mode=true,
                                                                count_include_pad=false)
    return y + (x -> avgpool2d(2, padding=1, count_include_pad=false) -> adaptive_avgpool2d(1))
}
"""


@pytest.mark.parametrize("model", ["Acts", "Convs", "Seqs", "Attn", "Pools"])
def test_lowering_families_match_torch(tmp_path, model):
    path = tmp_path / "families.net"
    path.write_text(FAMILIES)
    prog = netc.compile_file(path)
    torch.manual_seed(0)
    module = prog.to_torch(model).eval()
    for opt in (0, 2):
        m = prog.to_onnx(model, weights=module.state_dict(), opt=opt)
        onnx.checker.check_model(m, full_check=True)
        s = session(m)
        for sizes in SIZES:
            inputs = _inputs(prog.graph(model), sizes)
            for g, w in zip(s.run(None, inputs), _torch_run(module, inputs), strict=True):
                assert g.shape == w.shape and _rel(g, w) <= 1e-4, (opt, sizes, _rel(g, w))
            inferred = _inferred_outputs(m, sizes)
            want = [[subs(d, sizes) for d in t.shape] for t in prog.graph(model).output_types()]
            assert inferred == want, (opt, sizes, inferred, want)


def _inferred_outputs(model, sizes: dict) -> list:
    """The output shapes ONNX's shape inference gives with the inputs' symbolic dims set."""
    m = _without_weights(model)
    for vi in m.graph.input:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in sizes:
                d.dim_value = sizes[d.dim_param]
    for vi in m.graph.output:
        vi.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    return [_dims(vi) for vi in inferred.graph.output]


def test_nodes_carry_scopes_and_source_lines():
    m = _compile("resnet18.net", {"classes": "10"}).to_onnx("ResNet18")
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    assert convs[0].name == "conv_bn.conv2d" and any(n.name.startswith("basic.0.") for n in convs)
    # (the std library's line: ConvBN's conv2d is written there)
    assert convs[0].doc_string.startswith("resnet.net:10: return x -> conv2d(out, k, stride=stride")
    assert convs[0].output[0] == "conv_bn.conv2d"
    assert {i.name for i in m.graph.initializer} >= {"conv_bn.conv2d.weight", "linear.bias"}


def test_op_without_lowering_is_a_spec_error(monkeypatch):
    monkeypatch.delitem(LOWERINGS, "maxpool2d")
    monkeypatch.setitem(UNSUPPORTED, "maxpool2d", "a test says so")
    with pytest.raises(SpecError) as e:
        _compile("lenet.net", {}).to_onnx("LeNet")
    text = str(e.value)
    assert "lenet.net:5:" in text and "`maxpool2d` cannot be exported to ONNX: a test says so" in text


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "netc.backends.onnx.emit", None)
    with pytest.raises(SpecError, match=r"pip install '?netc\[onnx\]"):
        _compile("lenet.net", {}).to_onnx("LeNet")


def test_pair_is_refused_with_its_models():
    with pytest.raises(SpecError, match="export each of its models: Generator, Discriminator"):
        _compile("dcgan.net", {}).to_onnx("DCGAN")


def test_cli_writes_a_model(tmp_path):
    out = tmp_path / "lenet.onnx"
    r = subprocess.run([sys.executable, "-m", "netc.cli", "compile", "examples/lenet.net", "--backend", "onnx",
                        "-O2", "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    m = onnx.load(out)
    onnx.checker.check_model(m, full_check=True)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {"image": np.zeros((5, 1, 28, 28), np.float32)})[0].shape == (5, 10)
    r = subprocess.run([sys.executable, "-m", "netc.cli", "compile", "examples/lenet.net", "--backend", "onnx"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "give -o FILE.onnx" in r.stderr


def test_configuration_without_onnx_form_is_a_located_error(tmp_path):
    path = tmp_path / "rope.net"
    path.write_text("model Rope(x: float[N, T, D]) -> float[N, T, D] {\n    return x -> rotary\n}\n")
    with pytest.raises(SpecError) as e:
        netc.compile_file(path).to_onnx("Rope", weights={})
    text = str(e.value)
    assert "rope.net:2:" in text and "rotary over a symbolic feature size D" in text, text
