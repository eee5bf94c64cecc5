"""netc's PyTorch modules behave as nn.Modules in training: every example model (and pair)
learns a few steps on a fixed tiny batch, dropout and batch-norm follow ``train()`` and
``eval()``, and the modules convert with ``.double()`` and ``.to(device)`` because the
generated source names no device or dtype.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from netc.runtime.inputs import bind_sizes, concrete_shape, random_inputs

import netc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# id -> (spec, model or pair, defines, sizes, loss): large models made small with defines
# (vgg11, resnet18 and transformer have no size parameters but the class count).
SEQ2SEQ = {"vocab": 40, "dim": 16, "hidden": 24, "layers": 2, "p": 0.2}
DCGAN = {"nz": 16, "ngf": 8, "ndf": 8}
CASES = {
    "AutoEncoder.Encoder": ("autoencoder.net", "Encoder", {"latent": 8}, {}, "mse"),
    "AutoEncoder.Decoder": ("autoencoder.net", "Decoder", {"latent": 8}, {}, "mse"),
    "AutoEncoder": ("autoencoder.net", "AutoEncoder", {"latent": 8}, {}, "mse"),
    "CharRNN": ("char_rnn.net", "CharRNN", {}, {"T": 4}, "ce"),
    "CharLSTM": ("char_rnn.net", "CharLSTM", {"hidden": 32}, {"T": 4}, "ce"),
    "DCGAN.Generator": ("dcgan.net", "Generator", DCGAN, {}, "mse"),
    "DCGAN.Discriminator": ("dcgan.net", "Discriminator", DCGAN, {}, "bce"),
    "DCGAN": ("dcgan.net", "DCGAN", DCGAN, {}, "bce"),
    "GPT2": ("gpt2.net", "GPT2", {"vocab": 100, "context": 32, "layers": 2, "heads": 2, "width": 32}, {"T": 8},
             "ce"),
    "Bert": ("bert.net", "Bert", {"vocab": 100, "context": 32, "layers": 2, "heads": 2, "width": 32, "ff": 64},
             {"T": 8}, "mse"),
    "Llama": ("llama.net", "Llama", {"vocab": 100, "layers": 2, "heads": 4, "kv_heads": 2, "width": 32, "ff": 48},
              {"T": 8}, "ce"),
    "GRUClassifier": ("gru_classifier.net", "GRUClassifier", {"vocab": 100, "dim": 16, "hidden": 16}, {}, "ce"),
    "LeNet": ("lenet.net", "LeNet", {}, {}, "ce"),
    "LSTMLanguageModel": ("lstm_lm.net", "LSTMLanguageModel", {"vocab": 100, "dim": 32}, {}, "ce"),
    "ResNet18": ("resnet18.net", "ResNet18", {"classes": 10}, {"N": 2}, "ce"),
    "Seq2Seq.Encoder": ("seq2seq.net", "Encoder", SEQ2SEQ, {}, "mse"),
    "Seq2Seq.Decoder": ("seq2seq.net", "Decoder", SEQ2SEQ, {}, "ce"),
    "Seq2Seq": ("seq2seq.net", "Seq2Seq", SEQ2SEQ, {}, "ce"),
    "Transformer": ("transformer.net", "Transformer", {}, {"S": 4, "T": 3}, "mse"),
    "VGG11": ("vgg11.net", "VGG11", {"classes": 10}, {"N": 2}, "ce"),
    "MobileNetV2": ("mobilenet_v2.net", "MobileNetV2", {"classes": 10}, {"N": 2, "H": 32, "W": 40}, "ce"),
    "EfficientNetB0": ("efficientnet_b0.net", "EfficientNetB0", {"classes": 10}, {"N": 2, "H": 32, "W": 40}, "ce"),
    "UNet": ("unet.net", "UNet", {}, {"N": 2, "H": 19, "W": 23}, "mse"),
    "ConvNeXtTiny": ("convnext_tiny.net", "ConvNeXtTiny",
                     {"classes": 10, "width": 8, "depth1": 1, "depth2": 1, "depth3": 2, "depth4": 1},
                     {"N": 2, "H": 32, "W": 32}, "ce"),
    "ViTB16": ("vit_b16.net", "ViTB16",
               {"size": 32, "patch": 8, "width": 32, "layers": 2, "heads": 2, "mlp": 64, "classes": 10}, {"N": 2}, "ce"),
    "VAE": ("vae.net", "VAE", {"latent": 8, "hidden": 32}, {"N": 2}, "mse"),
    "Seq2SeqAttention": ("seq2seq_attention.net", "Seq2SeqAttention", {"src_vocab": 50, "tgt_vocab": 40, "hidden": 16},
                         {"N": 2, "S": 5, "T": 4}, "ce"),
}
# ResNet-18 and VGG-11 end in global / adaptive average pooling, so they run on any image of at
# least 32x32 (their declared 224x224 is run on "meta"): ResNet-18 trains at 64x64, where its
# last batch norms still see 2x2 maps; VGG-11 (no batch norm) at 32x32, a quarter of the
# convolutions' cost.
IMAGE = {"ResNet18": 64, "VGG11": 32}
BIG = {"ResNet18", "VGG11", "Transformer"}  # 11M to 129M weights: SGD, no Adam state to update


def build(case: str, seed: int = 0, batch: int | None = None):
    """(program, module, inputs) for a case, with seeded weights and inputs (``batch``: this N)."""
    spec, name, defines, sizes, _ = CASES[case]
    if batch is not None:
        sizes = {**sizes, "N": batch}
    prog = netc.compile_file(EXAMPLES / spec, defines=defines)
    torch.manual_seed(seed)
    net = prog.to_torch(name)
    arrays = {}
    for member in reversed(prog.members(name)):  # a pair's inputs: the first model's win
        arrays |= random_inputs(prog.graph(member), sizes, seed)
    xs = [torch.from_numpy(arrays[p]) for p in inspect.signature(net.forward).parameters]
    if case in IMAGE:
        xs = [x[..., :IMAGE[case], :IMAGE[case]] for x in xs]
    return prog, net, xs


def loss_of(out, kind: str, target):
    if kind == "ce":  # logits over the last dim
        return F.cross_entropy(out.flatten(0, -2), target.flatten())
    if kind == "bce":  # probabilities, real (1) or fake (0)
        return F.binary_cross_entropy(out, target)
    outs = out if isinstance(out, tuple) else (out,)
    return sum(F.mse_loss(o, t) for o, t in zip(outs, target))


def target_for(out, kind: str):
    g = torch.Generator().manual_seed(1)
    if kind == "ce":
        return torch.randint(0, out.shape[-1], out.shape[:-1], generator=g)
    if kind == "bce":
        return torch.randint(0, 2, out.shape, generator=g).float()
    outs = out if isinstance(out, tuple) else (out,)
    return tuple(torch.randn(o.shape, generator=g) for o in outs)


def test_every_example_model_is_trained():
    names = set()
    for spec in EXAMPLES.glob("*.net"):
        names |= {(spec.name, m) for m in netc.compile_file(spec).models}
    assert names == {(spec, name) for spec, name, *_ in CASES.values()}


@pytest.mark.parametrize("case", CASES)
def test_loss_goes_down(case):
    _, net, xs = build(case)
    kind = CASES[case][4]
    net.train()
    if case in BIG:
        opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    target, losses = None, []
    for step in range(4):  # three updates, and the loss after them
        torch.manual_seed(0)  # the same dropout masks each time: one fixed objective
        with torch.set_grad_enabled(step < 3):
            out = net(*xs)
            target = target if target is not None else target_for(out, kind)
            loss = loss_of(out, kind, target)
        losses.append(loss.item())
        if step < 3:
            opt.zero_grad()
            loss.backward()
            missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.isfinite().all()]
            assert not missing, f"no (finite) gradient for {missing}"
            opt.step()
    assert losses[-1] < losses[0], losses


# -- train and eval modes ----------------------------------------------------------------------

def test_dropout_follows_train_and_eval():
    _, net, (tokens,) = build("GPT2")  # dropout after embeddings, attention weights, projections
    net.train()
    a, b = net(tokens), net(tokens)
    assert not torch.equal(a, b)
    net.eval()
    with torch.no_grad():
        c, d = net(tokens), net(tokens)
    assert torch.equal(c, d)
    assert not torch.equal(a, c)
    for m in net.modules():
        assert not m.training


def test_attention_dropout_follows_train_and_eval():
    prog = netc.compile_file(EXAMPLES / "gpt2.net", defines={"vocab": 50, "context": 8, "layers": 1, "heads": 2,
                                                             "width": 16, "p": 0.5})
    net = prog.to_torch("GPT2")
    attention = net.gpt2_block[0].self_attention
    x = torch.randn(2, 8, 16)
    attention.train()
    assert not torch.equal(attention(x), attention(x))
    attention.eval()
    assert torch.equal(attention(x), attention(x))


def test_batchnorm_statistics_follow_train_and_eval():
    _, net, (z,) = build("DCGAN.Generator")
    bn = net.batchnorm
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    net.train()
    with torch.no_grad():
        train_out = net(z)
    assert not torch.equal(bn.running_mean, mean) and not torch.equal(bn.running_var, var)
    assert bn.num_batches_tracked.item() == 1
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    net.eval()
    with torch.no_grad():
        eval_out = net(z)
        assert torch.equal(net(z), eval_out)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert bn.num_batches_tracked.item() == 1
    assert not torch.allclose(train_out, eval_out)


# -- dtype and device --------------------------------------------------------------------------

def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


# ResNet-18 and VGG-11 are left out for time: LeNet and DCGAN convert convolutions and batch-norm
@pytest.mark.parametrize("case", [c for c in CASES if c not in IMAGE])
def test_double(case):
    _, net, xs = build(case, batch=1)  # one sample converts as well as two, at half the cost
    net.eval()
    with torch.no_grad():
        single = _outputs(net(*xs))
        net.double()
        double = _outputs(net(*[x.double() if x.is_floating_point() else x for x in xs]))
    for s, d in zip(single, double, strict=True):
        assert s.dtype == torch.float32 and d.dtype == torch.float64
        torch.testing.assert_close(d.float(), s, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_to_device(case):
    """``.to(device)`` moves every weight; on "meta" the module runs at its declared sizes."""
    spec, name, defines, sizes, _ = CASES[case]
    prog = netc.compile_file(EXAMPLES / spec, defines=defines)
    net = prog.to_torch(name).to(torch.device("cpu"))
    assert all(t.device.type == "cpu" for t in net.state_dict().values())
    net.to("meta").eval()
    assert all(t.is_meta for t in net.state_dict().values())
    arrays = {}
    for member in reversed(prog.members(name)):
        arrays |= random_inputs(prog.graph(member), sizes)
    xs = [torch.from_numpy(arrays[p]).to("meta") for p in inspect.signature(net.forward).parameters]
    last = prog.graph(prog.members(name)[-1])
    env = bind_sizes(last, sizes)
    want = [concrete_shape(last.type_of(ref).shape, env) for _, ref in last.outputs]
    with torch.no_grad():
        out = _outputs(net(*xs))
    assert all(o.is_meta for o in out)
    assert [tuple(o.shape) for o in out] == want


@pytest.mark.parametrize("spec", sorted(p.name for p in EXAMPLES.glob("*.net")))
def test_source_names_no_device(spec):
    source = netc.compile_file(EXAMPLES / spec).torch_source()
    assert "cuda" not in source and "cpu" not in source
    # a device is only ever taken from a tensor at hand
    for value in re.findall(r"device=([\w.\[\]]+)", source):
        assert value.endswith(".device"), value
    assert "dtype=torch.float64" not in source and ".double()" not in source
