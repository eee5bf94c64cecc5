"""Modules from ``to_torch`` saved whole (``torch.save(model)``) load in a fresh interpreter;
model classes take the model's parameters as constructor arguments (``ResNet18(classes=10)``),
and the weights they build have the shapes the spec elaborated with those values has."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import netc
from netc.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def resnet18():
    return netc.compile_file(str(EXAMPLES / "resnet18.net"))


def shapes(module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


def spec_shapes(spec: str, model: str, **defines) -> dict[str, tuple]:
    """The weights' shapes of the spec elaborated with ``defines`` (the IR, no module built)."""
    graph = netc.compile_file(str(EXAMPLES / spec), defines).graph(model)
    return {k: tuple(p.shape) for k, p in graph.weights().items() if not k.endswith("num_batches_tracked")}


def test_saved_module_loads_and_runs_in_a_fresh_process(tmp_path):
    lenet = netc.compile_file(str(FIXTURES / "lenet_classes.net"))
    torch.manual_seed(0)
    model = lenet.to_torch("LeNet", classes=3).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        y = model(x)
    torch.save(model, tmp_path / "model.pt")
    torch.save({"x": x, "y": y}, tmp_path / "io.pt")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    # a new interpreter with an empty netc cache: the file carries the generated source
    code = ("import torch\n"
            f"m = torch.load({str(tmp_path / 'model.pt')!r}, weights_only=False)\n"
            f"io = torch.load({str(tmp_path / 'io.pt')!r})\n"
            "with torch.no_grad():\n"
            "    y = m(io['x'])\n"
            "assert not m.training\n"
            "print(type(m).__name__, tuple(y.shape), torch.equal(y, io['y']))\n")
    env = {**os.environ, "NETC_CACHE": str(tmp_path / "empty-cache")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                       cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["LeNet", "(2,", "3)", "True"]
    # the state_dict way stays as it was: weights only, into a module built here
    fresh = lenet.to_torch("LeNet", classes=3).eval()
    fresh.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    with torch.no_grad():
        assert torch.equal(fresh(x), y)
    # and a copy is a module of the same class with the same numbers
    twin = copy.deepcopy(model)
    assert type(twin) is type(model)
    with torch.no_grad():
        assert torch.equal(twin(x), y)


def test_resnet18_class_takes_classes(resnet18):
    ResNet18 = resnet18.torch_class("ResNet18")
    model = ResNet18(classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert shapes(model) == spec_shapes("resnet18.net", "ResNet18", classes=10)
    assert shapes(ResNet18()) == spec_shapes("resnet18.net", "ResNet18")  # the default: 1000


def test_emitted_file_class_takes_the_models_parameters(tmp_path, monkeypatch, capsys):
    """The file `netc compile --backend torch` writes, imported as any Python file."""
    out = tmp_path / "resnet18_model.py"
    assert main(["compile", str(EXAMPLES / "resnet18.net"), "--backend", "torch", "-o", str(out)]) == 0
    assert "def __init__(self, classes=1000):" in out.read_text()
    spec = importlib.util.spec_from_file_location("resnet18_model", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert shapes(module.ResNet18(classes=7)) == spec_shapes("resnet18.net", "ResNet18", classes=7)


def test_gpt2_sizes_propagate_and_layers_is_fixed():
    """Vocabulary, context, width and heads size the layers (down into each block); the number
    of layers also sets the output projections' initial std (0.02 / sqrt(2 * layers)), which the
    class cannot compute: it accepts only the spec's value and says how to get another."""
    GPT2 = netc.compile_file(str(EXAMPLES / "gpt2.net")).torch_class("GPT2")
    small = {"vocab": 100, "context": 16, "width": 32, "heads": 4}
    model = GPT2(**small).eval()
    assert shapes(model) == spec_shapes("gpt2.net", "GPT2", **small)
    with torch.no_grad():
        assert model(torch.randint(0, 100, (2, 8))).shape == (2, 8, 100)
    assert model.gpt2_block[0].self_attention.heads == 4
    with pytest.raises(ValueError, match=r"GPT2: a `layers` other than 12 changes more than layer sizes; compile the spec again with -D layers="):
        GPT2(layers=2, **small)


def test_llama_layers_is_a_count():
    """A stack's count is an argument where nothing else depends on it: `LlamaBlock(...) * layers`."""
    Llama = netc.compile_file(str(EXAMPLES / "llama.net")).torch_class("Llama")
    small = {"vocab": 64, "width": 32, "layers": 2, "heads": 4, "kv_heads": 2, "ff": 48}
    model = Llama(**small).eval()
    assert len(model.llama_block) == 2
    assert shapes(model) == spec_shapes("llama.net", "Llama", **small)
    with torch.no_grad():
        assert model(torch.randint(0, 64, (1, 5))).shape == (1, 5, 64)
    with pytest.raises(ValueError, match="`base`"):
        Llama(base=500000.0, **small)


def test_a_parameter_that_changes_the_graph_is_fixed(tmp_path):
    """An `if` on a parameter: another value gives another graph, so the class refuses it."""
    spec = tmp_path / "switch.net"
    spec.write_text("model M(x: float[N, 8], deep: bool = false, width: int = 16) -> float[N, 4] {\n"
                    "    h = x -> linear(width) -> relu\n"
                    "    g = if deep then h -> linear(width) -> relu else h\n"
                    "    return g -> linear(4)\n"
                    "}\n")
    M = netc.compile_file(str(spec)).torch_class("M")
    graph = netc.compile_file(str(spec), {"width": 5}).graph("M")
    assert shapes(M(width=5)) == {k: tuple(p.shape) for k, p in graph.weights().items()}
    assert shapes(M(width=5))["h.weight"] == (5, 8)
    with pytest.raises(ValueError, match="`deep`"):
        M(deep=True)


def test_dcgan_block_arguments_are_computed_from_the_models():
    """`Up(ngf * 4)`: a block's argument is the spec's expression over the model's parameters."""
    Generator = netc.compile_file(str(EXAMPLES / "dcgan.net")).torch_class("Generator")
    model = Generator(nz=16, ngf=8).eval()
    assert shapes(model) == spec_shapes("dcgan.net", "Generator", nz=16, ngf=8)
    assert model.up.conv_transpose2d.weight.shape == (64, 32, 4, 4)  # ngf * 8 -> ngf * 4
    with torch.no_grad():
        assert model(torch.randn(2, 16, 1, 1)).shape == (2, 3, 64, 64)
