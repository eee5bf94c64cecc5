"""The clean-up passes (fold_constants, remove_noops, fold_reshapes,
eliminate_common_subexpressions at -O1; remove_dropout at -O2), tested the torch.fx way.

Each case runs one pass on a copy of a small model's graph and checks the expected node
delta, that ``changed`` is true exactly when the graph changed, that the graph verifies and
its types re-infer, that a second run changes nothing, and that the numbers are the same:
the NumPy executor at float64 (within 1e-10) and torch at float32 (within 1e-5), with the
weights of the unoptimised model. Every example model gives the same numbers at -O1 (and
without dropout at -O2), and every pass verifies the graph after it at -O1 and -O2.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from netc.compiler import records
from netc.compiler.ir import Graph, Node
from netc.compiler.passes import PassContext, all_passes, optimize
from netc.compiler.pipeline import Compiled
from netc.compiler.shapes import infer
from netc.compiler.types import TensorType
from netc.compiler.verify import verify
from netc.runtime.inputs import random_inputs
from netc.specs.catalogue import get

import netc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PASSES = {p.name: p for p in all_passes()}
CLEANUPS = ["fold_constants", "remove_noops", "fold_reshapes", "eliminate_common_subexpressions",
            "remove_dropout"]
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
# fold_constants
model Neutral(x: float[N, 8]) -> float[N, 8] {
    return (1 * ((0 + x * 1 + 0) / 1) - 0) * 3
}
model IntNeutral(t: int[N, 4]) -> float[N, 4] {
    return t * 1 + 0.5
}
model Scale(x: float[N, 8]) -> float[N, 8] {
    return x * 2 + 1
}

# remove_noops
model Noops(x: float[N, 8], v: float[N, 2, 4]) -> float[N, 8] {
    a = x -> reshape(N, 8) -> flatten -> transpose(1, 1) -> permute(0, 1) -> dropout(0.0) -> relu
    b = v -> transpose(1, 2) -> transpose(2, 1) -> flatten
    return a + b
}
model Ones(x: float[N, 1, 1, 8]) -> float[N, 8] {
    return x -> transpose(1, 2) -> permute(0, 2, 1, 3) -> relu -> flatten
}
model Moves(x: float[N, 4, 4]) -> float[N, 16] {
    return x -> transpose(1, 2) -> reshape(N, 16) -> dropout(0.5)
}
model HalfShared(v: float[N, 2, 4]) -> float[N, 8] {
    t = v -> transpose(1, 2)
    return (t -> transpose(1, 2) -> flatten) + (t -> sigmoid -> flatten)
}
block Same(x: [N, C]) {
    return x -> reshape(N, C)
}
block Round(x: [N, C]) {
    return x -> relu -> reshape(N, C) -> transpose(0, 0)
}
model Blocks(x: float[N, 8]) -> float[N, 8] {
    return x -> Same -> tanh -> Round -> Same -> Round * 2 -> linear(8) -> Same
}

# fold_reshapes
model Reshapes(x: float[N, 2, 3, 4]) -> float[N, 24] {
    return x -> reshape(N, 6, 4) -> flatten -> relu
}
model Flattens(x: float[N, 2, 3, 4]) -> float[N, 24] {
    return x -> flatten(2) -> flatten(1) -> relu
}
model Unflatten(x: float[N, 24]) -> float[N, 2, 12] {
    return x -> reshape(N, 2, 3, 4) -> flatten(2) -> relu
}
model RoundTrip(x: float[N, 8]) -> float[N, 8] {
    return x -> reshape(N, 2, 4) -> flatten -> relu -> flatten -> reshape(N, 4, 2) -> reshape(N, 8)
}
model Permutes(x: float[N, 2, 3, 4]) -> float[N, 24] {
    return x -> transpose(1, 2) -> permute(0, 3, 1, 2) -> transpose(2, 3) -> flatten
}
model Cancel(x: float[N, 3, 4]) -> float[N, 3, 4] {
    return x -> permute(0, 2, 1) -> transpose(1, 2) -> relu
}
model TwoSymbols(x: float[N, T, 6]) -> float[N, 2 * T, 3] {
    return x -> reshape(N, T, 2, 3) -> flatten(1, 2)
}
model Branch(x: float[N, 2, 4]) -> float[N, 8] {
    r = x -> reshape(N, 4, 2)
    return (r -> flatten) * (r -> relu -> flatten)
}
block Inner(x: [N, C]) {
    return x -> relu -> reshape(N, 2, 4)
}
block Passed(x: [N, C]) {
    return x -> reshape(N, 2, 4)
}
model Across(x: float[N, 8]) -> float[N, 8] {
    return (x -> Inner -> flatten) + (x -> Passed -> flatten)
}

# eliminate_common_subexpressions
model Twins(x: float[N, 8]) -> float[N, 8] {
    a = x -> relu -> sigmoid
    b = x -> relu -> sigmoid
    c = x -> leaky_relu(0.1)
    d = x -> leaky_relu(0.2)
    return a * b + c * d + x * 2 + x * 2
}
model Distinct(x: float[N, 8]) -> float[N, 8] {
    let fc = linear(8)
    return (x -> linear(8)) + (x -> linear(8)) + (x -> fc) + (x -> fc) + (x -> dropout) + (x -> dropout)
}
model Splits(x: float[N, 8]) -> float[N, 8] {
    a, b = split(x, 4)
    c, d = split(x, 4)
    return concat(a, d)
}
block R(x: [N, C]) {
    return x -> relu
}
block RR(x: [N, C]) {
    return (x -> relu) + (x -> relu)
}
model BlockTwins(x: float[N, 8]) -> float[N, 8] {
    return (x -> R) + (x -> R) + (x -> RR)
}

# remove_dropout
block Drop(x: [N, C]) {
    return x -> dropout(0.2)
}
model Drops(x: float[N, 8]) -> float[N, 8] {
    return x -> dropout(0.5) -> linear(8) -> dropout(0.1) * 3 -> Drop -> relu -> Drop * 3
}
"""

# (pass, model, node delta, text of a rewrite or skip it reports)
CASES = [
    ("fold_constants", "Neutral", {"mul": -2, "add": -2, "div": -1, "sub": -1, "constant": -6},
     "removed mul `mul_1` (1.0 * x)"),
    ("fold_constants", "IntNeutral", {},
     "kept mul `mul`: its result float[N, 4] is not its operand's type int[N, 4]"),
    ("fold_constants", "Scale", {}, None),
    ("remove_noops", "Noops", {"reshape": -1, "flatten": -1, "transpose": -3, "permute": -1, "dropout": -1},
     "removed transpose `transpose_2`: it undoes transpose `transpose_1`, also removed"),
    ("remove_noops", "Ones", {"transpose": -1, "permute": -1}, "it moves only dims of size 1"),
    ("remove_noops", "Moves", {}, "kept transpose `transpose`: it swaps dims 1 and 2 of [N, 4, 4]"),
    ("remove_noops", "HalfShared", {"transpose": -1}, "which stays for its other readers"),
    ("remove_noops", "Blocks", {"reshape": -6, "transpose": -3}, "removed transpose `round__1.1.transpose`"),
    ("fold_reshapes", "Reshapes", {"reshape": -1},
     "folded reshape `reshape` -> flatten `flatten` into one flatten"),
    ("fold_reshapes", "Flattens", {"flatten": -1}, "into one flatten"),
    ("fold_reshapes", "Unflatten", {"flatten": -1}, "into one reshape"),
    ("fold_reshapes", "RoundTrip", {"reshape": -3, "flatten": -2}, "together they are the identity"),
    ("fold_reshapes", "Permutes", {"transpose": -2}, "into one permute"),
    ("fold_reshapes", "Cancel", {"transpose": -1, "permute": -1}, "together they are the identity"),
    ("fold_reshapes", "TwoSymbols", {}, "[N, 2*T, 3] has more than one symbolic size"),
    ("fold_reshapes", "Branch", {}, "into one flatten (`reshape` stays for its other readers)"),
    ("fold_reshapes", "Across", {"flatten": -1},
     "the input of `inner.reshape` is not visible in the block of `flatten`"),
    ("eliminate_common_subexpressions", "Twins", {"relu": -1, "sigmoid": -1, "constant": -1, "mul": -1},
     "merged sigmoid `sigmoid_1` into `sigmoid`"),
    ("eliminate_common_subexpressions", "Distinct", {},
     "kept dropout `dropout_1`: same op and inputs as `dropout`, but dropout is random"),
    ("eliminate_common_subexpressions", "Splits", {"split": -1}, "merged split `split_1` into `split`"),
    ("eliminate_common_subexpressions", "BlockTwins", {"relu": -1}, "but they are in different blocks"),
    ("remove_dropout", "Drops", {"dropout": -8}, "removed dropout `dropout` (p=0.5)"),
]


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> netc.Program:
    path = tmp_path_factory.mktemp("passes") / "cleanup.net"
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
        assert (a.shape, a.dtype) == (b.shape, b.dtype), f"{what}: {a.dtype}{a.shape}, {b.dtype}{b.shape}"
        assert rel_diff(a, b) <= tol, f"{what}: max rel diff {rel_diff(a, b):.3g}"


def run_torch(module, inputs: list) -> tuple:
    with torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    return tuple(o.numpy() for o in as_tuple(out))


def double(sd: dict) -> dict:
    return {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}


def check_numerics(prog: netc.Program, name: str, after: Graph, sizes=None, convert=None) -> None:
    """The graph ``after`` gives the unoptimised model's numbers, with its weights
    (``convert(name, weights)``: in the layout of ``after``, when a pass changed it)."""
    torch.manual_seed(0)
    module = prog.to_torch(name).eval()
    sd = module.state_dict()
    converted = convert(name, sd) if convert else sd
    opt = netc.Program(Compiled(prog.path, {name: after}, {}))
    g = prog.graph(name)
    xs = list(random_inputs(g, {"N": 3, **(sizes or {})}, seed=1, dtype=np.float64).values())
    want = prog.to_numpy(name, weights=double(sd))(*xs)
    got = opt.to_numpy(name, weights=convert(name, double(sd)) if convert else double(sd))(*xs)
    assert_same(got, want, 1e-10, f"{name} numpy float64")
    xs = list(random_inputs(g, {"N": 3, **(sizes or {})}, seed=1).values())
    fused = opt.to_torch(name).eval()
    fused.load_state_dict(converted)
    assert_same(run_torch(fused, xs), run_torch(module, xs), 1e-5, f"{name} torch float32")


@pytest.mark.parametrize("name, model, delta, says", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_pass(prog, name, model, delta, says):
    before = prog.graph(model)
    after, result = run_pass(name, before)
    assert node_delta(before, after) == {op: d for op, d in delta.items() if d}
    assert result.changed == (fingerprint(after) != fingerprint(before)) == bool(result.rewrites)
    verify(after)
    infer(after)
    assert fingerprint(before) == fingerprint(prog.graph(model)), "the pass changed its input graph"
    if says:
        assert says in "\n".join(str(c) for c in result.rewrites + result.skipped)
    for c in result.rewrites:
        assert c.span is not None, c
    again, second = run_pass(name, after)
    assert not second.changed and fingerprint(again) == fingerprint(after), second.rewrites
    check_numerics(prog, model, after, {"T": 5})


@pytest.mark.parametrize("level", [1, 2])
def test_small_models_through_the_pipeline(prog, level):
    """Every model above, through the whole pipeline with checks: the same numbers, drawable."""
    for name in prog.models:
        out = optimize(prog.graph(name), level, check=True)
        infer(out.graph)
        check_numerics(prog, name, out.graph, {"T": 5}, lambda n, w: prog.convert_weights(n, w, level))
        prog.optimized(level).diagram(name)


def test_every_pass_is_tested():
    assert {c[0] for c in CASES} == set(CLEANUPS)
    assert [p for p in PASSES if p in CLEANUPS] == CLEANUPS
    assert {p: PASSES[p].level for p in CLEANUPS} == {**dict.fromkeys(CLEANUPS, 1), "remove_dropout": 2}
    names = list(PASSES)
    assert names.index("eliminate_common_subexpressions") < names.index("eliminate_dead_code")
    assert names.index("remove_dropout") < names.index("eliminate_dead_code")


# -- constants the elaborator never makes (it folds literal arithmetic itself) ------------

def constant_graph(op: str, *values: float) -> Graph:
    """y = x + op(values...), built by hand: x: float[N, 4]."""
    from netc.compiler.dims import sym

    g = Graph("Consts")
    x = g.add(Node("x", "input", (), None, (TensorType("float", (sym("N"), 4)),), None))
    refs = []
    for i, v in enumerate(values):
        attrs = get("constant").Attrs(value=v)
        c = g.add(Node(f"c{i}", "constant", (), attrs, (TensorType("float", ()),), None))
        refs.append((c.id, 0))
    y = g.add(Node("y", op, tuple(refs), None, (TensorType("float", ()),), None))
    out = g.add(Node("out", "add", ((x.id, 0), (y.id, 0)), None, (x.type,), None))
    g.outputs = [(None, (out.id, 0))]
    infer(g)
    return g


@pytest.mark.parametrize("op, values, want", [("mul", (2.0, 3.0), 6.0), ("div", (1.0, 4.0), 0.25),
                                              ("sub", (1.0, 4.0), -3.0), ("sqrt", (2.25,), 1.5),
                                              ("neg", (2.0,), -2.0), ("abs", (-2.0,), 2.0)])
def test_constants_fold_into_one(op, values, want):
    g = constant_graph(op, *values)
    after, result = run_pass("fold_constants", g)
    delta = {op: -1, "constant": 1 - len(values)}
    assert result.changed and node_delta(g, after) == {k: d for k, d in delta.items() if d}
    assert after.node("y").op == "constant" and after.node("y").attrs.value == want
    verify(after)
    infer(after)
    assert not run_pass("fold_constants", after)[1].changed
    x = np.random.default_rng(0).standard_normal((3, 4))
    got = netc.Program(Compiled("<test>", {"Consts": after}, {})).to_numpy("Consts", weights={})(x)
    assert rel_diff(got, x + want) <= 1e-10


def test_chained_constants_fold():
    g = constant_graph("mul", 2.0, 3.0)
    # exp(log(2 * 3)) - 6: three folds in one run
    log = g.insert_before("out", Node("log", "log", (("y", 0),), None, (TensorType("float", ()),), None))
    exp = g.insert_before("out", Node("exp", "exp", ((log.id, 0),), None, log.types, None))
    g.replace(records.replace(g.node("out"), inputs=(("x", 0), (exp.id, 0))))
    after, result = run_pass("fold_constants", g)
    assert len(result.rewrites) == 3 and after.node("exp").op == "constant"
    assert abs(after.node("exp").attrs.value - 6.0) < 1e-12
    assert [n.id for n in after.nodes()] == ["x", "exp", "out"]


@pytest.mark.parametrize("op, values", [("div", (1.0, 0.0)), ("log", (0.0,)), ("sqrt", (-1.0,)),
                                        ("exp", (1e6,))])
def test_non_finite_constants_stay(op, values):
    g = constant_graph(op, *values)
    after, result = run_pass("fold_constants", g)
    assert not result.changed and fingerprint(after) == fingerprint(g)
    assert any("is not a finite number" in c.what for c in result.skipped)


# -- every example: the same numbers, and every pass keeps the graph well formed -----------

SPEC_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.net"))
_COMPILED: dict[str, netc.Program] = {}


def compile_example(spec: str) -> netc.Program:
    if spec not in _COMPILED:
        _COMPILED[spec] = netc.compile_file(EXAMPLES / f"{spec}.net", defines=SMALL.get(spec))
    return _COMPILED[spec]


def models_of(spec: str) -> list[str]:
    prog = compile_example(spec)
    return [m for m in prog.models if m not in prog.pairs]


@pytest.mark.parametrize("spec", SPEC_NAMES)
def test_example_numerics(spec):
    for model in models_of(spec):
        check_example(spec, model)


def check_example(spec: str, model: str) -> None:
    """-O1, and -O2 with only remove_dropout of its passes: numbers of -O0 with -O0 weights."""
    prog = compile_example(spec)
    g = prog.graph(model)
    torch.manual_seed(0)
    module = prog.to_torch(model).eval()
    sd = module.state_dict()
    sd64 = {k: v.numpy() for k, v in double(sd).items()}
    xs64 = list(random_inputs(g, SIZES.get(spec), seed=1, dtype=np.float64).values())
    xs32 = list(random_inputs(g, SIZES.get(spec), seed=1).values())
    want64 = prog.to_numpy(model, weights=sd64)(*xs64)
    want32 = run_torch(module, xs32)

    got = prog.to_numpy(model, weights=sd64, opt=1)(*xs64)
    assert_same(got, want64, 1e-10, f"{model} -O1 numpy float64")
    opt1 = prog.to_torch(model, opt=1).eval()
    opt1.load_state_dict(prog.convert_weights(model, sd, 1))
    assert_same(run_torch(opt1, xs32), want32, 1e-5, f"{model} -O1 torch float32")

    others = tuple(p.name for p in all_passes() if p.level == 2 and p.name != "remove_dropout")
    no_dropout = prog.optimized(2, disable=others)
    assert not any(n.op == "dropout" for n in no_dropout.graph(model).nodes())
    if not any(n.op == "dropout" for n in g.nodes()):  # then it is the -O1 graph, checked above
        assert fingerprint(no_dropout.graph(model)) == fingerprint(prog.optimized(1).graph(model))
        return
    got = no_dropout.to_numpy(model, weights=sd64)(*xs64)
    assert_same(got, want64, 1e-10, f"{model} remove_dropout numpy float64")
    net = no_dropout.to_torch(model).eval()
    net.load_state_dict(sd)
    assert_same(run_torch(net, xs32), want32, 1e-5, f"{model} remove_dropout torch float32")


@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize("spec", SPEC_NAMES)
def test_pipeline_verifies_after_every_pass(spec, level):
    for model in models_of(spec):
        g = compile_example(spec).graph(model)
        out = optimize(g, level, check=True)
        infer(out.graph)
        assert [p.name for p, _ in out.report] == [p.name for p in all_passes() if p.level <= level]
        for p, r in out.report:
            assert r.changed == bool(r.rewrites), p.name
        if level == 1:  # the clean-ups leave nothing for a second run
            assert not any(r.changed for _, r in optimize(out.graph, 1, check=True).report), model


def test_scan_cells_are_optimised():
    """The cells that scan runs go through the pipeline too (without the passes that move
    weights); their rewrites are reported under the pass, marked with the cell; the input
    graph's cell is untouched and a second run changes nothing."""
    g = compile_example("char_rnn").graph("CharLSTM")
    out = optimize(g, 2, check=True)
    cell_ops = [Counter(m.op for n in graph.nodes() if n.op == "scan" for m in n.attrs.cell.graph.nodes())
                for graph in (g, out.graph)]
    assert cell_ops[0]["sigmoid"] == 3 and cell_ops[0]["fused_elementwise"] == 0
    assert cell_ops[1]["sigmoid"] == 0 and cell_ops[1]["fused_elementwise"] == 3
    texts = [c.what for p, r in out.report if p.name == "fuse_elementwise" for c in r.rewrites]
    assert len(texts) == 3 and all(t.startswith("in cell `LSTMCell`: ") for t in texts)
    assert not any(r.changed for _, r in optimize(out.graph, 2, check=True).report)


BLOCK_INTERFACES = """
block Two(x: [N, C]) {
    return x -> relu, x -> sigmoid
}
block Ignores(x: [N, C], y: [N, C]) {
    return x -> relu
}
block Passed(x: [N, C]) {
    return x -> reshape(N, 2, 4)
}
model UnusedResult(x: float[N, 8]) -> float[N, 8] {
    a, _ = x -> Two
    return a -> linear(8)
}
model UnusedInput(x: float[N, 8]) -> float[N, 8] {
    return Ignores(x, x -> sigmoid) -> linear(8)
}
model DeadBlock(x: float[N, 8]) -> float[N, 8] {
    return x + (x -> Passed -> flatten)
}
"""


@pytest.mark.parametrize("model, kept, gone", [("UnusedResult", ["two.sigmoid"], []),
                                               ("UnusedInput", ["sigmoid"], []),
                                               ("DeadBlock", [], ["passed.reshape"])])
def test_dead_code_keeps_block_interfaces(tmp_path, model, kept, gone):
    """A block instance with a live node keeps the values it takes and returns (its module's
    interface): before, dead-code elimination removed them and the torch emitter failed on
    the dangling refs of the block interfaces. A block with no live node goes with its interface."""
    (tmp_path / "blocks.net").write_text(BLOCK_INTERFACES)
    prog = netc.compile_file(tmp_path / "blocks.net", models=[model])
    g = optimize(prog.graph(model), 1, check=True).graph
    assert all(k in g for k in kept) and not any(k in g for k in gone)
    assert "passed" not in g.blocks
    check_numerics(prog, model, g, {})
