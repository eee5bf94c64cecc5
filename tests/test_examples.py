"""The example specs in examples/ and the standard library in specs/std/.

Every example goes through the real command line (``python -m netc.cli``). Parameter totals
are checked against the published counts, and against plain PyTorch definitions of the same
networks where torch has (or can easily write) the model: the totals must agree, and so must
the multiset of weight shapes (scope names differ between netc and torch, shapes do not).
Torch models are built on the meta device, so no memory is allocated and no weights are
initialised.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPECS = sorted(EXAMPLES.glob("*.net"))
PAIRS = {"dcgan.net": ("DCGAN", {"generator": "Generator", "discriminator": "Discriminator"}),
         "seq2seq.net": ("Seq2Seq", {"encoder": "Encoder", "decoder": "Decoder"}),
         "autoencoder.net": ("AutoEncoder", {"encoder": "Encoder", "decoder": "Decoder"})}


@functools.cache
def netc(*args: str) -> subprocess.CompletedProcess:
    """Run the command line from the repository root (memoised: each command runs once)."""
    return subprocess.run([sys.executable, "-m", "netc.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture(scope="module", autouse=True)
def _prefetch():
    """Start the commands the tests use side by side, to keep the file fast."""
    calls = [("check", f"examples/{p.name}") for p in SPECS]
    calls += [summary_args(p.name) for p in SPECS]
    calls += [summary_args("resnet18.net", "-D", "classes=10"),
              ("summary", "examples/dcgan.net", "--model", "DCGAN"),
              ("check", "examples/seq2seq.net", "-D", "hidden=256"),
              ("check", "examples/autoencoder.net", "-D", "latent=8")]
    with ThreadPoolExecutor(max(2, os.cpu_count() or 1)) as pool:
        list(pool.map(lambda args: netc(*args), calls))


def summary_args(spec: str, *args: str) -> tuple[str, ...]:
    """The command that summarises examples/<spec>: for a spec with a pair, the pair (its models)."""
    if spec in PAIRS and not args:
        args = ("--model", PAIRS[spec][0])
    return ("summary", "--json", f"examples/{spec}", *args)


def summary(spec: str, *args: str) -> dict:
    """``netc summary --json`` of examples/<spec>, as a dict."""
    r = netc(*summary_args(spec, *args))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return json.loads(r.stdout)


def model(spec: str, name: str, *args: str) -> dict:
    models = {m["model"]: m for m in summary(spec, *args)["models"]}
    assert name in models, f"{spec} has models {sorted(models)}"
    return models[name]


def params(spec: str, name: str, *args: str) -> int:
    return model(spec, name, *args)["totals"]["params"]


# -- every spec checks -----------------------------------------------------------------------

def test_examples_exist():
    names = {p.name for p in SPECS}
    assert {"lenet.net", "resnet18.net", "vgg11.net", "gru_classifier.net", "lstm_lm.net", "char_rnn.net",
            "transformer.net", "gpt2.net", "seq2seq.net", "dcgan.net", "autoencoder.net", "llama.net", "bert.net"} <= names


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_check_passes(spec):
    rel = f"examples/{spec.name}"
    r = netc("check", rel)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines()[-1].startswith(f"{rel}: ok")


def test_std_blocks_elaborate(tmp_path):
    """Every std block, used from a spec outside the repository: ResNet-50 from Bottleneck
    (torchvision's resnet50 has 25,557,032 parameters) and the small vision blocks."""
    spec = tmp_path / "std_use.net"
    spec.write_text("""
import "std/resnet.net"
import "std/vision.net"

model ResNet50(image: float[N, 3, 224, 224]) -> float[N, 1000] {
    return image
        -> ConvBN(64, k=7, stride=2) -> relu -> maxpool2d(3, stride=2, padding=1)
        -> Bottleneck(64) * 3
        -> Bottleneck(128, stride=2) -> Bottleneck(128) * 3
        -> Bottleneck(256, stride=2) -> Bottleneck(256) * 5
        -> Bottleneck(512, stride=2) -> Bottleneck(512) * 2
        -> global_avgpool -> linear(1000)
}

model Small(image: float[N, 3, 32, 32]) -> float[N, 16, 16, 16] {
    return image -> ConvBNReLU(16) -> ConvReLU(16, stride=2)
}
""")
    r = subprocess.run([sys.executable, "-m", "netc.cli", "summary", "--json", str(spec)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    totals = {m["model"]: m["totals"]["params"] for m in json.loads(r.stdout)["models"]}
    # Small: conv 3->16 without bias + batchnorm (432 + 32), conv 16->16 with bias (2,320)
    assert totals == {"ResNet50": 25_557_032, "Small": 432 + 32 + 2_320}


# -- published parameter counts --------------------------------------------------------------

@pytest.mark.parametrize("spec, name, total", [
    ("lenet.net", "LeNet", 421_642),
    ("resnet18.net", "ResNet18", 11_689_512),
    ("vgg11.net", "VGG11", 132_863_336),
    ("transformer.net", "Transformer", 44_140_544),
    ("gpt2.net", "GPT2", 124_439_808),
    ("dcgan.net", "Generator", 3_576_704),
    ("dcgan.net", "Discriminator", 2_765_568),
    ("llama.net", "Llama", 1_100_048_384),  # TinyLlama-1.1B (LlamaForCausalLM of its config)
    ("bert.net", "Bert", 109_482_240),  # bert-base-uncased: BertModel(BertConfig()), pooler included
    ("mobilenet_v2.net", "MobileNetV2", 3_504_872),
    ("efficientnet_b0.net", "EfficientNetB0", 5_288_548),
    ("unet.net", "UNet", 31_037_698),
    ("vit_b16.net", "ViTB16", 86_567_656),
    ("convnext_tiny.net", "ConvNeXtTiny", 28_589_128),
    ("vae.net", "VAE", 652_824),  # pytorch/examples vae/main.py
])
def test_published_param_counts(spec, name, total):
    assert params(spec, name) == total


def test_resnet18_classes_define():
    out = model("resnet18.net", "ResNet18", "-D", "classes=10")
    assert out["outputs"] == [{"name": None, "type": "float[N, 10]"}]
    assert out["totals"]["params"] == 11_181_642


def test_output_types():
    def out(spec, name):
        return [o["type"] for o in model(spec, name)["outputs"]]

    assert out("lenet.net", "LeNet") == ["float[N, 10]"]
    assert out("vgg11.net", "VGG11") == ["float[N, 1000]"]
    assert out("gru_classifier.net", "GRUClassifier") == ["float[N, 4]"]
    assert out("lstm_lm.net", "LSTMLanguageModel") == ["float[N, T, 10000]"]
    assert out("char_rnn.net", "CharRNN") == out("char_rnn.net", "CharLSTM") == ["float[N, T, 96]"]
    assert out("transformer.net", "Transformer") == ["float[N, T, 512]"]
    assert out("gpt2.net", "GPT2") == ["float[N, T, 50257]"]
    assert out("dcgan.net", "Generator") == ["float[N, 3, 64, 64]"]
    assert out("dcgan.net", "Discriminator") == ["float[N, 1, 1, 1]"]
    assert out("autoencoder.net", "Encoder") == ["float[N, 32]"]
    assert out("autoencoder.net", "Decoder") == ["float[N, 1, 28, 28]"]
    enc = model("seq2seq.net", "Encoder")["outputs"]
    assert enc == [{"name": "h", "type": "float[2, N, 512]"}, {"name": "c", "type": "float[2, N, 512]"}]
    dec = model("seq2seq.net", "Decoder")["inputs"]
    assert [i["name"] for i in dec] == ["tokens", "h", "c"]


def test_char_rnn_cells():
    # Elman: linear(64 -> 128) + linear(128 -> 128, no bias); LSTM cell: the same with 4 gates
    cell = {"CharRNN": 64 * 128 + 128 + 128 * 128, "CharLSTM": 4 * (64 * 128 + 128 + 128 * 128)}
    for name, weights in cell.items():
        rows = {r["op"]: r["params"] for r in model("char_rnn.net", name)["rows"]}
        assert rows["scan"] == weights
        assert params("char_rnn.net", name) == 96 * 64 + weights + 128 * 96 + 96


# -- pairs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", sorted(PAIRS))
def test_pair_summary_lists_both_models(spec):
    pair, roles = PAIRS[spec]
    out = summary(spec, "--model", pair)
    assert [m["model"] for m in out["models"]] == list(roles.values())
    assert out["pairs"] == [{"name": pair, "roles": roles}]
    r = netc("check", f"examples/{spec}")
    assert f"{pair}: pair ({', '.join(f'{k}: {v}' for k, v in roles.items())}) fits" in r.stdout


def test_pair_summary_table():
    r = netc("summary", "examples/dcgan.net", "--model", "DCGAN")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "Model: Generator" in r.stdout and "Model: Discriminator" in r.stdout
    assert "Total params: 3,576,704" in r.stdout and "Total params: 2,765,568" in r.stdout


def test_pair_defines_keep_both_sides_in_step():
    r = netc("check", "examples/seq2seq.net", "-D", "hidden=256")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "float[2, N, 256]" in r.stdout and "Seq2Seq: pair" in r.stdout
    r = netc("check", "examples/autoencoder.net", "-D", "latent=8")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "-> float[N, 8]" in r.stdout


# -- cross-checks against PyTorch ------------------------------------------------------------



def netc_shapes(spec: str, name: str) -> tuple[Counter, Counter]:
    """The multisets of weight shapes and of buffer shapes of a model, from the compiler."""
    import netc as api

    weights = api.compile_file(str(EXAMPLES / spec)).graph(name).weights().values()
    return (Counter(tuple(p.shape) for p in weights if not p.buffer),
            Counter(tuple(p.shape) for p in weights if p.buffer))


def torch_shapes(m: nn.Module) -> tuple[Counter, Counter]:
    return (Counter(tuple(p.shape) for p in m.parameters()), Counter(tuple(b.shape) for b in m.buffers()))


def same_model(spec: str, name: str, m: nn.Module) -> None:
    """netc's model and the torch module have the same parameter count and weight shapes."""
    assert params(spec, name) == sum(p.numel() for p in m.parameters())
    assert netc_shapes(spec, name) == torch_shapes(m)


def meta(build):
    with torch.device("meta"):
        return build()


def test_transformer_matches_torch():
    m = meta(lambda: nn.Transformer(batch_first=True))
    assert sum(p.numel() for p in m.parameters()) == 44_140_544
    same_model("transformer.net", "Transformer", m)


def basic_block(cin, out, stride=1):
    """torchvision's BasicBlock (its weights; the forward pass is not needed here)."""
    m = nn.ModuleDict({"conv1": nn.Conv2d(cin, out, 3, stride, 1, bias=False), "bn1": nn.BatchNorm2d(out),
                       "conv2": nn.Conv2d(out, out, 3, 1, 1, bias=False), "bn2": nn.BatchNorm2d(out)})
    if stride != 1 or cin != out:
        m["downsample"] = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
    return m


def resnet18(classes=1000):
    """torchvision.models.resnet18, written out."""
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [basic_block(cin, out, stride), basic_block(out, out)]
        cin = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))


def test_resnet18_matches_torch():
    same_model("resnet18.net", "ResNet18", meta(resnet18))
    assert params("resnet18.net", "ResNet18", "-D", "classes=10") == \
        sum(p.numel() for p in meta(lambda: resnet18(10)).parameters())


def vgg11():
    """torchvision.models.vgg11, written out."""
    layers, cin = [], 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(True)]
            cin = v
    return nn.Sequential(
        nn.Sequential(*layers), nn.AdaptiveAvgPool2d(7), nn.Flatten(),
        nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                      nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000)))


def test_vgg11_matches_torch():
    same_model("vgg11.net", "VGG11", meta(vgg11))


def dcgan(nz=100, ngf=64, ndf=64, nc=3):
    """The generator and discriminator of the PyTorch DCGAN tutorial."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    return g, d


def test_dcgan_matches_torch():
    g, d = meta(dcgan)
    same_model("dcgan.net", "Generator", g)
    same_model("dcgan.net", "Discriminator", d)
    # and the sizes netc inferred are the ones torch computes
    assert tuple(g(torch.empty(2, 100, 1, 1, device="meta")).shape) == (2, 3, 64, 64)
    assert tuple(d(torch.empty(2, 3, 64, 64, device="meta")).shape) == (2, 1, 1, 1)


def test_gru_classifier_matches_torch():
    # embedding -> bidirectional GRU -> mean over time -> linear
    m = meta(lambda: nn.ModuleList([nn.Embedding(20000, 128),
                                    nn.GRU(128, 256, batch_first=True, bidirectional=True),
                                    nn.Linear(512, 4)]))
    same_model("gru_classifier.net", "GRUClassifier", m)


def test_lstm_lm_matches_torch():
    m = meta(lambda: nn.Sequential(nn.Embedding(10000, 650), nn.LSTM(650, 650, num_layers=2, dropout=0.5,
                                                                       batch_first=True), nn.Linear(650, 10000)))
    same_model("lstm_lm.net", "LSTMLanguageModel", m)


def test_seq2seq_matches_torch():
    def side():
        return [nn.Embedding(16000, 256), nn.LSTM(256, 512, num_layers=2, dropout=0.2, batch_first=True)]

    same_model("seq2seq.net", "Encoder", meta(lambda: nn.Sequential(*side())))
    same_model("seq2seq.net", "Decoder", meta(lambda: nn.Sequential(*side(), nn.Linear(512, 16000))))


def gpt2(vocab=50257, context=1024, layers=12, heads=12, d=768, p=0.1):
    """GPT-2 small, with the output projection tied to the token embedding."""
    def block():
        return nn.ModuleDict({"ln_1": nn.LayerNorm(d),
                              "attn": nn.MultiheadAttention(d, heads, p, batch_first=True),
                              "ln_2": nn.LayerNorm(d),
                              "mlp": nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))})

    m = nn.ModuleDict({"wte": nn.Embedding(vocab, d), "wpe": nn.Embedding(context, d),
                       "h": nn.ModuleList(block() for _ in range(layers)), "ln_f": nn.LayerNorm(d),
                       "lm_head": nn.Linear(d, vocab, bias=False)})
    m["lm_head"].weight = m["wte"].weight
    return m


def test_gpt2_matches_torch():
    m = meta(gpt2)
    assert sum(p.numel() for p in m.parameters()) == 124_439_808
    same_model("gpt2.net", "GPT2", m)


def test_lenet_matches_torch():
    m = meta(lambda: nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10)))
    same_model("lenet.net", "LeNet", m)


def test_autoencoder_matches_torch():
    enc = meta(lambda: nn.Sequential(
        nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 32)))
    dec = meta(lambda: nn.Sequential(
        nn.Linear(32, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
        nn.ConvTranspose2d(32, 16, 3, 2, 1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 3, 2, 1, output_padding=1), nn.Sigmoid()))
    same_model("autoencoder.net", "Encoder", enc)
    same_model("autoencoder.net", "Decoder", dec)
    assert tuple(dec(enc(torch.empty(2, 1, 28, 28, device="meta"))).shape) == (2, 1, 28, 28)
