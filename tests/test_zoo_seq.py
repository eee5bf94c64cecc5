"""Reference parity of examples/seq2seq_attention.net: an LSTM encoder-decoder with Bahdanau
attention, against the PyTorch tutorial's modules (tests/references.py), random init,
weights copied by structure, eval mode; then torch against NumPy, and -O2 against -O0.

The decoder is a ``scan`` over a cell with a fixed input (the encoder outputs) and initial
states (the encoder's final (h, c)), so this is also the end-to-end test of both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import references as ref
import torch
from netc.runtime.inputs import random_inputs

import netc

SPEC = Path(__file__).resolve().parents[1] / "examples" / "seq2seq_attention.net"
SMALL = {"src_vocab": 50, "tgt_vocab": 40, "hidden": 16, "p": 0.1}
SIZES = {"N": 3, "S": 7, "T": 5}
RTOL = 1e-5  # max abs diff / max |reference output|


@pytest.fixture(scope="module")
def prog():
    return netc.compile_file(SPEC, defines=SMALL)


def relative(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape and got.dtype == want.dtype
    return ((got - want).abs().max() / want.abs().max()).item()


def randomized_reference() -> torch.nn.Module:
    """The tutorial's model, seeded, with its biases random too (torch starts some at
    constants), so that a swapped map changes the outputs."""
    torch.manual_seed(0)
    reference = ref.Seq2SeqAttention(SMALL["src_vocab"], SMALL["tgt_vocab"], SMALL["hidden"], SMALL["p"])
    with torch.no_grad():
        for name, p in reference.named_parameters():
            if p.dim() == 1:
                p.normal_(0.0, 0.2)
    return reference.eval()


def netc_module(prog, reference, opt: int = 0) -> torch.nn.Module:
    """netc's module with the reference's weights, every weight mapped exactly once."""
    net = prog.to_torch("Seq2SeqAttention", opt=opt).eval()
    src = dict(reference.named_parameters())
    dst = net.state_dict()
    mapping = {name: ref.seq2seq_attention_names(name) for name in src}
    assert sorted(mapping.values()) == sorted(dst), "the map must cover netc's weights exactly once"
    with torch.no_grad():
        for a, b in mapping.items():
            assert src[a].shape == dst[b].shape, (a, b)
            dst[b].copy_(src[a])
    return net


def inputs(prog, seed: int = 1) -> list[torch.Tensor]:
    arrays = random_inputs(prog.graph("Seq2SeqAttention"), SIZES, seed)
    return [torch.from_numpy(a) for a in arrays.values()]


def test_counts_match_the_reference(prog):
    reference = randomized_reference()
    want = sum(p.numel() for p in reference.parameters())
    assert prog.summary("Seq2SeqAttention").params == want
    assert sum(p.numel() for p in netc_module(prog, reference).parameters()) == want


def test_matches_the_tutorial_model(prog):
    reference = randomized_reference()
    net = netc_module(prog, reference)
    src, tgt = inputs(prog)
    assert src.shape == (3, 7) and tgt.shape == (3, 5)
    with torch.no_grad():
        want = reference(src, tgt)
        got = net(src, tgt)
        assert relative(got, want) <= RTOL
        # the attention matters: another sequence's memory (same final states) changes the outputs
        memory, state = reference.encoder(src)
        other = reference.decoder(memory.roll(1, dims=0), state, tgt)
    assert (other - want).abs().max().item() > 1e-3


def test_numpy_and_optimised_agree(prog):
    reference = randomized_reference()
    src, tgt = inputs(prog, seed=2)
    with torch.no_grad():
        want = reference(src, tgt)
        for opt in (1, 2):
            assert relative(netc_module(prog, reference, opt)(src, tgt), want) <= RTOL
    weights = netc_module(prog, reference).state_dict()
    got = prog.to_numpy("Seq2SeqAttention", weights=weights)(src.numpy(), tgt.numpy())
    got = got[0] if isinstance(got, (tuple, list)) else got
    assert relative(torch.from_numpy(np.asarray(got)), want) <= RTOL
