"""Parity of netc's PyTorch modules with the same networks written by hand in plain PyTorch.

For each example, a reference from ``references.py`` (torchvision's ResNet-18, the DCGAN
tutorial's networks, nn.LSTM / nn.GRU models, GPT-2 on nn.MultiheadAttention, torch's own
nn.Transformer) gets seeded random weights; an explicit name map copies every one of them
into the module netc builds, and both must then give the same outputs in eval mode (float32)
on the same seeded random inputs. The map must be a bijection between the reference's
parameters and buffers (a tied weight counted once) and netc's ``state_dict``, so a weight
that is missing, extra, shared where it should not be or of another shape fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import references as ref
import torch
from netc.runtime.inputs import random_inputs
from torch import nn

import netc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOL = 1e-5

GPT2_SMALL = {"vocab": 100, "context": 32, "layers": 2, "heads": 2, "width": 32, "p": 0.1}
SEQ2SEQ_SMALL = {"vocab": 100, "dim": 16, "hidden": 32, "layers": 2, "p": 0.2}


# -- helpers -----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def seeded():
    """References are built from torch's global generator: the same weights every run."""
    torch.manual_seed(0)


def program(example: str, **defines):
    return netc.compile_file(EXAMPLES / example, defines=defines or None)


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Seeded weights, with the parameters torch starts at constants (biases, norm scales) and
    the batch-norm statistics made random too, so that a wrong map cannot go unnoticed."""
    torch.manual_seed(seed)
    for m in module.modules():
        for p in m.parameters(recurse=False):
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) and p is m.weight:
                nn.init.uniform_(p, 0.5, 1.5)
            elif p.dim() == 1:  # biases
                nn.init.normal_(p, 0.0, 0.1)
        if isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.running_mean, 0.0, 0.1)
            nn.init.uniform_(m.running_var, 0.5, 1.5)
            m.num_batches_tracked.fill_(7)
    return module


def copy_weights(reference: nn.Module, net: nn.Module, rename) -> dict[str, str]:
    """Copy every parameter and buffer of ``reference`` into ``net`` under ``rename(name)``.
    Returns the map; asserts that it covers each side exactly once and that shapes agree."""
    src = dict(reference.named_parameters()) | dict(reference.named_buffers())  # tied: once
    dst = net.state_dict()
    mapping = {name: rename(name) for name in src}
    targets = list(mapping.values())
    assert len(set(targets)) == len(targets), "two reference weights map to one netc weight"
    assert set(targets) == set(dst), (f"unmapped netc weights {sorted(set(dst) - set(targets))}, "
                                      f"unknown targets {sorted(set(targets) - set(dst))}")
    with torch.no_grad():
        for a, b in mapping.items():
            assert src[a].shape == dst[b].shape, f"{a} {tuple(src[a].shape)} -> {b} {tuple(dst[b].shape)}"
            dst[b].copy_(src[a])
    return mapping


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def inputs(prog, model: str, seed: int = 0, **sizes) -> list[torch.Tensor]:
    arrays = random_inputs(prog.graph(model), sizes or None, seed)
    return [torch.from_numpy(a) for a in arrays.values()]


def assert_close(got, want) -> None:
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_close(g, w)
        return
    assert got.dtype == want.dtype == torch.float32
    assert got.shape == want.shape
    diff = (got - want).abs().max().item()
    assert diff <= TOL, f"max abs diff {diff:.3g} > {TOL}"


def check_model(prog, model: str, reference: nn.Module, rename, seed: int = 0, **sizes) -> nn.Module:
    """Weights copied by ``rename``, equal counts, equal eval outputs. Returns netc's module."""
    randomize(reference, seed)
    net = prog.to_torch(model)
    copy_weights(reference, net, rename)
    assert count(net) == count(reference)
    reference.eval()
    net.eval()
    xs = inputs(prog, model, seed + 1, **sizes)
    with torch.no_grad():
        assert_close(net(*xs), reference(*xs))
    return net


# -- single models -----------------------------------------------------------------------------

def test_lenet():
    check_model(program("lenet.net"), "LeNet", ref.LeNet(), ref.LENET_NAMES)


def test_resnet18():
    prog = program("resnet18.net")
    net = check_model(prog, "ResNet18", ref.ResNet18(), ref.RESNET18_NAMES)
    assert count(net) == 11_689_512  # torchvision.models.resnet18()


def test_gpt2_small():
    c = GPT2_SMALL
    prog = program("gpt2.net", **c)
    reference = ref.GPT2(c["vocab"], c["context"], c["layers"], c["heads"], c["width"], c["p"])
    net = check_model(prog, "GPT2", reference, ref.gpt2_names(c["layers"]), T=c["context"])
    # the output projection is the token embedding itself, in both
    assert reference.lm_head.weight is reference.wte.weight
    tables = [k for k, v in net.state_dict().items() if v.shape == (c["vocab"], c["width"])]
    assert tables == ["wte.weight"]


@pytest.mark.parametrize("t", [1, 7])
def test_gpt2_short_sequences(t):
    c = GPT2_SMALL
    reference = ref.GPT2(c["vocab"], c["context"], c["layers"], c["heads"], c["width"], c["p"])
    check_model(program("gpt2.net", **c), "GPT2", reference, ref.gpt2_names(c["layers"]), seed=5, T=t)


def test_lstm_language_model():
    d = {"vocab": 50, "dim": 24, "layers": 2, "p": 0.5}
    check_model(program("lstm_lm.net", **d), "LSTMLanguageModel", ref.WordLM(**d), ref.WORD_LM_NAMES)


def test_gru_classifier():
    d = {"vocab": 60, "classes": 4, "dim": 16, "hidden": 24}
    check_model(program("gru_classifier.net", **d), "GRUClassifier", ref.GRUClassifier(**d),
                ref.GRU_CLASSIFIER_NAMES)


def test_transformer():
    reference = nn.Transformer(batch_first=True)  # d_model 512, 8 heads, 6 + 6 layers

    class Causal(nn.Module):  # the decoder's self-attention is causal in the spec
        def __init__(self):
            super().__init__()
            self.transformer = reference

        def forward(self, src, tgt):
            mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
            return self.transformer(src, tgt, tgt_mask=mask, tgt_is_causal=True)

    def rename(name):
        return ref.transformer_names(6)(name.removeprefix("transformer."))

    check_model(program("transformer.net"), "Transformer", Causal(), rename, S=6, T=4)


# -- pairs -------------------------------------------------------------------------------------

def pair_with(prog, pair: str, references: dict[str, tuple[nn.Module, object]], seed: int = 0) -> nn.Module:
    """The pair's container, each role loaded from its reference."""
    container = prog.to_torch(pair)
    for i, (role, (reference, rename)) in enumerate(references.items()):
        randomize(reference, seed + i)
        member = getattr(container, role)
        copy_weights(reference, member, rename)
        assert count(member) == count(reference)
        reference.eval()
    return container.eval()


def test_dcgan():
    prog = program("dcgan.net")
    g, d = ref.Generator(), ref.Discriminator()
    gan = pair_with(prog, "DCGAN", {"generator": (g, ref.GENERATOR_NAMES),
                                     "discriminator": (d, ref.DISCRIMINATOR_NAMES)})
    assert (count(gan.generator), count(gan.discriminator)) == (3_576_704, 2_765_568)  # the tutorial's
    (z,) = inputs(prog, "Generator", seed=1)
    (image,) = inputs(prog, "Discriminator", seed=2)
    with torch.no_grad():
        assert_close(gan.generate(z), g(z))
        assert_close(gan.discriminate(image), d(image))
        assert_close(gan(z), d(g(z)))
        assert_close(gan.generator(z), g(z))


def test_dcgan_narrow():
    prog = program("dcgan.net", nz=16, ngf=8, ndf=8, nc=1)
    g, d = ref.Generator(nz=16, ngf=8, nc=1), ref.Discriminator(ndf=8, nc=1)
    gan = pair_with(prog, "DCGAN", {"generator": (g, ref.GENERATOR_NAMES),
                                     "discriminator": (d, ref.DISCRIMINATOR_NAMES)}, seed=4)
    (z,) = inputs(prog, "Generator", seed=1, N=3)
    with torch.no_grad():
        assert_close(gan(z), d(g(z)))


def test_seq2seq():
    c = SEQ2SEQ_SMALL
    prog = program("seq2seq.net", **c)
    enc, dec = ref.Seq2SeqEncoder(**c), ref.Seq2SeqDecoder(**c)
    pair = pair_with(prog, "Seq2Seq", {"encoder": (enc, ref.ENCODER_NAMES), "decoder": (dec, ref.DECODER_NAMES)})
    (src,) = inputs(prog, "Encoder", seed=1, S=9)
    tgt, h, c0 = inputs(prog, "Decoder", seed=2, T=6)
    with torch.no_grad():
        h_ref, c_ref = enc(src)
        assert_close(pair.encode(src), (h_ref, c_ref))
        assert_close(pair.decode(tgt, h, c0), dec(tgt, h, c0))
        assert_close(pair.decode(tgt, h_ref, c_ref), dec(tgt, h_ref, c_ref))
        # the pair's own forward feeds the encoder's state to the decoder (teacher forcing)
        assert_close(pair(src), dec(src, *enc(src)))


# -- the checks themselves ---------------------------------------------------------------------

def test_a_wrong_map_is_caught():
    """A map that misses a weight, or swaps two layers, fails the bijection, the shapes, or
    (for two layers of equal shapes) the outputs."""
    prog = program("lenet.net")
    net = prog.to_torch("LeNet")
    with pytest.raises(AssertionError):
        copy_weights(ref.LeNet(), net, lambda n: ref.LENET_NAMES(n).replace("linear_1", "linear"))
    swapped = {"features.0": "conv2d_1", "features.3": "conv2d", "classifier.1": "linear", "classifier.3": "linear_1"}
    with pytest.raises(AssertionError):
        copy_weights(ref.LeNet(), net, ref.by_prefix(swapped))
    # two layers of equal shapes swapped (GPT-2's two blocks): the map is whole, the outputs differ
    c = GPT2_SMALL
    reference = randomize(ref.GPT2(c["vocab"], c["context"], c["layers"], c["heads"], c["width"], c["p"]), 0)
    gpt = program("gpt2.net", **c).to_torch("GPT2")
    names = ref.gpt2_names(2)
    swap = {"gpt2_block.0.": "gpt2_block.1.", "gpt2_block.1.": "gpt2_block.0."}

    def swapped_blocks(name):
        new = names(name)
        return next((to + new[len(frm):] for frm, to in swap.items() if new.startswith(frm)), new)

    copy_weights(reference, gpt, swapped_blocks)
    tokens = torch.randint(0, c["vocab"], (2, 8))
    with torch.no_grad():
        assert (gpt.eval()(tokens) - reference.eval()(tokens)).abs().max() > 1e-3
