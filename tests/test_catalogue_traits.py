"""Op facts are traits on the catalogue entry: passes and backends read them, not lists of op
names of their own.

A throwaway op, ``softsign`` (x / (1 + |x|)), is registered for a test and removed after it,
declaring only its traits. The checker takes it; fuse_activation and fuse_elementwise fuse it
at -O2 from its traits alone; use_channels_last lets the layout flow through it; the torch and
NumPy backends name the lowering or kernel it lacks, and run it once the test gives it one.
A scan of the source tree finds no module-level table of op names outside ``specs/`` but the
backends' own lowering tables, listed below.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from netc.backends.numpy.emit import EmitError
from netc.backends.numpy.kernels import KERNELS, ORDER, kernel
from netc.backends.torch import ops as torch_ops
from netc.backends.torch.lower import LOWERINGS, LoweringError, lowering
from netc.compiler.passes import PassContext, all_passes, format_report
from netc.compiler.types import ShapeError, TensorType
from netc.specs import catalogue
from netc.specs.catalogue import Op

import netc

ROOT = Path(__file__).resolve().parent.parent

SPEC = """
model Act(x: float[N, 8]) -> float[N, 4] {
    return x -> linear(4) -> softsign
}
model Chain(x: float[N, 8], y: float[N, 8]) -> float[N, 8] {
    return softsign(x * 0.5 + y)
}
model Conv(x: float[N, 3, 8, 8]) -> float[N, 4, 8, 8] {
    return x -> conv2d(4, 3, padding=1) -> softsign -> conv2d(4, 3, padding=1)
}
"""


def softsign_formula(x):
    return x / (1 + np.abs(x))


@pytest.fixture
def softsign():
    """``softsign`` in the catalogue, for one test: an op that no pass or backend has heard of."""
    catalogue.all_ops()  # the built-in ops first

    @catalogue.register
    class Softsign(Op):
        """x / (1 + |x|), elementwise (a throwaway op of tests/test_catalogue_traits.py)."""

        name = "softsign"
        group = "activation"
        traits = frozenset({"elementwise", "unary_elementwise", "activation"})
        signature = "softsign"

        @classmethod
        def shape(cls, xs, a):
            xs[0].expect_float()
            return xs[0]

    try:
        yield Softsign
    finally:
        del catalogue.CATALOGUE["softsign"]


@pytest.fixture
def prog(softsign, tmp_path) -> netc.Program:
    path = tmp_path / "softsign.net"
    path.write_text(SPEC)
    return netc.compile_file(path)


@pytest.fixture
def torch_softsign(softsign):
    """A torch lowering of softsign: fixed text, as the built-in functions have."""
    torch_ops.FIXED["softsign"] = "F.softsign({x0})"
    lowering("softsign")(torch_ops.fixed)
    try:
        yield
    finally:
        del torch_ops.FIXED["softsign"], LOWERINGS["softsign"]


@pytest.fixture
def numpy_softsign(softsign):
    """A NumPy kernel of softsign."""

    def softsign(x):
        """x / (1 + |x|)."""
        return x / (1 + np.abs(x))

    kernel("softsign")(softsign)
    try:
        yield
    finally:
        del KERNELS["softsign"], ORDER["softsign"]


def ops_of(g) -> list[str]:
    return [n.op for n in g.nodes()]


# -- the compiler ----------------------------------------------------------------------------

def test_the_checker_takes_the_new_op(prog):
    g = prog.graph("Act")
    node = next(n for n in g.nodes() if n.op == "softsign")
    assert node.type.shape_str() == "[N, 4]"
    assert prog.summary("Act").params == 8 * 4 + 4
    with pytest.raises(ShapeError, match="float"):
        catalogue.get("softsign").shape([TensorType("int", (2, 3))], None)


def test_fuse_activation_fuses_it_by_its_trait(prog):
    g = prog.optimized(2).graph("Act")
    assert "softsign" not in ops_of(g)
    layer = next(n for n in g.nodes() if n.op == "linear")
    assert layer.attrs.activation == "softsign"
    assert "fused softsign `softsign` into linear `linear`" in format_report(prog.optimized(2).reports["Act"])


def test_a_layer_takes_it_as_its_activation_in_a_spec(softsign, tmp_path):
    path = tmp_path / "spec.net"
    path.write_text('model M(x: float[N, 8]) -> float[N, 4] {\n    return x -> linear(4, activation="softsign")\n}\n')
    assert netc.compile_file(path).graph("M").nodes()[-1].attrs.activation == "softsign"
    path.write_text('model M(x: float[N, 8]) -> float[N, 4] {\n    return x -> linear(4, activation="softmax")\n}\n')
    with pytest.raises(netc.SpecError, match='must be .*"softsign"'):
        netc.compile_file(path)


def test_fuse_elementwise_fuses_it_by_its_trait(prog):
    g = prog.optimized(2).graph("Chain")
    assert ops_of(g).count("fused_elementwise") == 1 and "softsign" not in ops_of(g)
    fused = next(n for n in g.nodes() if n.op == "fused_elementwise")
    assert fused.attrs.steps == (("mul", 0.5), ("add", "x1"), ("softsign", None))
    assert catalogue.get("fused_elementwise").chain(fused.attrs) == "mul+add+softsign"


def test_the_layout_flows_through_it(prog):
    """use_channels_last: softsign is elementwise, so the second convolution reads the first's
    channels-last output without a second conversion."""
    ctx = PassContext(prog.graph("Conv").copy(), level=2)
    next(p for p in all_passes() if p.name == "use_channels_last").run(ctx)
    formats = [n.attrs.format for n in ctx.graph.nodes() if n.op == "memory_format"]
    assert formats == ["channels_last", "contiguous"]


# -- the backends, without a lowering or kernel --------------------------------------------

@pytest.mark.parametrize("opt, model, says", [
    (0, "Act", r"no lowering for the op `softsign`.*@lowering\('softsign'\)"),
    (2, "Act", r"fused activation `softsign`.*FIXED"),
    (2, "Chain", r"fused_elementwise step `softsign`.*FIXED"),
])
def test_torch_names_the_missing_lowering(prog, opt, model, says):
    with pytest.raises(LoweringError, match=says):
        prog.optimized(opt).torch_source(model)


@pytest.mark.parametrize("opt, model, says", [
    (0, "Act", r"node `softsign`: the op `softsign` has no kernel .*@kernel\('softsign'\)"),
    (2, "Act", r"activation `softsign` fused into linear `linear`: the op `softsign` has no kernel"),
    (2, "Chain", r"step `softsign` of fused_elementwise `\w+`: the op `softsign` has no kernel"),
])
def test_numpy_names_the_missing_kernel(prog, opt, model, says):
    with pytest.raises(EmitError, match=says):
        prog.optimized(opt).numpy_source(model)


# -- the backends, given a lowering and a kernel -------------------------------------------

def _inputs(model: str, rng) -> list[np.ndarray]:
    if model == "Chain":
        return [rng.standard_normal((3, 8)).astype(np.float32) for _ in range(2)]
    return [rng.standard_normal((3, 8)).astype(np.float32)]


@pytest.mark.parametrize("model", ["Act", "Chain"])
def test_both_backends_run_it(prog, torch_softsign, numpy_softsign, model):
    rng = np.random.default_rng(0)
    xs = _inputs(model, rng)
    net = prog.to_torch(model).eval()
    sd = net.state_dict()
    if model == "Act":
        w, b = sd["linear.weight"].numpy(), sd["linear.bias"].numpy()
        want = softsign_formula(xs[0] @ w.T + b)
    else:
        want = softsign_formula(xs[0] * 0.5 + xs[1])
    for opt in (0, 2):
        fused = prog.optimized(opt).to_torch(model).eval()
        fused.load_state_dict(sd)
        with torch.no_grad():
            got = fused(*(torch.from_numpy(x) for x in xs)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"torch -O{opt}")
        got = prog.to_numpy(model, weights=sd, opt=opt)(*xs)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"numpy -O{opt}")
    src = prog.optimized(2).numpy_source(model)
    assert "def softsign(x):" in src
    if model == "Act":
        assert "activation=softsign" in src
        assert "torch.relu" not in prog.optimized(2).torch_source(model)
        assert "F.softsign(self.linear(" in prog.optimized(2).torch_source(model)
    else:
        assert 'steps=(("mul", 0.5), ("add", "x1"), (softsign, None))' in src


# -- the catalogue's traits ------------------------------------------------------------------

def test_every_trait_is_documented_on_op():
    documented = catalogue.traits()
    assert len(documented) >= 10
    for name, op in catalogue.all_ops().items():
        assert op.traits <= documented.keys(), f"{name}: undocumented traits {op.traits - documented.keys()}"


def test_every_trait_the_code_reads_is_documented():
    read = set()
    for path in _sources():
        text = path.read_text()
        read |= set(re.findall(r"has_trait\([^,()]+, \"(\w+)\"\)", text))
        read |= set(re.findall(r"\"(\w+)\" (?:not )?in [\w.()]*traits\b", text))
    assert read, "no trait reads found: the scan is broken"
    assert read <= catalogue.traits().keys(), f"traits read but not documented on Op: {read - catalogue.traits().keys()}"


def test_traits_are_consistent():
    for name, op in catalogue.all_ops().items():
        t = op.traits
        fields = op.Attrs.model_fields
        if t & {"unary_elementwise", "binary_elementwise"}:
            assert "elementwise" in t, name
        if "unary_elementwise" in t:
            assert op.arity == (1, 1), name
            # one float the fusions carry (leaky_relu's slope), or options with defaults that a
            # fusion takes only at their defaults (gelu's approximate)
            one_float = len(fields) == 1 and next(iter(fields.values())).annotation is float
            assert one_float or all(not f.is_required() for f in fields.values()), name
        if "binary_elementwise" in t:
            assert op.arity == (2, 2), name
        if "commutative" in t:
            assert "binary_elementwise" in t, name
        if "activation" in t:
            assert "unary_elementwise" in t, name
        if "layer" in t:
            assert {"bias", "activation", "activation_slope"} <= fields.keys(), name
            assert {"weight", "bias"} <= set(op.param_names) and "has_weights" in t, name
        if "permute" in t:
            assert op.permutation.__func__ is not Op.permutation.__func__, name
        if op.output_names:
            assert op.output_names[0] == "", name
        if op.neutral is not None:
            assert op.scalar is not None and op.symbol is not None and "binary_elementwise" in t, name
        if op.param_names:
            assert "has_weights" in t, name
    for name in ("lstm", "gru", "rnn"):
        op = catalogue.get(name)
        assert op.output_names == ("",) + op.states


def test_a_permute_op_says_its_permutation():
    a = catalogue.get("transpose").Attrs(a=1, b=-1)
    assert catalogue.get("transpose").permutation(a, 4) == [0, 3, 2, 1]
    assert catalogue.get("permute").permutation(catalogue.get("permute").Attrs(dims=(0, -1, 1)), 3) == [0, 2, 1]


# -- no side tables of op names --------------------------------------------------------------

# The tables of op names that stay outside specs/, each a backend's own lowering (or the
# language's own syntax): (file, the name it is assigned to or the function holding it).
ALLOWED = {
    ("backends/torch/ops.py", "FIXED"): "torch code text of each op",
    ("backends/torch/ops.py", "IN_PLACE"): "torch code text of the in-place activations",
    ("backends/torch/ops.py", "_EPILOGUE"): "torch module text of each activation fused into a block's result",
    ("backends/torch/ops.py", "_BINARY"): "Python operator and precedence of each fused binary step",
    ("backends/numpy/kernels/math.py", "FUSED_STEPS"): "the steps the fused kernel has a formula for",
    ("backends/numpy/kernels/math.py", "_elementwise_step"): "the fused kernel's formulas (ufunc per op)",
    ("backends/numpy/kernels/activation.py", "FUSED_ACTIVATIONS"): "the activations _activate has a formula for",
    ("backends/render/labels.py", "_SYMBOL"): "the symbol a diagram draws for each operator",
    ("backends/torch/prelude.py", "PRELUDE"): "the prelude's pieces (two are named after the op that uses them)",
    ("compiler/elaborate.py", "TENSOR_OPS"): "the language's infix operators",
    ("backends/onnx/lowerings/activation.py", "SIMPLE"): "the ONNX op of each one-to-one unary lowering",
    ("backends/onnx/lowerings/math.py", "BINARY"): "the ONNX op of each arithmetic operator",
    ("backends/onnx/lowerings/recurrent.py", "ONNX_OP"): "the ONNX op of each recurrent layer",
    ("backends/onnx/lowerings/recurrent.py", "GATES"): "torch's gate blocks in ONNX's order, per layer kind",
    ("runtime/checkpoints.py", "CONVERSIONS"): "a weight mapping file's conversion names (transpose, concat, split: not ops)",
}
SCANNED = ("compiler", "backends", "runtime", "netc")


def _sources() -> list[Path]:
    return sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))


def _strings(node) -> list[list[str]]:
    """The groups of string items of a collection literal (a dict's keys and its values apart);
    ``frozenset({...})``, ``set(...)``, ``tuple(...)`` and ``dict(...)`` of one are one too."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1 \
            and node.func.id in ("frozenset", "set", "tuple", "dict"):
        return _strings(node.args[0])
    if isinstance(node, ast.Dict):
        groups = [node.keys, node.values]
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        groups = [node.elts]
    else:
        return []
    return [[e.value for e in g if isinstance(e, ast.Constant) and isinstance(e.value, str)] for g in groups]


def _tables(tree: ast.Module):
    """(name, literal): each value assigned at module or class level, and each dict literal in
    a function (named after the function)."""
    bodies = [tree.body] + [c.body for c in ast.walk(tree) if isinstance(c, ast.ClassDef)]
    for body in bodies:
        for stmt in body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        yield t.id, stmt.value
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in ast.walk(fn):
                if isinstance(d, ast.Dict):
                    yield fn.name, d


def op_name_tables() -> set[tuple[str, str]]:
    ops = set(catalogue.all_ops())
    found = set()
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for name, value in _tables(ast.parse(path.read_text())):
            for group in _strings(value):
                hits = [s for s in group if s in ops]
                if len(hits) >= 2 and 2 * len(hits) >= len(group):
                    found.add((rel, name))
    return found


def test_no_op_name_side_tables():
    found = op_name_tables()
    unexpected = sorted(found - ALLOWED.keys())
    assert not unexpected, ("tables of op names outside the catalogue; declare the fact as a trait "
                            f"or class attribute of the ops (specs/catalogue.py): {unexpected}")
    stale = sorted(ALLOWED.keys() - found)
    assert not stale, f"allowed tables that are gone; drop them from ALLOWED: {stale}"


def test_the_scan_finds_a_side_table(tmp_path):
    tree = ast.parse('LAYERS = ("linear", "conv2d", "conv_transpose2d")\n'
                     'def f(n):\n    return {"lstm": ["", "_h"], "gru": [""]}.get(n.op)\n'
                     'OTHER = ("linear", "a", "b", "c", "d")\n')
    ops = set(catalogue.all_ops())
    hits = {name for name, v in _tables(tree) for g in _strings(v)
            if len([s for s in g if s in ops]) >= 2 and 2 * len([s for s in g if s in ops]) >= len(g)}
    assert hits == {"LAYERS", "f"}
