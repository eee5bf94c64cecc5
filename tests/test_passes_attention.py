"""The -O2 fusions (fuse_layernorm, fuse_attention, fuse_elementwise), tested the torch.fx way.

Each case runs one pass on a copy of a small model's graph and checks the expected node
delta, that ``changed`` is true exactly when the graph changed, that the graph verifies and
its types re-infer, that a second run changes nothing, and that the numbers are the same:
the NumPy executor at float64 (within 1e-10) and torch at float32 (within 1e-5), with the
weights of the unoptimised model. The whole -O2 pipeline does the same on these models and
on every example (made small), with ``convert_weights``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from netc.backends.numpy.kernels import KERNELS
from netc.backends.render.labels import op_detail
from netc.compiler.ir import Graph
from netc.compiler.passes import PassContext, all_passes, optimize
from netc.compiler.pipeline import Compiled
from netc.compiler.shapes import infer
from netc.compiler.verify import verify
from netc.runtime.inputs import random_inputs

import netc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PASSES = {p.name: p for p in all_passes()}
FUSIONS = ["fuse_layernorm", "fuse_attention", "fuse_elementwise"]
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

SPECS = """
# fuse_attention
model Heads(x: float[N, T, 32]) -> float[N, T, 32] {
    q = x -> linear(32) -> reshape(N, T, 4, 8) -> transpose(1, 2)
    k = x -> linear(32) -> reshape(N, T, 4, 8) -> transpose(1, 2)
    v = x -> linear(32) -> reshape(N, T, 4, 8) -> transpose(1, 2)
    a = softmax(q @ transpose(k, -2, -1) / sqrt(8)) @ v
    return a -> transpose(1, 2) -> reshape(N, T, 32) -> linear(32)
}
model Masked(q: float[N, T, 8], k: float[N, S, 8], v: float[N, S, 4], mask: float[T, S]) -> float[N, T, 4]
{
    return softmax(mask + q @ transpose(k, -1, -2) * (1 / sqrt(8))) @ v
}
model Unscaled(q: float[N, T, 8], k: float[N, S, 8], v: float[N, S, 4]) -> float[N, T, 4] {
    return softmax(q @ transpose(k, 1, 2)) @ v
}
model Scores(q: float[N, T, 8], k: float[N, S, 8], v: float[N, S, 4]) -> (y: float[N, T, 4], s: float[N, T, S])
{
    s = q @ transpose(k, -2, -1) / 2.0
    return softmax(s) @ v, s
}
model Columns(q: float[N, T, 8], k: float[N, T, 8], v: float[N, T, 4]) -> float[N, T, 4] {
    return softmax(q @ transpose(k, -2, -1) / 2.0, dim=1) @ v
}
block Scaled(q: [N, T, D], k: [N, S, D]) {
    return q @ transpose(k, -2, -1) / 2.0
}
model Split(q: float[N, T, 8], k: float[N, S, 8], v: float[N, S, 4]) -> float[N, T, 4] {
    return softmax(Scaled(q, k)) @ v
}

# fuse_layernorm
model Norm(x: float[N, T, 16]) -> float[N, T, 16] {
    m = mean(x, -1, keepdim=true)
    d = x - m
    v = mean(d * d, -1, keepdim=true)
    return d / sqrt(v + 1e-5)
}
model Thrice(x: float[N, 16]) -> float[N, 16] {
    return (x - mean(x, 1, keepdim=true))
        / sqrt(1e-6 + mean((x - mean(x, -1, keepdim=true)) * (x - mean(x, -1, keepdim=true)), -1, keepdim=true))
}
model TwoDims(x: float[N, 4, 8]) -> float[N, 4, 8] {
    d = x - mean(x, (-2, -1), keepdim=true)
    return d / sqrt(mean(d * d, (1, 2), keepdim=true) + 1e-5) * 2.0 + 1.0
}
model Variance(x: float[N, 16]) -> (y: float[N, 16], var: float[N, 1]) {
    d = x - mean(x, -1, keepdim=true)
    v = mean(d * d, -1, keepdim=true)
    return d / sqrt(v + 1e-5), v
}
model NotLast(x: float[N, 16, 4]) -> float[N, 16, 4] {
    d = x - mean(x, 1, keepdim=true)
    return d / sqrt(mean(d * d, 1, keepdim=true) + 1e-5)
}

# fuse_elementwise
model Gate(x: float[N, 16], y: float[N, 16]) -> float[N, 16] {
    return sigmoid(x * 0.5 + y) - 1.0
}
model Every(x: float[N, 16], b: float[16]) -> float[N, 16] {
    h = -(2.0 - x / 3.0) -> abs -> sqrt -> exp -> tanh -> gelu -> silu -> leaky_relu(0.2)
    return log(1.0 / (abs(h + b) + 1.0) + 2.0) * b -> relu
}
model Forks(x: float[N, 16]) -> (a: float[N, 16], b: float[N, 16]) {
    h = x * 2.0 + 1.0
    return h -> relu, (h -> tanh) * h
}
model Lone(x: float[N, 16], w: float[16, 16]) -> float[N, 16] {
    return relu(x) @ (w * w -> sigmoid)
}
model Scalar(x: float[N, 16]) -> float[] {
    return sigmoid(mean(x, (0, 1)) * 2.0 + 1.0)
}
block Act(x: [N, C]) {
    return x -> tanh
}
model Across(x: float[N, 16]) -> float[N, 16] {
    return x * 2.0 -> Act -> sigmoid
}
"""

# (pass, model, node delta, text of a rewrite or skip it reports)
CASES = [
    ("fuse_attention", "Heads", {"transpose": -1, "matmul": -2, "div": -1, "constant": -1, "softmax": -1,
                                 "attention": 1}, "softmax(q @ kᵀ * 0.353553) @ v ending at `matmul_1`"),
    ("fuse_attention", "Masked", {"transpose": -1, "matmul": -2, "mul": -1, "constant": -1, "add": -1,
                                  "softmax": -1, "attention": 1}, "+ mask) @ v"),
    ("fuse_attention", "Unscaled", {"transpose": -1, "matmul": -2, "softmax": -1, "attention": 1},
     "softmax(q @ kᵀ) @ v"),
    ("fuse_attention", "Scores", {}, "not fused: `div` is a result of a model or block"),
    ("fuse_attention", "Columns", {}, "the softmax runs over dim 1, not the last one"),
    ("fuse_attention", "Split", {}, "are in different blocks"),
    ("fuse_layernorm", "Norm", {"mean": -2, "sub": -1, "mul": -1, "constant": -1, "add": -1, "sqrt": -1,
                                "div": -1, "layernorm": 1}, "(x - mean) / sqrt(var + 1e-05)"),
    ("fuse_layernorm", "Thrice", {"mean": -4, "sub": -3, "mul": -1, "constant": -1, "add": -1, "sqrt": -1,
                                  "div": -1, "layernorm": 1}, "sqrt(var + 1e-06)"),
    ("fuse_layernorm", "TwoDims", {"mean": -2, "sub": -1, "mul": -1, "constant": -1, "add": -1, "sqrt": -1,
                                   "div": -1, "layernorm": 1}, "over the last 2 dims"),
    ("fuse_layernorm", "Variance", {}, "not fused: `mean_1` is a result of a model or block"),
    ("fuse_layernorm", "NotLast", {}, None),
    ("fuse_elementwise", "Gate", {"mul": -1, "add": -1, "sigmoid": -1, "sub": -1, "constant": -2,
                                  "fused_elementwise": 1}, "mul+add+sigmoid+sub"),
    ("fuse_elementwise", "Every", {"div": -2, "sub": -1, "neg": -1, "abs": -2, "sqrt": -1, "exp": -1, "tanh": -1,
                                   "gelu": -1, "silu": -1, "leaky_relu": -1, "add": -3, "log": -1, "mul": -1,
                                   "relu": -1, "constant": -5, "fused_elementwise": 1}, "==> fused_elementwise `relu`"),
    ("fuse_elementwise", "Forks", {"mul": -2, "add": -1, "tanh": -1, "constant": -2, "fused_elementwise": 2},
     "`add` -> `mul_1` not fused: `add` is also read by `relu`"),
    ("fuse_elementwise", "Lone", {}, None),
    ("fuse_elementwise", "Scalar", {"mul": -1, "add": -1, "sigmoid": -1, "constant": -2, "fused_elementwise": 1},
     "mul+add+sigmoid"),
    ("fuse_elementwise", "Across", {"tanh": -1, "sigmoid": -1, "fused_elementwise": 1},
     "tanh+sigmoid (`act.tanh` -> `sigmoid`) ==> fused_elementwise `act.tanh` across the result of Act `act`"),
]


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> netc.Program:
    path = tmp_path_factory.mktemp("passes") / "fusions.net"
    path.write_text(SPECS)
    return netc.compile_file(path)


def run_pass(name: str, graph: Graph):
    ctx = PassContext(graph.copy(), level=2)
    return ctx.graph, PASSES[name].run(ctx)


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
        assert np.isfinite(b).all(), f"{what}: the reference is not finite"
        assert rel_diff(a, b) <= tol, f"{what}: max rel diff {rel_diff(a, b):.3g}"


def run_torch(module, inputs: list) -> tuple:
    with torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    return tuple(o.numpy() for o in as_tuple(out))


def double(sd: dict) -> dict:
    return {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}


@dataclass
class Baseline:
    """``prog``'s model at -O0: its seeded weights and its numbers on seeded inputs."""

    sd: dict
    xs64: list
    want64: object
    xs32: list
    want32: tuple


def baseline(prog: netc.Program, name: str, sizes: dict | None = None) -> Baseline:
    torch.manual_seed(0)
    module = prog.to_torch(name).eval()
    for key, b in module.named_buffers():  # batch-norm statistics other than the identity
        if key.endswith("running_var"):
            b.uniform_(0.5, 1.5)
        elif key.endswith("running_mean"):
            b.normal_(0.0, 0.1)
    sd = module.state_dict()
    g = prog.graph(name)
    xs64 = list(random_inputs(g, sizes, seed=1, dtype=np.float64).values())
    xs32 = list(random_inputs(g, sizes, seed=1).values())
    return Baseline(sd, xs64, prog.to_numpy(name, weights=double(sd))(*xs64), xs32, run_torch(module, xs32))


def check_numerics(prog: netc.Program, name: str, opt: netc.Program, sizes: dict | None = None,
                   convert: bool = False, base: Baseline | None = None) -> None:
    """The model of ``opt`` gives the numbers of ``prog``'s, with ``prog``'s weights
    (converted to the fused layout when ``convert``). ``base``: ``baseline(prog, name,
    sizes)``, when the caller checks several programs against the same one."""
    base = base or baseline(prog, name, sizes)
    sd = base.sd
    fused_sd = prog.convert_weights(name, sd, 2) if convert else sd
    fused64 = prog.convert_weights(name, double(sd), 2) if convert else double(sd)  # folded in float64
    assert_same(opt.to_numpy(name, weights=fused64)(*base.xs64), base.want64, 1e-10, f"{name} numpy float64")
    fused = opt.to_torch(name).eval()
    fused.load_state_dict(fused_sd)
    assert_same(run_torch(fused, base.xs32), base.want32, 1e-5, f"{name} torch float32")


SMALL_SIZES = {"N": 3, "T": 5, "S": 6}


@pytest.mark.parametrize("name, model, delta, says", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_pass(prog, name, model, delta, says):
    before = prog.graph(model)
    after, result = run_pass(name, before)
    assert node_delta(before, after) == delta
    assert result.changed == (fingerprint(after) != fingerprint(before)) == bool(result.rewrites)
    verify(after)
    infer(after)
    assert fingerprint(before) == fingerprint(prog.graph(model)), "the pass changed its input graph"
    text = "\n".join(str(c) for c in result.rewrites + result.skipped)
    if says:
        assert says in text
    else:
        assert not result.skipped, text
    for c in result.rewrites:
        assert c.span is not None, c
    again, second = run_pass(name, after)
    assert not second.changed and fingerprint(again) == fingerprint(after), second.rewrites
    check_numerics(prog, model, netc.Program(Compiled(prog.path, {model: after}, {})), SMALL_SIZES)


def test_every_fusion_is_tested():
    assert {c[0] for c in CASES} == set(FUSIONS)
    assert all(PASSES[p].level == 2 for p in FUSIONS)
    names = list(PASSES)
    assert names.index("fuse_layernorm") < names.index("fuse_attention") < names.index("fuse_elementwise")
    assert names.index("fuse_elementwise") < names.index("eliminate_dead_code")
    for before in ("fold_constants", "remove_dropout", "fold_batchnorm", "fuse_activation"):
        if before in names:
            assert names.index(before) < names.index("fuse_layernorm" if before < "fuse" else "fuse_elementwise")


# -- the whole -O2 pipeline ----------------------------------------------------------------

FUSED = {"Heads": "attention", "Masked": "attention", "Unscaled": "attention", "Norm": "layernorm",
         "Thrice": "layernorm", "TwoDims": "layernorm", "Gate": "fused_elementwise", "Every": "fused_elementwise"}


@pytest.mark.parametrize("model", sorted(FUSED))
def test_pipeline_fuses(prog, model):
    """At -O2 (after -O1's clean-ups, which fold Heads' two transposes of k into a permute)
    each pattern becomes its op; the numbers stay."""
    opt = prog.optimized(2)
    ops = [n.op for n in opt.graph(model).nodes()]
    assert FUSED[model] in ops and "softmax" not in ops and "sqrt" not in ops, ops
    check_numerics(prog, model, opt, SMALL_SIZES, convert=True)


def test_emitted_code(prog):
    opt = prog.optimized(2)
    src = opt.torch_source("Gate", "Heads", "Norm", "TwoDims")
    assert "sub = torch.sigmoid_(x * 0.5 + y) - 1.0" in src
    assert "F.scaled_dot_product_attention(" in src and "scale=0.35355339059327373" in src
    assert "layernorm = F.layer_norm(x, (16,))" in src
    assert "F.layer_norm(x, (4, 8))" in src and "layernorm * 2.0 + 1.0" in src
    np_src = opt.numpy_source("Gate")
    assert "sub_ = fused_elementwise(" in np_src
    assert 'x, y, steps=(("mul", 0.5), ("add", "x1"), ("sigmoid", None), ("sub", 1.0))' in np_src


@pytest.mark.parametrize("model", ["Gate", "Every"])
def test_in_place_steps_keep_the_gradients(prog, model):
    """A fused chain applies sigmoid, tanh or relu in place to an arithmetic step's fresh
    result (Gate's ``torch.sigmoid_(x * 0.5 + y)``, Every's final relu), never to a result a
    gradient reads (Every's tanh of exp): autograd accepts the module, and the gradients of
    the inputs are -O0's."""
    torch.manual_seed(0)
    src = prog.optimized(2).torch_source(model)
    assert ("torch.sigmoid_(" if model == "Gate" else "torch.relu_(") in src, src
    assert "torch.tanh_(torch.exp" not in src
    grads = []
    for opt in (0, 2):
        xs = [torch.randn(3, 16, generator=torch.Generator().manual_seed(i), requires_grad=True)
              if i == 0 else torch.randn(16 if model == "Every" else (3, 16), requires_grad=True,
                                         generator=torch.Generator().manual_seed(i)) for i in range(2)]
        prog.to_torch(model, opt=opt)(*xs).sum().backward()
        grads.append([x.grad for x in xs])
    for g0, g2 in zip(*grads):
        torch.testing.assert_close(g2, g0, rtol=1e-5, atol=1e-6)


def test_summary_and_diagram_show_the_chain(prog):
    opt = prog.optimized(2)
    rows = {r.name: r.op for r in opt.summary("Gate").rows}
    assert rows["sub"] == "fused_elementwise(mul+add+sigmoid+sub)"
    g = opt.graph("Gate")
    assert op_detail(g.node("sub"), g) == "mul+add+sigmoid+sub"
    assert op_detail(opt.graph("Norm").node("layernorm"), opt.graph("Norm")) == "no affine"


def test_numpy_kernel_runs_in_place():
    """One buffer: the result owns its memory, the inputs stay as they were, and each step
    after the first writes into the buffer (a step that allocated would show a new id)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 5)), rng.standard_normal(5)
    x0, y0 = x.copy(), y.copy()
    steps = (("mul", 0.5), ("add", "x1"), ("rsub", 1.0), ("relu", None), ("leaky_relu", 0.1), ("sigmoid", None),
             ("rdiv", 2.0), ("tanh", None))
    out = KERNELS["fused_elementwise"](x, y, steps=steps)
    want = np.tanh(2.0 / (1 / (1 + np.exp(-np.maximum(1.0 - (x * 0.5 + y), 0)))))
    assert np.abs(out - want).max() < 1e-12
    assert out.base is None and (x == x0).all() and (y == y0).all()
    seen = []
    real = np.multiply

    class Spy:
        def __call__(self, *args, **kw):
            r = real(*args, **kw)
            seen.append(id(r))
            return r

    np.multiply, ns = Spy(), KERNELS["fused_elementwise"].__globals__
    try:
        out = ns["fused_elementwise"](x, y, steps=(("add", "x1"), ("mul", 2.0), ("mul", "x0"), ("mul", 3.0)))
    finally:
        np.multiply = real
    assert len(set(seen)) == 1 and seen[0] == id(out)


# -- every example, small: -O2 gives the numbers of -O0 ----------------------------------------

_COMPILED: dict[str, netc.Program] = {}


def compile_example(spec: str) -> netc.Program:
    if spec not in _COMPILED:
        _COMPILED[spec] = netc.compile_file(EXAMPLES / f"{spec}.net", defines=SMALL.get(spec))
    return _COMPILED[spec]


def example_models() -> list[tuple[str, str]]:
    out = []
    for path in sorted(EXAMPLES.glob("*.net")):
        prog = compile_example(path.stem)
        out += [(path.stem, m) for m in prog.models if m not in prog.pairs]
    return out


MODELS = example_models()


@pytest.mark.parametrize("spec, model", MODELS, ids=[f"{s}-{m}" for s, m in MODELS])
def test_example_numerics(spec, model):
    """The fusions alone (with -O1 before them), and the whole -O2 pipeline."""
    prog = compile_example(spec)
    others = tuple(p.name for p in all_passes() if p.level == 2 and p.name not in FUSIONS)
    base = baseline(prog, model, SIZES.get(spec))  # -O0's numbers, computed once for both
    check_numerics(prog, model, prog.optimized(2, disable=others), base=base)
    check_numerics(prog, model, prog.optimized(2), convert=True, base=base)


def test_pipeline_verifies_after_every_pass(prog):
    for spec, model in MODELS:
        out = optimize(compile_example(spec).graph(model), 2, check=True)
        infer(out.graph)
    for model in prog.models:
        infer(optimize(prog.graph(model), 2, check=True).graph)
