"""The generated PyTorch source as text: golden files, byte-stable output, ruff-clean, torch-only
imports, state_dict names equal to the IR's weights, and names from a spec that Python or
nn.Module would choke on (keywords, builtins, dunders, module attributes).

Regenerate the golden files after an intended change to the emitter with
``NETC_UPDATE_GOLDEN=1 pytest tests/test_torch_source.py`` and read the diff.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from netc.runtime.inputs import random_inputs

import netc

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
SPECS = sorted(p.name for p in EXAMPLES.glob("*.net"))
RUFF = Path(sys.executable).with_name("ruff")
ALLOWED_IMPORTS = {"torch", "torch.nn", "torch.nn.functional", "math"}


def source(spec: str | Path) -> str:
    return netc.compile_file(EXAMPLES / spec).torch_source()


# -- golden files ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["lenet.net", "resnet18.net", "gpt2.net", "char_rnn.net"])
def test_golden(spec):
    path = GOLDEN / spec.replace(".net", ".py")
    got = source(spec)
    if os.environ.get("NETC_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(got)
    assert path.exists(), f"no golden file {path}; create it with NETC_UPDATE_GOLDEN=1"
    assert got == path.read_text(), f"{spec}: generated source differs from {path} (NETC_UPDATE_GOLDEN=1 updates it)"


# -- byte-stable -------------------------------------------------------------------------------

EMIT_ALL = """
import json, sys
from pathlib import Path
import netc
print(json.dumps({p.name: netc.compile_file(p).torch_source() for p in sorted(Path(sys.argv[1]).glob("*.net"))}))
"""


def test_same_source_twice_in_one_process():
    for spec in SPECS:
        assert source(spec) == source(spec), spec


def test_same_source_in_separate_processes():
    """Two fresh interpreters with different hash seeds (set and dict order of str keys)."""
    here = {spec: source(spec) for spec in SPECS}
    for seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        run = subprocess.run([sys.executable, "-c", EMIT_ALL, str(EXAMPLES)], capture_output=True, text=True,
                             env=env, check=True)
        there = json.loads(run.stdout)
        for spec in SPECS:
            assert there[spec].encode() == here[spec].encode(), f"{spec} differs with PYTHONHASHSEED={seed}"


# -- ruff, imports -----------------------------------------------------------------------------

def ruff(*args: str, text: str) -> subprocess.CompletedProcess:
    assert RUFF.exists(), f"ruff is not installed beside {sys.executable} (a dev dependency)"
    return subprocess.run([str(RUFF), *args, "--isolated", "-"], input=text, capture_output=True, text=True,
                          check=False)


def assert_ruff_clean(text: str) -> None:
    check = ruff("check", text=text)
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = ruff("format", "--diff", text=text)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.parametrize("spec", SPECS)
def test_ruff_clean(spec):
    assert_ruff_clean(source(spec))


def imports(text: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


@pytest.mark.parametrize("spec", SPECS)
def test_imports_only_torch(spec):
    text = source(spec)
    assert imports(text) <= ALLOWED_IMPORTS
    tree = ast.parse(text)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not calls & {"eval", "exec", "open", "__import__", "compile", "getattr", "setattr"}


# -- state_dict == the IR's weights ------------------------------------------------------------

def weights(graph) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in graph.weights().items()}


def assert_state_dict(prog, name: str) -> None:
    with torch.device("meta"):  # sizes without memory
        net = prog.to_torch(name)
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    if name in prog.pairs:
        want = {f"{role}.{k}": s for role, model in prog.pairs[name].roles for k, s in weights(prog.graph(model)).items()}
    else:
        want = weights(prog.graph(name))
    assert list(got) == list(want) or got == want, name
    assert got == want, f"{name}: only in module {sorted(set(got) - set(want))}, only in IR {sorted(set(want) - set(got))}"


@pytest.mark.parametrize("spec", SPECS)
def test_state_dict_matches_ir(spec):
    prog = netc.compile_file(EXAMPLES / spec)
    for name in prog.models:
        assert_state_dict(prog, name)


# -- hostile names -----------------------------------------------------------------------------

HOSTILE = '''\
# Python keywords, builtins, nn.Module attributes and dunders wherever the language takes a
# name. """ import os  (comments never reach the generated source)
const float = 4

block lambda(self: [N, C, L], input: int, training: int = 2) {
    forward = self -> conv1d(input, 1) -> relu
    __init__ = forward -> linear(L) -> maxpool1d(training)
    _modules = __init__ -> conv1d(input, 3, padding=1)
    return _modules
}

cell class(x: [N, I], h: [N, H]) -> [N, H] {
    __foo = linear(x, H)
    return tanh(__foo + linear(h, H, bias=false))
}

model def(input: float[N, 3, 8], self: float[N, 3, 8], training: int = 5) -> float[N, 5, 4] {
    None = input + self -> lambda(training) -> lambda(training, training=1)
    return None
}

model Module(__class__: int[N, T], super: int = 6) -> float[N, T, super] {
    parameters = __class__ -> embedding(10, float)
    return parameters -> scan(class, hidden=super)
}

model Attention(nn: float[N, T, 4]) -> float[N, T, 4] {
    F = nn -> self_attention(2)
    torch = F -> layernorm
    return torch
}

pair range {
    encoder: def
    decoder: Attention
}
'''


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "hostile.net"
    path.write_text(HOSTILE)
    return netc.compile_file(path)


def test_hostile_names_give_valid_clean_source(hostile):
    text = hostile.torch_source()
    tree = ast.parse(text)
    assert "import os" not in text and "comments never" not in text  # nothing of the spec's comments
    assert imports(text) <= ALLOWED_IMPORTS
    assert_ruff_clean(text)
    classes = {ast.get_docstring(n).split(" of ")[0]: n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert len(set(classes.values())) == len(classes)
    # renamed: a keyword, a builtin, the prelude's Attention, nn.Module
    for kind, name in [("Model", "def"), ("Block", "lambda"), ("Cell", "class"), ("Pair", "range"),
                       ("Model", "Module"), ("Model", "Attention")]:
        assert classes[f"{kind} `{name}`"] != name
    methods = [f for c in tree.body if isinstance(c, ast.ClassDef) for f in c.body if isinstance(f, ast.FunctionDef)]
    for fn in methods:
        args = [a.arg for a in fn.args.args]
        assert args[0] == "self" and "self" not in args[1:], fn.name
        assert not {"training", "nn", "F", "torch", "float", "input"} & set(args), (fn.name, args)


def test_hostile_layer_names(hostile):
    """Layer names lose leading underscores (nn.Module's ``_modules``, ``__init__``; Python mangles
    ``self.__x``) and gain a trailing one when they would shadow a keyword, builtin or nn.Module
    attribute; the state_dict names are the IR's, so both sides agree."""
    names = set(hostile.graph("def").weights()) | set(hostile.graph("Module").weights())
    assert {"lambda_.forward_.weight", "lambda_.init__.weight", "lambda_.modules_.weight",
            "parameters_.weight", "scan.foo.weight"} <= names
    assert not any(part.startswith("_") for n in names for part in n.split("."))


@pytest.mark.parametrize("name", ["def", "Module", "Attention", "range"])
def test_hostile_names_run(hostile, name):
    assert_state_dict(hostile, name)
    net = hostile.to_torch(name).eval()
    assert type(net).__doc__.startswith(("Model `" + name + "`", "Pair `" + name + "`"))
    first = hostile.graph(hostile.members(name)[0])
    xs = [torch.from_numpy(a) for a in random_inputs(first, {"T": 3}).values()]
    with torch.no_grad():
        out = net(*xs)
    last = hostile.graph(hostile.members(name)[-1])
    assert out.shape[-1] == last.type_of(last.outputs[0][1]).shape[-1]
    # nn.Module's own machinery still works: nothing of it was shadowed
    assert net.training is False and len(list(net.modules())) > 1
    net.train()
    assert all(m.training for m in net.modules())


def test_hostile_file_name(tmp_path):
    """The spec's file name reaches comments and docstrings; quotes and newlines must not."""
    path = tmp_path / 'x"""\nimport os\nos.getcwd() # .net'
    path.write_text((EXAMPLES / "lenet.net").read_text())
    text = netc.compile_file(path).torch_source()
    tree = ast.parse(text)
    assert imports(text) <= ALLOWED_IMPORTS
    assert ast.get_docstring(tree).startswith("PyTorch modules for x")
    assert "os.getcwd()" not in text
    assert_ruff_clean(text)


# -- in-place activations ----------------------------------------------------------------------

IN_PLACE = """\
model InPlace(x: float[N, 3, 8, 8]) {
    a = x -> conv2d(4, 3, padding=1) -> batchnorm -> relu
    b = a -> conv2d(4, 3, padding=1)
    c = b -> relu
    d = b + c -> sigmoid
    e = d -> relu -> tanh
    return e, b
}
"""


def test_activations_overwrite_only_fresh_unshared_values(tmp_path):
    """An activation runs in place exactly where its input is the fresh output of an op whose
    gradient does not read it, read by nothing else and not a result; training gradients are
    those of the same network written with out-of-place ops."""
    path = tmp_path / "inplace.net"
    path.write_text(IN_PLACE)
    prog = netc.compile_file(path)
    src = prog.torch_source()
    assert "a = torch.relu_(batchnorm)" in src  # batch norm's output, read once
    assert "c = torch.relu(b)" in src  # b is read twice, and is a result
    assert "d = torch.sigmoid_(add)" in src
    assert "relu_2 = torch.relu(d)" in src  # sigmoid's gradient reads its output
    assert "e = torch.tanh(relu_2)" in src  # so does relu's

    torch.manual_seed(0)
    net = prog.to_torch("InPlace").train()
    p = dict(net.named_parameters())
    x = torch.randn(5, 3, 8, 8, requires_grad=True)
    e, b = net(x)
    (e.square().sum() + b.sum()).backward()
    got = {k: v.grad.clone() for k, v in p.items()} | {"x": x.grad.clone()}

    for v in [*p.values(), x]:
        v.grad = None
    a = F.relu(F.batch_norm(F.conv2d(x, p["conv2d.weight"], p["conv2d.bias"], padding=1), None, None,
                            p["batchnorm.weight"], p["batchnorm.bias"], training=True))
    b_ref = F.conv2d(a, p["b.weight"], p["b.bias"], padding=1)
    e_ref = torch.tanh(torch.relu(torch.sigmoid(b_ref + torch.relu(b_ref))))
    torch.testing.assert_close(e, e_ref)
    (e_ref.square().sum() + b_ref.sum()).backward()
    want = {k: v.grad for k, v in p.items()} | {"x": x.grad}
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=k)
