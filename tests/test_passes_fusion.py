"""The layer fusions of -O2 (fold_batchnorm, fuse_activation), its layout pass
(use_channels_last) and -O3's fuse_qkv, tested the torch.fx way.

Each case runs one pass on a copy of a small model's graph and checks the expected node
delta, that ``changed`` is true exactly when the graph changed, that the graph verifies and
its types re-infer, that a second run changes nothing, and that the numbers are the same:
the NumPy executor at float64 (within 1e-10) and torch at float32 (within 1e-5), with the
unoptimised model's weights (batch-norm statistics made non-trivial) converted by the pass's
weight transforms. Every example model gives its -O0 numbers at -O2, and a model trained at
-O0 gives the same outputs when its state dict is converted and loaded into the -O2 module.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from netc.backends.render import labels
from netc.compiler.ir import Graph
from netc.compiler.passes import PassContext, all_passes, convert_weights
from netc.compiler.pipeline import Compiled
from netc.compiler.shapes import infer
from netc.compiler.verify import verify
from netc.runtime.inputs import random_inputs

import netc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PASSES = {p.name: p for p in all_passes()}
FUSIONS = ["fold_batchnorm", "fuse_qkv", "fuse_activation", "use_channels_last"]
# Big examples made small, as in test_numpy_backend.py.
SMALL = {
    "dcgan": {"ngf": 8, "ndf": 8},
    "gpt2": {"layers": 2, "width": 32, "vocab": 100, "heads": 2, "context": 64},
    "llama": {"layers": 2, "width": 32, "vocab": 100, "heads": 4, "kv_heads": 2, "ff": 48},
    "bert": {"layers": 2, "width": 32, "vocab": 100, "heads": 2, "ff": 64, "context": 64},
    "gru_classifier": {"vocab": 100, "dim": 16, "hidden": 24},
    "lstm_lm": {"vocab": 100, "dim": 32},
    "resnet18": {"classes": 10},
    "seq2seq": {"vocab": 50, "dim": 16, "hidden": 32},
    "vgg11": {"classes": 10},
    "seq2seq_attention": {"src_vocab": 50, "tgt_vocab": 40, "hidden": 16},
    "mobilenet_v2": {"classes": 10},
    "efficientnet_b0": {"classes": 10},
    "convnext_tiny": {"classes": 10, "width": 8, "depth1": 1, "depth2": 1, "depth3": 2, "depth4": 1},
    "vit_b16": {"size": 32, "patch": 8, "width": 32, "layers": 2, "heads": 2, "mlp": 64, "classes": 10},
}
SIZES = {"gpt2": {"T": 7}, "llama": {"T": 7}, "bert": {"T": 7}, "resnet18": {"N": 1}, "vgg11": {"N": 1},
         "transformer": {"S": 3, "T": 4}, "mobilenet_v2": {"N": 1, "H": 32, "W": 40},
         "efficientnet_b0": {"N": 1, "H": 32, "W": 40}, "unet": {"N": 1, "H": 19, "W": 23},
         "convnext_tiny": {"N": 1, "H": 32, "W": 32}}
SMALL_SIZES = {"N": 3, "T": 5}

SPECS = """
import "std/resnet.net"

# fold_batchnorm
model ConvBNAct(x: float[N, 3, 8, 8]) -> float[N, 6] {
    return x -> conv2d(4, 3, padding=1) -> batchnorm -> relu
             -> conv2d(5, 3, bias=false) -> batchnorm -> leaky_relu(0.2)
             -> conv_transpose2d(3, 2, stride=2) -> batchnorm -> sigmoid
             -> global_avgpool -> linear(6) -> batchnorm -> tanh
}
model Seq(s: float[N, 4, T]) -> float[N, 3, T] {
    return s -> conv1d(6, 3, padding=1, bias=false) -> batchnorm -> batchnorm -> gelu -> conv1d(3, 1)
}
model TwoReaders(x: float[N, 3, 8, 8]) -> float[N, 4, 8, 8] {
    y = x -> conv2d(4, 3, padding=1)
    return (y -> batchnorm) + (y -> relu)
}
model OverTime(x: float[N, 5, 8]) -> float[N, 5, 5] {
    return x -> linear(5) -> batchnorm
}
model Written(x: float[N, 8]) -> float[N, 4] {
    return x -> linear(4, activation="tanh") -> batchnorm -> relu
}
model MiniResNet(x: float[N, 3, 16, 16]) -> float[N, 10] {
    return x -> ConvBN(8) -> relu -> Basic(8) -> Basic(16, stride=2) -> global_avgpool -> linear(10)
}

# fuse_activation
model Acts(x: float[N, 3, 8, 8], s: float[N, 4, T]) -> (float[N, 5], float[N, T, 3]) {
    a = x -> conv2d(4, 3, padding=1) -> relu -> conv2d(4, 3) -> leaky_relu(0.2)
          -> conv_transpose2d(2, 2, stride=2) -> sigmoid -> global_avgpool
          -> linear(8) -> gelu -> linear(5) -> silu
    b = s -> conv1d(6, 3, padding=1) -> tanh -> transpose(1, 2) -> linear(3) -> relu
    return a, b
}
model Result(x: float[N, 8]) -> (float[N, 4], float[N, 4]) {
    y = x -> linear(4)
    return y, y -> relu
}
model Stack(x: float[N, 8]) -> float[N, 8] {
    return x -> linear(8) * 3 -> relu
}

# fuse_qkv
model QKV(x: float[N, T, 16]) -> (float[N, T, 4], float[N, T, 3], float[N, T, 5]) {
    q = x -> linear(8)
    k = x -> linear(8)
    v = x -> linear(4)
    att = q @ (k -> transpose(1, 2)) / 4.0 -> softmax
    u = x -> linear(3, bias=false)
    w = x -> linear(5, bias=false)
    return att @ v, u, w
}
block Proj(x: [N, T, D]) {
    return x -> linear(4)
}
model Blocks(x: float[N, T, 16]) -> float[N, T, 4] {
    return (x -> Proj) + (x -> linear(4))
}

# use_channels_last
model Up(z: float[N, 8]) -> float[N, 3, 8, 8] {
    return z -> linear(64) -> reshape(-1, 4, 4, 4) -> conv_transpose2d(3, 2, stride=2) -> tanh
}
model Tied(x: float[N, 8]) -> float[N, 8] {
    let fc = linear(8)
    return (x -> fc) + (x -> fc) + (x -> linear(8))
}
"""

# (pass, model, node delta, what the result says: a rewrite or a skip)
CASES = [
    ("fold_batchnorm", "ConvBNAct", {"batchnorm": -4}, "folded batchnorm `batchnorm` into conv2d `conv2d`"),
    ("fold_batchnorm", "Seq", {"batchnorm": -2}, "into conv1d `conv1d` (weights scaled, bias added)"),
    ("fold_batchnorm", "TwoReaders", {}, "not folded into conv2d `y`: `y` is also read by `relu`"),
    ("fold_batchnorm", "OverTime", {}, "batchnorm normalises dim 1, not the features of `linear`"),
    ("fold_batchnorm", "Written", {}, "`linear` applies tanh before the batchnorm"),
    ("fold_batchnorm", "MiniResNet", {"batchnorm": -6}, "into conv2d `basic_1.skip.conv2d`"),
    ("fuse_activation", "Acts", {"relu": -2, "leaky_relu": -1, "sigmoid": -1, "gelu": -1, "silu": -1, "tanh": -1},
     "fused leaky_relu `leaky_relu` into conv2d `conv2d_1`"),
    ("fuse_activation", "TwoReaders", {}, "relu `relu` not fused into conv2d `y`: `y` is also read by `batchnorm`"),
    ("fuse_activation", "Result", {}, "relu `relu` not fused into linear `y`: `y` is a result of the model"),
    ("fuse_activation", "Stack", {"relu": -1}, "fused relu `relu` into linear `linear.2`"),
    ("fuse_activation", "ConvBNAct", {}, None),  # each activation reads a batchnorm
    ("fuse_qkv", "QKV", {"linear": -3, "split": 2}, "fused linear `q`, `k`, `v` ==> linear `q_k_v` (out=20)"),
    ("fuse_qkv", "Blocks", {}, "which reads the same input: they are in different blocks"),
    ("use_channels_last", "ConvBNAct", {"memory_format": 1}, "input `x` converted to channels-last"),
    ("use_channels_last", "TwoReaders", {"memory_format": 2}, "result `add` back to the standard layout"),
    ("use_channels_last", "Up", {"memory_format": 2}, "reshape `reshape` converted to channels-last"),
    ("use_channels_last", "MiniResNet", {"memory_format": 1}, "input `x` converted to channels-last"),
    ("use_channels_last", "Seq", {}, None),  # conv1d: no channels-last layout
    ("fuse_qkv", "Tied", {}, "linear `fc_1` not fused with the other readers of its input: `fc_1` applies the weights of `fc`"),
]


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> netc.Program:
    path = tmp_path_factory.mktemp("passes") / "fusion.net"
    path.write_text(SPECS)
    return netc.compile_file(path)


def run_pass(name: str, graph: Graph) -> tuple[Graph, object, list]:
    ctx = PassContext(graph.copy(), level=2)
    result = PASSES[name].run(ctx)
    return ctx.graph, result, ctx.transforms


def node_delta(before: Graph, after: Graph) -> dict:
    delta = Counter(n.op for n in after.nodes())
    delta.subtract(Counter(n.op for n in before.nodes()))
    return {op: d for op, d in delta.items() if d}


def fingerprint(g: Graph) -> str:
    """Everything a pass may change: nodes (ops, inputs, attrs, types, order), results,
    block interfaces."""
    return "\n".join([str(g), repr(sorted((p, i.inputs, i.outputs) for p, i in g.blocks.items() if i.kind == "block"))])


def rel_diff(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = np.abs(want).max() if want.size else 0.0
    diff = np.abs(got - want).max(initial=0)
    return float(diff / scale) if scale else float(diff)


def as_tuple(y) -> tuple:
    return y if isinstance(y, tuple) else (y,)


def assert_same(got, want, tol: float, what: str) -> None:
    got, want = as_tuple(got), as_tuple(want)
    assert len(got) == len(want), what
    for a, b in zip(got, want):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        assert rel_diff(a, b) <= tol, f"{what}: max rel diff {rel_diff(a, b):.3g}"


def run_torch(module, inputs: list) -> tuple:
    with torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    return tuple(o.numpy() for o in as_tuple(out))


def double(sd: dict) -> dict:
    return {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}


def weights(module: torch.nn.Module, seed: int = 0) -> dict:
    """The module's state dict with batch-norm statistics and affine terms that do something
    (fresh ones are the identity: mean 0, var 1, scale 1, shift 0)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in module.state_dict().items():
        if k.endswith("running_var"):
            v = 0.5 + 1.5 * torch.rand(v.shape, generator=g)
        elif k.endswith("running_mean"):
            v = 0.3 * torch.randn(v.shape, generator=g)
        elif v.is_floating_point():
            v = v + 0.1 * torch.randn(v.shape, generator=g)
        out[k] = v
    return out


def check_numerics(prog: netc.Program, name: str, opt: netc.Program, sd: dict, convert, sizes: dict | None) -> None:
    """``opt``'s model ``name`` with ``convert(sd)`` gives ``prog``'s numbers with ``sd``
    (converted in float64 for the float64 check: folding rounds in the weights' dtype)."""
    torch.manual_seed(0)
    module = prog.to_torch(name).eval()
    module.load_state_dict(sd)
    g = prog.graph(name)
    xs = list(random_inputs(g, sizes, seed=1, dtype=np.float64).values())
    want = prog.to_numpy(name, weights=double(sd))(*xs)
    assert_same(opt.to_numpy(name, weights=convert(double(sd)))(*xs), want, 1e-10, f"{name} numpy float64")
    xs = list(random_inputs(g, sizes, seed=1).values())
    fused = opt.to_torch(name).eval()
    fused.load_state_dict(convert(sd))
    assert_same(run_torch(fused, xs), run_torch(module, xs), 1e-5, f"{name} torch float32")


@pytest.mark.parametrize("name, model, delta, says", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_pass(prog, name, model, delta, says):
    before = prog.graph(model)
    after, result, transforms = run_pass(name, before)
    assert node_delta(before, after) == delta
    assert result.changed == (fingerprint(after) != fingerprint(before)) == bool(result.rewrites)
    verify(after)
    infer(after)
    assert fingerprint(before) == fingerprint(prog.graph(model)), "the pass changed its input graph"
    text = "\n".join(str(c) for c in result.rewrites + result.skipped)
    if says:
        assert says in text
    else:
        assert not text, text
    for c in result.rewrites + result.skipped:
        assert c.span is not None, c
    again, second, _ = run_pass(name, after)
    assert not second.changed and fingerprint(again) == fingerprint(after), second.rewrites
    torch.manual_seed(0)
    sd = weights(prog.to_torch(model))
    opt = netc.Program(Compiled(prog.path, {model: after}, {}))

    def convert(w: dict) -> dict:
        return {k: v for k, v in convert_weights(transforms, w).items() if k in after.weights()}

    check_numerics(prog, model, opt, sd, convert, SMALL_SIZES)


@pytest.mark.parametrize("model", ["TwoReaders", "Up", "MiniResNet"])
def test_channels_last_in_torch(prog, model):
    """At -O2 every convolution gets a channels-last input in inference (no_grad), results
    leave contiguous; training keeps the standard layout (oneDNN's channels-last weight
    gradient of a strided 1x1 convolution with 8 input channels crashes: MiniResNet's skip)
    and gives the gradients of -O2 without the pass."""
    torch.manual_seed(0)
    o0 = prog.optimized(2, disable=("use_channels_last",)).to_torch(model)  # the same, but for the layout
    o2 = prog.to_torch(model, opt=2)
    o2.load_state_dict(o0.state_dict())
    seen = []
    for m in o2.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_pre_hook(lambda _, xs: seen.append(xs[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(3, *[int(d) for d in prog.graph(model).input_nodes()[0].type.shape[1:]])
    with torch.no_grad():
        want, got = o0(x), o2(x)
    assert seen and all(seen)
    assert got.is_contiguous() and rel_diff(got.numpy(), want.numpy()) <= 1e-5
    seen.clear()
    for net in (o0, o2):
        net(x).square().sum().backward()
    assert seen and not any(seen)
    g0, g2 = dict(o0.named_parameters()), dict(o2.named_parameters())
    assert g0.keys() == g2.keys()
    for k, p in g0.items():
        assert rel_diff(g2[k].grad.numpy(), p.grad.numpy()) <= 1e-5, k


def test_every_fusion_is_tested():
    assert {c[0] for c in CASES} == set(FUSIONS)
    assert {p: PASSES[p].level for p in FUSIONS} == {p: 3 if p == "fuse_qkv" else 2 for p in FUSIONS}
    names = list(PASSES)
    assert names.index("remove_dropout") < names.index("fold_batchnorm") < names.index("fuse_qkv")
    assert names.index("fuse_qkv") < names.index("fuse_activation") < names.index("eliminate_dead_code")


# -- what the fused graph says and how the backends write it --------------------------------

def test_fused_layers_keep_their_names(prog):
    opt = prog.optimized(2)
    g = opt.graph("ConvBNAct")
    assert [n.op for n in g.nodes()] == ["input", "memory_format", "conv2d", "conv2d", "conv_transpose2d",
                                         "global_avgpool", "linear"]
    assert set(g.weights()) == {f"{n}.{p}" for n in ("conv2d", "conv2d_1", "conv_transpose2d", "linear")
                                for p in ("weight", "bias")}
    conv = g.node("conv2d_1")
    assert conv.attrs.bias and conv.attrs.activation == "leaky_relu" and conv.attrs.activation_slope == 0.2
    before = prog.graph("ConvBNAct")
    assert conv.span == before.node("conv2d_1").span.union(before.node("leaky_relu").span)
    assert "split" not in {n.op for n in opt.graph("QKV").nodes()}  # fuse_qkv is -O3's
    assert set(prog.optimized(3).graph("QKV").weights()) == {"q_k_v.weight", "q_k_v.bias", "u_w.weight"}


def test_emitted_code(prog):
    opt = prog.optimized(2)
    src = opt.torch_source("ConvBNAct", "Stack") + prog.optimized(3).torch_source("QKV")
    assert "channels_last = x if torch.is_grad_enabled() else x.contiguous(" in src  # use_channels_last
    assert "conv2d = torch.relu_(self.conv2d(channels_last))" in src
    assert "conv2d_1 = F.leaky_relu(self.conv2d_1(conv2d), 0.2, inplace=True)" in src
    assert "linear = torch.tanh_(self.linear(global_avgpool))" in src
    assert "self.q_k_v = nn.Linear(16, 20)" in src and "self.u_w = nn.Linear(16, 8, bias=False)" in src
    assert "torch.split(\n            q_k_v, [8, 8, 4], dim=-1\n        )" in src
    # an nn.ModuleList (same weight names as nn.Sequential), which calls each copy itself
    assert "self.linear = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)])" in src
    assert "linear_2 = torch.relu_(self.linear[2](linear_1))" in src
    acts = opt.torch_source("Acts")
    assert "F.gelu(self.linear(global_avgpool))" in acts and "F.silu(self.linear_1(linear), inplace=True)" in acts
    np_src = opt.numpy_source("ConvBNAct")
    assert '        activation="leaky_relu",\n        activation_slope=0.2,\n' in np_src
    assert 'padding=1,\n        activation="relu",\n' in np_src


def test_in_place_activations_keep_gradients(prog):
    """The fused activations write over the layer's fresh output (torch.relu_...): autograd
    still gives -O0's gradients, since no layer's gradient needs its own output."""
    torch.manual_seed(0)
    o0 = prog.to_torch("Acts")
    o2 = prog.to_torch("Acts", opt=2)
    o2.load_state_dict(prog.convert_weights("Acts", o0.state_dict(), 2))
    xs = [torch.randn(3, 3, 8, 8), torch.randn(3, 4, 5)]
    for net in (o0, o2):
        a, b = net(*xs)
        (a.square().sum() + b.sum()).backward()
    g0, g2 = dict(o0.named_parameters()), dict(o2.named_parameters())
    assert g0.keys() == g2.keys()
    for k, p in g0.items():
        assert rel_diff(g2[k].grad.numpy(), p.grad.numpy()) <= 1e-5, k


def test_summary_and_diagram_show_the_fusion(prog):
    opt = prog.optimized(2)
    rows = {r.name: r.op for r in opt.summary("ConvBNAct").rows}
    assert rows["conv2d"] == "conv2d+relu" and rows["linear"] == "linear+tanh"
    g = opt.graph("ConvBNAct")
    assert labels.op_title(g.node("conv_transpose2d")) == "conv_transpose2d+sigmoid"
    assert "conv2d+relu" in opt.diagram("ConvBNAct").source
    assert rows == {r.name: r.op for r in opt.summary("ConvBNAct").rows}
    assert {r.op for r in prog.summary("ConvBNAct").rows} >= {"conv2d", "batchnorm", "relu"}


def test_numpy_activation_runs_in_place():
    from netc.backends.numpy.kernels import ORDER

    activate, reference = ORDER["_activate"], ORDER
    x = np.linspace(-6, 6, 101)
    for act in ("relu", "leaky_relu", "tanh", "sigmoid", "silu", "gelu"):
        y = x.copy()
        out = activate(y, act, 0.3)
        want = reference[act](x, 0.3) if act == "leaky_relu" else reference[act](x)
        assert out is y and np.array_equal(out, want), act
    y = x.astype(np.float32)
    assert activate(y, "gelu").dtype == np.float32


def test_written_activation_matches_torch(prog):
    """A spec may set ``activation`` itself: both backends apply it at -O0."""
    torch.manual_seed(0)
    module = prog.to_torch("Written").eval()
    assert "torch.tanh_(self.linear(x))" in prog.torch_source("Written")
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    got = prog.to_numpy("Written", weights=module.state_dict())(x)
    assert_same(got, run_torch(module, [x]), 1e-5, "Written")


# -- trained at -O0, then fused ------------------------------------------------------------

@pytest.mark.parametrize("model", ["ConvBNAct", "MiniResNet"])
def test_trained_then_fused(prog, model):
    """Train the -O0 module a few steps (batch statistics move the running ones), convert its
    state dict, load it into the -O2 module: the same outputs in eval mode."""
    torch.manual_seed(0)
    net = prog.to_torch(model)
    x = torch.randn(8, *[int(d) for d in prog.graph(model).input_nodes()[0].type.shape[1:]])
    target = torch.randint(0, 6 if model == "ConvBNAct" else 10, (8,))
    optim = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()
    for _ in range(5):
        optim.zero_grad()
        torch.nn.functional.cross_entropy(net(x), target).backward()
        optim.step()
    net.eval()
    sd = net.state_dict()
    assert not torch.allclose(next(v for k, v in sd.items() if k.endswith("running_var")), torch.ones(1))
    fused = prog.to_torch(model, opt=2).eval()
    fused.load_state_dict(prog.convert_weights(model, sd, 2))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    with torch.no_grad():
        assert rel_diff(fused(x).numpy(), net(x).numpy()) <= 1e-5


def test_weight_transforms_take_arrays_or_tensors(prog):
    torch.manual_seed(0)
    sd = weights(prog.to_torch("ConvBNAct"))
    as_tensors = prog.convert_weights("ConvBNAct", double(sd), 2)
    as_arrays = prog.convert_weights("ConvBNAct", {k: v.numpy() for k, v in double(sd).items()}, 2)
    assert as_tensors.keys() == as_arrays.keys()
    for k, v in as_arrays.items():
        assert isinstance(v, np.ndarray) and np.array_equal(v, as_tensors[k].numpy()), k
    sd = weights(prog.to_torch("QKV"))
    arrays = prog.convert_weights("QKV", {k: v.numpy() for k, v in sd.items()}, 3)
    assert np.array_equal(arrays["q_k_v.weight"], np.concatenate([sd[f"{n}.weight"].numpy() for n in "qkv"]))
    assert np.array_equal(arrays["u_w.weight"], np.concatenate([sd["u.weight"].numpy(), sd["w.weight"].numpy()]))


# -- every example: the -O0 numbers at -O3 (every pass of -O2 and fuse_qkv; tests/test_verify_run.py
# runs -O2 itself) ---------------------------------------------------------------------------

SPEC_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.net"))


@pytest.mark.parametrize("spec", SPEC_NAMES)
def test_example_numerics_at_O3(spec):
    prog = netc.compile_file(EXAMPLES / f"{spec}.net", defines=SMALL.get(spec))
    opt = prog.optimized(3)
    for model in (m for m in prog.models if m not in prog.pairs):
        torch.manual_seed(0)
        sd = weights(prog.to_torch(model))
        check_numerics(prog, model, opt, sd, lambda w, m=model: prog.convert_weights(m, w, 3), SIZES.get(spec))
