"""Emitted modules under ``torch.compile(fullgraph=True)``: no graph breaks, eager's numbers.

``fullgraph=True`` turns any graph break into an error, so each test here fails if the
generated code (or a prelude helper) has Python that Dynamo cannot trace. Dynamo's capture
is the same whatever the backend; the backend only decides what runs the captured graph:

* ``inductor`` (the default: generated C++/OpenMP kernels, built with gcc) for LeNet and a
  reduced GPT-2: the full path a user gets from ``torch.compile(m)``.
* ``aot_eager`` (Dynamo + AOTAutograd, aten ops run eagerly) for ResNet-18, the LSTM
  language model and the training step, and ``eager`` (Dynamo's graph run as is) for the
  full-size Transformer: Inductor's cold C++ build costs 15-20 s per model on two cores,
  and capture is what could break.

The whole file takes about a minute on two idle CPU cores with an empty Inductor cache.
"""

from __future__ import annotations

import pytest
import torch
from netc.runtime.inputs import random_inputs

import netc

GPT2_SMALL = {"vocab": 100, "context": 64, "layers": 2, "heads": 2, "width": 32}


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def model_and_inputs(path: str, name: str, sizes: dict, defines: dict | None = None, opt: int = 0):
    prog = netc.compile_file(path, defines=defines or {})
    torch.manual_seed(0)
    module = prog.to_torch(name, opt=opt)
    inputs = [torch.from_numpy(v) for v in random_inputs(prog.graph(name), sizes, seed=0).values()]
    return module, inputs


def assert_compiled_matches_eager(module, inputs, backend: str) -> None:
    module.eval()
    compiled = torch.compile(module, fullgraph=True, backend=backend)
    with torch.no_grad():
        expected = module(*inputs)
        got = compiled(*inputs)
    # float32: fused kernels may sum in another order, hence the small rtol beside atol.
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_lenet_inductor():
    module, inputs = model_and_inputs("examples/lenet.net", "LeNet", {"N": 4})
    assert_compiled_matches_eager(module, inputs, "inductor")


def test_gpt2_reduced_inductor():
    # causal self-attention through the Attention prelude (SDPA), tied unembedding, positions
    module, inputs = model_and_inputs("examples/gpt2.net", "GPT2", {"N": 2, "T": 16}, GPT2_SMALL)
    assert_compiled_matches_eager(module, inputs, "inductor")


def test_resnet18_fullgraph():
    module, inputs = model_and_inputs("examples/resnet18.net", "ResNet18", {"N": 1})
    assert_compiled_matches_eager(module, inputs, "aot_eager")


def test_resnet18_O2_fullgraph():
    """-O2: folded batch norms, in-place fused activations, channels-last in inference; and
    with gradients on (the standard layout), a training step's graph captures too."""
    module, inputs = model_and_inputs("examples/resnet18.net", "ResNet18", {"N": 2}, {"classes": 10}, opt=2)
    assert_compiled_matches_eager(module, inputs, "aot_eager")
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(*inputs), module(*inputs), atol=1e-5, rtol=1e-5)


def test_transformer_fullgraph():
    # encoder and decoder stacks: cross-attention to memory, causal masks, final layernorms
    module, inputs = model_and_inputs("examples/transformer.net", "Transformer", {"N": 2, "S": 7, "T": 5})
    assert_compiled_matches_eager(module, inputs, "eager")  # full size (44M parameters): capture only


def test_lstm_lm_fullgraph():
    # Dynamo refuses nn.LSTM/GRU/RNN unless allow_rnn is set (a torch limitation, not netc's)
    module, inputs = model_and_inputs("examples/lstm_lm.net", "LSTMLanguageModel", {"N": 2, "T": 6},
                                      {"vocab": 50, "dim": 16})
    with torch._dynamo.config.patch(allow_rnn=True):
        assert_compiled_matches_eager(module, inputs, "aot_eager")


def test_training_step_compiled_matches_eager():
    """Forward and backward of a compiled GPT-2 in train mode (dropout 0): same loss and grads."""
    module, (tokens,) = model_and_inputs("examples/gpt2.net", "GPT2", {"N": 2, "T": 16},
                                         {**GPT2_SMALL, "p": 0.0})
    module.train()
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")

    def loss_and_grads(fn):
        module.zero_grad()
        logits = fn(tokens)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens.roll(-1, dims=1).flatten())
        loss.backward()
        return loss.detach(), {k: p.grad.clone() for k, p in module.named_parameters()}

    loss, grads = loss_and_grads(module)
    closs, cgrads = loss_and_grads(compiled)
    torch.testing.assert_close(closs, loss, atol=1e-5, rtol=1e-5)
    assert cgrads.keys() == grads.keys()
    for k in grads:
        torch.testing.assert_close(cgrads[k], grads[k], atol=1e-5, rtol=1e-5, msg=k)
