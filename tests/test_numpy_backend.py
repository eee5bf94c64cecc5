"""The NumPy backend: kernels, the emitted standalone program, weights, the Program API.

The NumPy program is the reference executor: every example model must give torch's numbers
(eval mode) with the same weights, within 1e-4 of the output's scale in float32 and 1e-10
in float64; so must every op alone, on a single-node graph emitted by both backends.
"""

from __future__ import annotations

import ast
import builtins
import math
import os
import shutil
import subprocess
import symtable
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from netc.backends.numpy.emit import numpy_source
from netc.backends.numpy.kernels import KERNELS, ORDER, closure, source
from netc.backends.torch.source import torch_source
from netc.compiler.dims import Expr, sym
from netc.compiler.ir import Graph, Node
from netc.compiler.pipeline import Compiled
from netc.compiler.types import TensorType
from netc.runtime.inputs import random_inputs
from netc.runtime.torch_modules import load_source
from netc.runtime.weights import (
    WeightError,
    check_weights,
    load_npz,
    numpy_to_state_dict,
    save_npz,
    state_dict_to_numpy,
)
from netc.specs.catalogue import CellBody, LayerRef, all_ops
from netc.specs.init import make as make_init

import netc
from netc.cli import main

OPS = all_ops()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOL = {np.float32: 1e-4, np.float64: 1e-10}
NP_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def rel_diff(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = np.abs(want).max() if want.size else 0.0
    return float(np.abs(got - want).max() / scale) if scale else float(np.abs(got - want).max(initial=0))


def as_tuple(y) -> tuple:
    return y if isinstance(y, tuple) else (y,)


def run_torch(module, inputs: list[np.ndarray]):
    with torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    return tuple(torch.as_tensor(o).detach().numpy() for o in as_tuple(out))


def assert_close(got, want, dtype, what=""):
    got, want = as_tuple(got), as_tuple(want)
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        scalar = not isinstance(g, np.ndarray)  # a literal: a Python number, which has no dtype
        g = np.asarray(g)
        assert g.shape == w.shape, f"{what}: shape {g.shape}, torch {w.shape}"
        if scalar:
            assert g == w, what
        elif w.dtype.kind == "f":
            assert g.dtype == w.dtype, f"{what}: dtype {g.dtype}, torch {w.dtype}"
            assert rel_diff(g, w) <= TOL[dtype], f"{what}: max rel diff {rel_diff(g, w):.3g}"
        else:
            np.testing.assert_array_equal(g, w, err_msg=what)


# -- the kernel table ------------------------------------------------------------------------

def test_every_op_has_a_kernel():
    assert sorted(OPS) == sorted(KERNELS)
    assert sorted(OPS) == sorted(CASES)


def _globals(table: symtable.SymbolTable) -> set[str]:
    out = set(table.get_globals()) if table.get_type() == "function" else set()
    for child in table.get_children():
        out |= _globals(child)
    return out


@pytest.mark.parametrize("name", sorted(ORDER))
def test_kernel_source_is_self_contained(name):
    """A kernel body reads only np, math, builtins and other kernel functions."""
    src = source(ORDER[name])
    assert src.startswith("def ") and "netc" not in src and "@" not in src.split("\n")[0]
    allowed = {"np", "math"} | set(ORDER) | set(dir(builtins))
    unknown = _globals(symtable.symtable(src, name, "exec")) - allowed
    assert not unknown, f"{name} reads {sorted(unknown)}"


def test_closure_brings_helpers():
    names = [f.__name__ for f in closure([KERNELS["lstm"]])]
    assert {"lstm", "_recurrent", "_lstm_step", "_affine", "sigmoid"} <= set(names)
    assert "_gru_step" not in names


def test_erf_matches_math_erf():
    erf = ORDER["_erf"]
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 1.0, -1.0, 1e-8, 40.0, -40.0]])
    want = np.array([math.erf(v) for v in x])
    assert np.abs(erf(x) - want).max() < 5e-16
    assert erf(x.astype(np.float32)).dtype == np.float32


# -- one op at a time: a single-node graph through both emitters ------------------------------

def T(*shape, dtype="float") -> TensorType:
    return TensorType(dtype, tuple(shape))


def add(g: Graph, nid: str, op: str, inputs, **attrs) -> Node:
    """Append the node ``op(*inputs, **attrs)``; its types and weights from the catalogue."""
    spec = OPS[op]
    a = spec.Attrs(**attrs)
    xs = [g.type_of(r) for r in inputs]
    out = spec.shape(xs, a)
    return g.add(Node(nid, op, tuple(inputs), a, out if isinstance(out, tuple) else (out,), None,
                      params=spec.params(xs, a)))


def cell(name: str, states: int) -> CellBody:
    """Elman (one state) or a two-state cell h' = tanh(W x + U h), c' = c + h'."""
    g = Graph(name)
    g.add(Node("x", "input", (), None, (T(2, 3),), None))
    for s in ("h", "c")[:states]:
        g.add(Node(s, "input", (), None, (T(2, 4),), None))
    add(g, "linear", "linear", [("x", 0)], out=4)
    add(g, "linear_1", "linear", [("h", 0)], out=4, bias=False)
    add(g, "add", "add", [("linear", 0), ("linear_1", 0)])
    add(g, "tanh", "tanh", [("add", 0)])
    g.outputs = [("h", ("tanh", 0))]
    if states == 2:
        add(g, "add_1", "add", [("c", 0), ("tanh", 0)])
        g.outputs.append(("c", ("add_1", 0)))
    params = {f"{n.id}.{k}": p for n in g.nodes() for k, p in n.params.items()}
    return CellBody(name, params, 0, states, g)


WTE = LayerRef("wte", "embedding", {"weight": OPS["embedding"].params([T(2, 5, dtype="int")],
                                                                     OPS["embedding"].Attrs(num=11, dim=6))["weight"]})

# op -> [(inputs, attrs)]: every op of the catalogue, a few configurations each.
CASES = {
    "linear": [([T(2, 12)], {"out": 7}), ([T(2, 5, 12)], {"out": 3, "bias": False})],
    "embedding": [([T(2, 5, dtype="int")], {"num": 11, "dim": 6})],
    "unembed": [([T(2, 5, 6)], {"layer": WTE}), ([T(6)], {"layer": WTE})],
    "conv1d": [([T(2, 4, 10)], {"out": 6, "kernel": 3}),
               ([T(2, 4, 10)], {"out": 8, "kernel": 4, "padding": "same", "dilation": 2, "groups": 2,
                                "bias": False}),
               ([T(2, 4, 11)], {"out": 4, "kernel": 3, "stride": 3, "padding": 2, "groups": 4})],
    "conv2d": [([T(2, 3, 9, 9)], {"out": 4, "kernel": 3, "stride": 2, "padding": 1}),
               ([T(2, 3, 9, 9)], {"out": 6, "kernel": (3, 2), "padding": "same", "dilation": (2, 1),
                                  "groups": 3, "bias": False}),
               ([T(1, 4, 8, 7)], {"out": 2, "kernel": (2, 3), "stride": (2, 1), "padding": (0, 2),
                                  "dilation": 2})],
    "conv_transpose2d": [([T(2, 4, 5, 5)], {"out": 3, "kernel": 4, "stride": 2, "padding": 1}),
                         ([T(2, 4, 5, 6)], {"out": 2, "kernel": (3, 2), "stride": (2, 3), "output_padding": 1,
                                            "bias": False}),
                         ([T(1, 2, 3, 3)], {"out": 3, "kernel": 3, "padding": 2})],
    "maxpool1d": [([T(2, 3, 10)], {"kernel": 2}), ([T(2, 3, 10)], {"kernel": 3, "stride": 2, "padding": 1}),
                  ([T(2, 3, 5)], {"kernel": 2, "stride": 3, "padding": 1, "ceil_mode": True}),
                  ([T(2, 3, 9)], {"kernel": 2, "ceil_mode": True}),
                  ([T(2, 3, 1)], {"kernel": 2, "ceil_mode": True}),  # one window, longer than the input
                  ([T(2, 3, 2)], {"kernel": 4, "stride": 3, "padding": 1, "ceil_mode": True})],
    "maxpool2d": [([T(2, 3, 8, 8)], {"kernel": 2}), ([T(2, 3, 8, 8)], {"kernel": 3, "stride": 2, "padding": 1}),
                  ([T(2, 3, 8, 8)], {"kernel": (2, 3), "stride": (1, 2)}),
                  ([T(2, 3, 7, 9)], {"kernel": 3, "stride": 2, "ceil_mode": True}),
                  ([T(2, 3, 5, 6)], {"kernel": 2, "stride": 3, "padding": 1, "ceil_mode": True})],
    "avgpool1d": [([T(2, 3, 10)], {"kernel": 2}), ([T(2, 3, 10)], {"kernel": 3, "stride": 2, "padding": 1}),
                  ([T(2, 3, 10)], {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                                   "count_include_pad": False}),
                  ([T(2, 3, 5)], {"kernel": 2, "stride": 3, "padding": 1, "ceil_mode": True}),
                  ([T(2, 3, 1)], {"kernel": 2, "ceil_mode": True}),
                  ([T(2, 3, 2)], {"kernel": 4, "stride": 3, "padding": 1, "ceil_mode": True}),
                  ([T(2, 3, 2)], {"kernel": 4, "stride": 3, "padding": 1, "ceil_mode": True,
                                  "count_include_pad": False})],
    "avgpool2d": [([T(2, 3, 8, 8)], {"kernel": 2}), ([T(2, 3, 8, 8)], {"kernel": 3, "stride": 2, "padding": 1}),
                  ([T(2, 3, 9, 8)], {"kernel": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
                  ([T(2, 3, 9, 7)], {"kernel": (3, 2), "stride": 2, "padding": (1, 0), "ceil_mode": True}),
                  ([T(2, 3, 9, 5)], {"kernel": 2, "stride": 3, "padding": 1, "ceil_mode": True,
                                     "count_include_pad": False}),
                  ([T(2, 3, 1, 2)], {"kernel": (2, 4), "stride": 3, "padding": (0, 1), "ceil_mode": True})],
    "adaptive_avgpool2d": [([T(2, 3, 7, 10)], {"size": 1}), ([T(2, 3, 7, 10)], {"size": (3, 4)}),
                           ([T(2, 3, 8, 6)], {"size": (4, 3)})],
    "global_avgpool": [([T(2, 3, 5, 4)], {}), ([T(2, 3, 5)], {})],
    "upsample": [([T(1, 2, 6, 4)], {"scale": 2}), ([T(1, 2, 6, 4)], {"scale": 1.5, "mode": "bilinear"}),
                 ([T(1, 2, 6)], {"scale": 0.5}), ([T(1, 2, 3, 4)], {"scale": 3}),
                 ([T(1, 2, 4, 5)], {"scale": 2, "mode": "bilinear"})],
    "batchnorm": [([T(4, 6)], {}), ([T(4, 6, 5)], {"eps": 1e-3}), ([T(4, 6, 5, 3)], {"momentum": 0.2})],
    "layernorm": [([T(2, 3, 4, 5)], {}), ([T(2, 3, 4, 5)], {"dims": 2, "eps": 1e-6}),
                  ([T(2, 3, 4, 5)], {"affine": False}), ([T(2, 3, 4, 5)], {"dims": 3, "eps": 1e-3, "affine": False})],
    "groupnorm": [([T(2, 6, 5)], {"groups": 3}), ([T(2, 6, 5, 3)], {"groups": 2, "eps": 1e-3})],
    "dropout": [([T(2, 3, 4)], {}), ([T(2, 3, 4)], {"p": 0.1})],
    "relu": [([T(2, 3)], {})],
    "leaky_relu": [([T(2, 3)], {}), ([T(2, 3)], {"slope": 0.2})],
    "gelu": [([T(4, 50)], {}), ([T(4, 50)], {"approximate": "tanh"})],
    "relu6": [([T(4, 50)], {})],
    "hardsigmoid": [([T(4, 50)], {})],
    "hardswish": [([T(4, 50)], {})],
    "clamp": [([T(4, 50)], {"min": -0.5}), ([T(4, 50)], {"max": 0.25}), ([T(4, 50)], {"min": -1.0, "max": 0.5})],
    "sin": [([T(2, 3)], {})],
    "cos": [([T(2, 3)], {})],
    "rsqrt": [([T(2, 3)], {})],
    "silu": [([T(2, 3)], {})],
    "tanh": [([T(2, 3)], {})],
    "sigmoid": [([T(2, 3)], {})],
    "softmax": [([T(2, 3)], {}), ([T(2, 3)], {"dim": 0})],
    "log_softmax": [([T(2, 3)], {}), ([T(2, 3, 4)], {"dim": 1})],
    "pad": [([T(2, 3, 4, 5)], {"widths": (1, 2)}), ([T(2, 3, 4, 5)], {"widths": (1, -2, -1, 3), "value": 0.5}),
            ([T(2, 3, 4, 5)], {"widths": (0, 1, 2, 3, 1, 1, 0, 1)}),
            ([T(2, 3, 4, 5)], {"widths": (4, 1, 3, 2), "mode": "reflect"}),
            ([T(2, 3, 5)], {"widths": (2, 3), "mode": "reflect"}),
            ([T(2, 3, 4, 5)], {"widths": (2, 1, 0, 3), "mode": "replicate"}),
            ([T(2, 3, 4, 5)], {"widths": (1, 1, 2, 0, 1, 2), "mode": "replicate"})],
    "expand": [([T(3, 1)], {"sizes": (2, 3, 4)}), ([T(2, 1, 4)], {"sizes": (-1, 5, -1)})],
    "broadcast_to": [([T(1, 4)], {"sizes": (3, -1)}), ([T(4)], {"sizes": (2, 3, 4)})],
    "repeat": [([T(2, 3)], {"times": (2, 1)}), ([T(2, 3)], {"times": (2, 1, 3)})],
    "flatten": [([T(2, 3, 4, 5)], {}), ([T(2, 3, 4, 5)], {"start": 0, "end": 2})],
    "index": [([T(2, 3, 4, 5)], {"items": ((None, None, None), 0)}),
              ([T(2, 3, 4, 5)], {"items": ("...", (1, None, 2), "new", -1)}),
              ([T(2, 3, 4)], {"items": (-1, (None, -1, None))})],
    "parameter": [([], {"shape": (2, 3), "init": make_init("normal", (0.02,))}),
                  ([], {"shape": (4,), "init": make_init("full", (0.5,))})],
    "memory_format": [([T(2, 3, 4, 5)], {"format": "channels_last"}), ([T(2, 3)], {})],
    "reshape": [([T(2, 3, 4)], {"shape": (6, 4)}), ([T(2, 3, 4)], {"shape": (-1, 12)}),
                ([T(2, 3, 4)], {"shape": (2, 3, 2, 2)})],
    "transpose": [([T(2, 3, 4)], {"a": 1, "b": 2}), ([T(2, 3, 4)], {"a": -1, "b": 0})],
    "permute": [([T(2, 3, 4)], {"dims": (2, 0, 1)}), ([T(2, 3, 4)], {"dims": (0, -1, 1)})],
    "concat": [([T(2, 3, 4), T(2, 5, 4)], {"dim": 1}), ([T(2, 3, 4), T(2, 3, 1), T(2, 3, 2)], {}),
               ([T(2, 3)], {"dim": 0})],
    "split": [([T(2, 7, 4)], {"sizes": 3, "dim": 1}), ([T(2, 7, 4)], {"sizes": (3, 4), "dim": 1}),
              ([T(2, 7, 4)], {"sizes": (1, 3)}), ([T(2, 4)], {"sizes": 4})],
    "mean": [([T(2, 3, 4)], {"dim": 1}), ([T(2, 3, 4)], {"dim": (1, 2), "keepdim": True})],
    "sum": [([T(2, 3, 4)], {"dim": -1}), ([T(2, 3, 4, dtype="bool")], {"dim": (0, 2), "keepdim": True})],
    "positions": [([T(2, 5, dtype="int")], {}), ([T(2, 5, 8)], {})],
    "add": [([T(2, 3), T(3)], {}), ([T(2, 3, dtype="int"), T(2, 1, dtype="int")], {})],
    "sub": [([T(2, 3), T(3)], {}), ([T(2, 3, dtype="int"), T(3, dtype="int")], {})],
    "mul": [([T(2, 3), T(2, 1)], {}), ([T(2, 3, dtype="bool"), T(3, dtype="int")], {})],
    "div": [([T(2, 3), T(3)], {})],
    "matmul": [([T(2, 3, 4), T(4, 5)], {}), ([T(4), T(2, 4, 5)], {}), ([T(3, 4), T(4)], {})],
    "constant": [([], {"value": 2.5}), ([], {"value": 3, "dtype": "int"}), ([], {"value": True, "dtype": "bool"})],
    "neg": [([T(2, 3)], {})],
    "abs": [([T(2, 3)], {}), ([T(2, 3, dtype="int")], {})],
    "sqrt": [([T(2, 3)], {})],
    "exp": [([T(2, 3)], {})],
    "log": [([T(2, 3)], {})],
    "fused_elementwise": [([T(2, 3), T(3)], {"steps": (("mul", 0.5), ("add", "x1"), ("sigmoid", None))}),
                          ([T(2, 3, 4)], {"steps": (("neg", None), ("rsub", 1.0), ("abs", None), ("sqrt", None),
                                                    ("rdiv", -2.0), ("leaky_relu", 0.2), ("gelu", None),
                                                    ("silu", None), ("tanh", None), ("exp", None))}),
                          ([T(2, 3, 4)], {"steps": (("mul", 4.0), ("relu6", None), ("sin", None), ("cos", None),
                                                    ("hardswish", None), ("add", 0.5), ("hardsigmoid", None),
                                                    ("rsqrt", None))}),
                          ([T(2, 3), T(2, 3), T(1, 3)], {"steps": (("sub", "x1"), ("relu", None), ("div", "x2"),
                                                                   ("mul", "x0"), ("add", 3.0), ("log", None))}),
                          ([T(1)], {"steps": (("mul", 2.0), ("rsub", 1.0), ("sigmoid", None))})],
    "rnn": [([T(2, 5, 3)], {"hidden": 4}),
            ([T(2, 5, 3), T(4, 2, 4)], {"hidden": 4, "layers": 2, "bidirectional": True,
                                        "nonlinearity": "relu"})],
    "gru": [([T(2, 5, 3)], {"hidden": 4, "layers": 2, "dropout": 0.1}),
            ([T(2, 5, 3), T(2, 2, 4)], {"hidden": 4, "bidirectional": True})],
    "lstm": [([T(2, 5, 3)], {"hidden": 4, "bidirectional": True}),
             ([T(2, 5, 3), T(2, 2, 4), T(2, 2, 4)], {"hidden": 4, "layers": 2})],
    "scan": [([T(2, 5, 3)], {"cell": cell("Elman", 1), "hidden": 4}),
             ([T(2, 5, 3)], {"cell": cell("TwoState", 2), "hidden": 4})],
    "self_attention": [([T(2, 5, 8)], {"heads": 2}),
                       ([T(2, 5, 8)], {"heads": 4, "causal": True, "dropout": 0.1, "bias": False}),
                       ([T(2, 5, 16), T(2, 5, dtype="bool"), T(2, 1, 5, 5)],
                        {"heads": 4, "kv_heads": 2, "rotary": True, "causal": True, "masks": ("padding", "mask")}),
                       ([T(2, 5, 8), T(5, 5, dtype="bool")], {"heads": 2, "kv_heads": 1, "masks": ("mask",)})],
    "cross_attention": [([T(2, 5, 8), T(2, 7, 8)], {"heads": 2}),
                        ([T(2, 5, 8), T(2, 3, 8)], {"heads": 2, "causal": True, "bias": False}),
                        ([T(2, 5, 8), T(2, 7, 8), T(2, 7, dtype="bool")],
                         {"heads": 4, "kv_heads": 2, "masks": ("padding",)})],
    "attention": [([T(2, 5, 4), T(2, 7, 4), T(2, 7, 3)], {}),
                  ([T(2, 5, 4), T(2, 7, 4), T(2, 7, 3), T(5, 7)], {"scale": 0.5}),
                  ([T(2, 5, 4), T(2, 7, 4), T(2, 7, 3), T(5, 7, dtype="bool")], {}),
                  ([T(2, 5, 4), T(2, 5, 4), T(2, 5, 3)], {"causal": True}),
                  ([T(2, 3, 5, 4), T(2, 3, 6, 4), T(2, 3, 6, 2)], {"causal": True}),
                  ([T(2, 4, 5, 4), T(2, 2, 7, 4), T(2, 2, 7, 3), T(2, 7, dtype="bool"), T(5, 7)],
                   {"causal": True, "dropout": 0.2, "masks": ("padding", "mask")})],
    "rotary": [([T(2, 3, 5, 8)], {}), ([T(7, 6)], {"base": 100.0})],
    "rmsnorm": [([T(2, 5, 8)], {}), ([T(3, 6)], {"eps": 1e-3})],
    "positional_encoding": [([T(2, 5, 8)], {}), ([T(1, 40, 6)], {})],
    "randn_like": [([T(3, 50)], {}), ([T(2, 3, 4)], {"seed": 4_000_000_000})],
}


def op_program(name: str, xs: list[TensorType], attrs: dict) -> Compiled:
    """A one-model program: inputs x0, x1... and the single node ``name`` (plus, for unembed,
    the embedding whose table it uses)."""
    g = Graph("OpTest")
    for i, t in enumerate(xs):
        g.add(Node(f"x{i}", "input", (), None, (t,), None))
    refs = [(f"x{i}", 0) for i in range(len(xs))]
    if name == "unembed":
        g.add(Node("ids", "input", (), None, (T(2, 5, dtype="int"),), None))
        add(g, "wte", "embedding", [("ids", 0)], num=11, dim=6)
        g.outputs.append(("wte", ("wte", 0)))
    node = add(g, name, name, refs, **attrs)
    g.outputs += [(None, (node.id, i)) for i in range(len(node.types))]
    return Compiled("ops.net", {"OpTest": g})


def op_inputs(name: str, g: Graph, dtype, rng) -> list[np.ndarray]:
    out = []
    for n in g.input_nodes():
        t = n.type
        if t.dtype == "float":
            x = rng.standard_normal(t.shape).astype(dtype)
            x = x * 4 if name in ("relu6", "hardsigmoid", "hardswish") else x  # past the bends at ±3, 6
            out.append(np.abs(x) + 0.5 if name in ("sqrt", "log", "rsqrt") else x)
        elif t.dtype == "int":
            out.append(rng.integers(0, 5, t.shape))
        else:
            out.append(rng.random(t.shape) > 0.3)
    return out


@pytest.mark.parametrize("name, xs, attrs", [(n, xs, a) for n, cases in CASES.items() for xs, a in cases],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_op_matches_torch(name, xs, attrs):
    """Shapes are the catalogue's; numbers are torch's in float32 and float64."""
    compiled = op_program(name, xs, attrs)
    g = compiled.graphs["OpTest"]
    torch.manual_seed(0)
    module = load_source(torch_source(compiled), stem="optest").OpTest().eval()
    for p in module.parameters():  # batchnorm's identity init would hide its buffers
        torch.nn.init.uniform_(p, -0.5, 1.0)
    for b in module.buffers():
        if b.is_floating_point():
            b.uniform_(0.2, 1.5)
    for dtype in (np.float32, np.float64):
        module.to(NP_DTYPE[dtype])
        prog = netc.Program(compiled).to_numpy("OpTest", weights=module.state_dict())
        inputs = op_inputs(name, g, dtype, np.random.default_rng(0))
        got = as_tuple(prog(*inputs))
        assert [np.shape(y) for y in got] == [tuple(t.shape) for t in g.output_types()]
        assert_close(got, run_torch(module, inputs), dtype, f"{name} {dtype.__name__}")
        if xs and all(t.dtype == "float" for t in xs):
            assert all(np.asarray(y).dtype == dtype for y, t in zip(got, g.output_types()) if t.dtype == "float")


def test_kernels_are_called_by_name():
    src = numpy_source(op_program("conv2d", [T(2, 3, 9, 9)], {"out": 4, "kernel": 3, "stride": 2,
                                                               "padding": 1, "bias": False}), "OpTest")
    assert 'conv2d_ = conv2d(x0, weights["conv2d.weight"], None, stride=2, padding=1)' in src
    src = numpy_source(op_program("lstm", [T(2, 5, 3)], {"hidden": 4, "layers": 2}), "OpTest")
    assert 'lstm(x0, weights, "lstm.", layers=2)' in src


# -- example models: torch and NumPy give the same numbers -------------------------------------

SMALL = {
    "dcgan": {"ngf": 8, "ndf": 8},
    "gpt2": {"layers": 2, "width": 32, "vocab": 100, "heads": 2, "context": 64},
    "llama": {"layers": 2, "width": 32, "vocab": 100, "heads": 4, "kv_heads": 2, "ff": 48},
    "gru_classifier": {"vocab": 100, "dim": 16, "hidden": 24},
    "lstm_lm": {"vocab": 100, "dim": 32},
    "resnet18": {"classes": 10},
    "seq2seq": {"vocab": 50, "dim": 16, "hidden": 32},
    "seq2seq_attention": {"src_vocab": 50, "tgt_vocab": 40, "hidden": 16},
    "vgg11": {"classes": 10},
    "mobilenet_v2": {"classes": 10},
    "efficientnet_b0": {"classes": 10},
}
SIZES = {"gpt2": {"T": 7}, "resnet18": {"N": 1}, "vgg11": {"N": 1}, "transformer": {"S": 3, "T": 4},
         "mobilenet_v2": {"N": 1, "H": 32, "W": 40}, "efficientnet_b0": {"N": 1, "H": 32, "W": 40},
         "unet": {"N": 1, "H": 19, "W": 23}}
MODELS = [("autoencoder", "Encoder"), ("autoencoder", "Decoder"), ("char_rnn", "CharRNN"),
          ("char_rnn", "CharLSTM"), ("dcgan", "Generator"), ("dcgan", "Discriminator"), ("gpt2", "GPT2"), ("llama", "Llama"),
          ("gru_classifier", "GRUClassifier"), ("lenet", "LeNet"), ("lstm_lm", "LSTMLanguageModel"),
          ("resnet18", "ResNet18"), ("seq2seq", "Encoder"), ("seq2seq", "Decoder"),
          ("seq2seq_attention", "Seq2SeqAttention"), ("transformer", "Transformer"), ("vgg11", "VGG11"),
          ("mobilenet_v2", "MobileNetV2"), ("efficientnet_b0", "EfficientNetB0"), ("unet", "UNet"), ("vae", "VAE")]


def compile_example(spec: str, model: str | None = None) -> netc.Program:
    """The spec at its test size (``model``: only that model, when the defines allow it)."""
    defines = SMALL.get(spec)
    return netc.compile_file(EXAMPLES / f"{spec}.net", defines=defines, models=None if defines else model and [model])


def test_every_example_is_covered():
    specs = {p.stem for p in EXAMPLES.glob("*.net")}
    assert specs == {s for s, _ in MODELS}
    for spec in specs:
        prog = compile_example(spec)
        assert {m for m in prog.models if m not in prog.pairs} == {m for s, m in MODELS if s == spec}


@pytest.mark.parametrize("spec, model", MODELS, ids=[f"{s}-{m}" for s, m in MODELS])
def test_example_matches_torch(spec, model):
    prog = compile_example(spec, model)
    torch.manual_seed(0)
    module = prog.to_torch(model).eval()
    for dtype in (np.float32, np.float64):
        module.to(NP_DTYPE[dtype])
        inputs = list(random_inputs(prog.graph(model), SIZES.get(spec), seed=1, dtype=dtype).values())
        got = prog.to_numpy(model, weights=module.state_dict())(*inputs)
        assert_close(got, run_torch(module, inputs), dtype, f"{model} {dtype.__name__}")


def batch_axes(types: list[TensorType]) -> list[int | None]:
    return [next((i for i, d in enumerate(t.shape) if d == sym("N")), None) for t in types]


@pytest.mark.parametrize("spec, model", [("lenet", "LeNet"), ("autoencoder", "Decoder"), ("gpt2", "GPT2"),
                                         ("char_rnn", "CharLSTM"), ("seq2seq", "Decoder"),
                                         ("seq2seq", "Encoder"), ("gru_classifier", "GRUClassifier"),
                                         ("seq2seq_attention", "Seq2SeqAttention")])
def test_batch_size_independent(spec, model):
    """One program for any batch size: each sample's output does not depend on the others."""
    prog = compile_example(spec, model)
    g = prog.graph(model)
    ex = prog.to_numpy(model)  # seeded weights
    big = list(random_inputs(g, {**SIZES.get(spec, {}), "N": 3}, seed=2).values())
    one = [np.take(x, [1], axis=a) for x, a in zip(big, batch_axes([n.type for n in g.input_nodes()]))]
    y3, y1 = as_tuple(ex(*big)), as_tuple(ex(*one))
    for a, b, axis in zip(y3, y1, batch_axes(g.output_types())):
        assert a.shape[axis] == 3 and b.shape[axis] == 1
        assert rel_diff(np.take(a, [1], axis=axis), b) < 1e-5


SMALL_SPECS = """
# A layer applied twice, a size only a reshape recovers, literals in arithmetic.
model Shared(x: float[N, 8]) -> float[N, 8] {
    let fc = linear(8)
    return x -> fc -> relu -> fc
}

model Halves(x: float[2 * N, 4]) -> float[N, 8] {
    return x -> reshape(N, 8) -> linear(8)
}

model Gate(x: float[N, T, 4]) -> float[N, T, 4] {
    a, b = split(x, 2, dim=-1)
    return concat(a * sigmoid(b), b - 1.5, dim=-1) * 2
}
"""


def test_small_specs_match_torch(tmp_path):
    path = tmp_path / "small.net"
    path.write_text(SMALL_SPECS)
    prog = netc.compile_file(path)
    src = prog.numpy_source("Shared")
    assert src.count('weights["fc.weight"]') == 2 and "shape=(-1, 8)" in prog.numpy_source("Halves")
    for model in prog.models:
        module = prog.to_torch(model).eval()
        inputs = list(random_inputs(prog.graph(model), {"N": 3}).values())
        assert_close(prog.to_numpy(model, module.state_dict())(*inputs), run_torch(module, inputs), np.float32)


def test_mixed_dtypes_are_refused():
    prog = compile_example("lenet")
    ex = prog.to_numpy("LeNet")
    x = np.zeros((1, 1, 28, 28))
    with pytest.raises(TypeError, match="inputs are float64 but the weights are float32"):
        ex(x)
    assert ex.astype(np.float64)(x).dtype == np.float64


def test_pair_program():
    """A pair's program runs either model with the pair module's weights; forward is the first."""
    prog = compile_example("autoencoder")
    torch.manual_seed(0)
    pair = prog.to_torch("AutoEncoder").eval()
    ex = prog.to_numpy("AutoEncoder", weights=pair.state_dict())
    image = random_inputs(prog.graph("Encoder"), {"N": 2})["image"]
    with torch.no_grad():
        z, recon = pair.encode(torch.from_numpy(image)).numpy(), pair(torch.from_numpy(image)).numpy()
    assert rel_diff(ex(image), z) < 1e-4
    assert rel_diff(ex.run("Decoder", ex(image)), recon) < 1e-4
    src = prog.numpy_source("AutoEncoder")
    assert "def forward_Encoder(weights, image):" in src and "def forward_Decoder(weights, z):" in src
    assert "def forward(weights, image):\n" in src


def test_shared_layer_and_tied_unembed_use_the_owner_weights():
    src = compile_example("gpt2").numpy_source("GPT2")
    assert 'unembed(layernorm_, weights["wte.weight"])' in src.replace("\n        ", "").replace("\n    ", "")
    assert src.count('weights["wte.weight"]') == 2


# -- the standalone program ---------------------------------------------------------------------

def imported_modules(src: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add((node.module or "").split(".")[0])
    return out


@pytest.mark.parametrize("spec, name", [("lenet", "LeNet"), ("char_rnn", "CharLSTM"), ("gpt2", "GPT2"),
                                        ("seq2seq", "Seq2Seq"), ("dcgan", "DCGAN"),
                                        ("gru_classifier", "GRUClassifier")])
def test_source_imports_only_numpy_and_math(spec, name):
    src = compile_example(spec).numpy_source(name)
    assert imported_modules(src) <= {"numpy", "math"}
    assert src.startswith(f"# Generated by netc from {spec}.net")
    assert src == compile_example(spec).numpy_source(name)  # byte-stable


RUFF = shutil.which("ruff", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
assert RUFF, "ruff is not installed (a dev dependency: pip install -e '.[dev]')"


def test_source_is_ruff_clean(tmp_path):
    for spec, name in [("char_rnn", "CharLSTM"), ("gpt2", "GPT2"), ("autoencoder", "AutoEncoder"),
                       ("transformer", "Transformer")]:
        path = tmp_path / f"{spec}_np.py"
        path.write_text(compile_example(spec).numpy_source(name))
        res = subprocess.run([RUFF, "check", "--no-cache", "--isolated", str(path)], capture_output=True,
                             text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr


RUNNER = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import model_np
weights = model_np.load_weights(sys.argv[1] + "/weights.npz")
with np.load(sys.argv[1] + "/inputs.npz") as f:
    inputs = [f[k] for k in sys.argv[2:]]
y = model_np.forward(weights, *inputs)
np.savez(sys.argv[1] + "/out.npz", *(y if isinstance(y, tuple) else (y,)))
stray = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "netc", "scipy"))
assert not stray, stray
"""


@pytest.mark.parametrize("spec, model", [("char_rnn", "CharLSTM"), ("gpt2", "GPT2"), ("seq2seq", "Encoder")])
def test_runs_as_a_standalone_script(tmp_path, spec, model):
    prog = compile_example(spec, model)
    ex = prog.to_numpy(model)
    (tmp_path / "model_np.py").write_text(prog.numpy_source(model))
    save_npz(ex.weights[model], tmp_path / "weights.npz")
    inputs = random_inputs(prog.graph(model), SIZES.get(spec), seed=3)
    np.savez(tmp_path / "inputs.npz", **inputs)
    res = subprocess.run([sys.executable, "-I", "-c", RUNNER, str(tmp_path), *inputs], capture_output=True,
                         text=True, check=False, timeout=60)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "out.npz") as f:
        got = [f[k] for k in f.files]
    want = as_tuple(ex(*inputs.values()))
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))


# -- weights --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lenet():
    prog = compile_example("lenet")
    torch.manual_seed(0)
    return prog, prog.to_torch("LeNet").eval()


@pytest.mark.parametrize("edit, message", [
    (lambda w: w.pop("conv2d.weight"), "missing weight `conv2d.weight` [32, 1, 3, 3]"),
    (lambda w: w.__setitem__("foo.bias", np.zeros(3, np.float32)), "unexpected weight `foo.bias`"),
    (lambda w: w.__setitem__("linear.weight", np.zeros((10, 5), np.float32)),
     "weight `linear.weight` has shape [10, 5]; the model needs [128, 3136]"),
])
def test_bad_weights_name_the_parameter(lenet, edit, message):
    prog, module = lenet
    weights = state_dict_to_numpy(module.state_dict())
    edit(weights)
    with pytest.raises(WeightError) as e:
        prog.to_numpy("LeNet", weights=weights)
    assert message in str(e.value)


def test_weights_of_an_optimised_module_say_which_level():
    """The state dict of an -O2 module (batch norms folded) does not fit the -O0 program; the
    error says so and how to fix it, and opt=2 takes it (as it takes -O0 weights)."""
    prog = compile_example("dcgan", "Discriminator")
    o2 = prog.to_torch("Discriminator", opt=2).eval()
    with pytest.raises(WeightError) as e:
        prog.to_numpy("Discriminator", weights=o2.state_dict())
    assert str(e.value).endswith("hint: these are the weights of the -O2 program: pass opt=2")
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    got = prog.to_numpy("Discriminator", weights=o2.state_dict(), opt=2)(x)
    assert_close(got, run_torch(o2, [x]), np.float32, "Discriminator -O2")


def test_pair_weights_are_named_with_the_role():
    prog = compile_example("autoencoder")
    sd = state_dict_to_numpy(prog.to_torch("AutoEncoder").state_dict())
    del sd["decoder.linear.bias"]
    with pytest.raises(WeightError, match=r"missing weight `decoder\.linear\.bias` \[1568\]"):
        prog.to_numpy("AutoEncoder", weights=sd)


def test_num_batches_tracked_is_accepted_and_ignored():
    prog = compile_example("dcgan", "Discriminator")
    g = prog.graph("Discriminator")
    sd = state_dict_to_numpy(prog.to_torch("Discriminator").state_dict())
    assert any(k.endswith("num_batches_tracked") for k in sd)
    check_weights(g, sd)
    check_weights(g, {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")})


def test_weights_round_trip(lenet, tmp_path):
    prog, module = lenet
    path = tmp_path / "lenet.npz"
    save_npz(module.state_dict(), path)
    loaded = load_npz(path)
    assert list(loaded) == list(module.state_dict())
    x = random_inputs(prog.graph("LeNet"))["image"]
    assert np.array_equal(prog.to_numpy("LeNet", weights=str(path))(x),
                          prog.to_numpy("LeNet", weights=module.state_dict())(x))
    fresh = prog.to_torch("LeNet")
    fresh.load_state_dict(numpy_to_state_dict(loaded))
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), module.state_dict().values()))


def test_seeded_weights_are_deterministic():
    prog = compile_example("dcgan", "Generator")
    a, b = prog.to_numpy("Generator"), prog.to_numpy("Generator")
    assert all(np.array_equal(a.weights["Generator"][k], v) for k, v in b.weights["Generator"].items())
    z = random_inputs(prog.graph("Generator"), {"N": 1})["z"]
    assert np.all(np.isfinite(a(z)))
    sd = numpy_to_state_dict(a.weights["Generator"], prog.graph("Generator"))
    module = prog.to_torch("Generator").eval()
    module.load_state_dict(sd)  # strict: num_batches_tracked filled in
    assert rel_diff(a(z), run_torch(module, [z])[0]) < 1e-4


# -- the command line -------------------------------------------------------------------------

def test_cli_compile_numpy(tmp_path, capsys):
    out = tmp_path / "lenet_np.py"
    assert main(["compile", str(EXAMPLES / "lenet.net"), "--backend", "numpy", "-o", str(out)]) == 0
    assert out.read_text() == compile_example("lenet").numpy_source("LeNet")
    assert main(["compile", str(EXAMPLES / "autoencoder.net"), "--backend", "numpy", "--model", "Decoder"]) == 0
    assert "def forward(weights, z):" in capsys.readouterr().out
    assert main(["compile", str(EXAMPLES / "autoencoder.net"), "--backend", "numpy"]) == 0
    assert "model `Encoder`" in capsys.readouterr().out
    code = main(["compile", str(EXAMPLES / "autoencoder.net"), "--backend", "numpy", "--model", "Encoder",
                 "--model", "Decoder"])
    assert code == 2 and "give --model once" in capsys.readouterr().err


def test_symbolic_sizes_are_read_from_inputs():
    src = compile_example("autoencoder").numpy_source("Decoder")
    assert "N = z.shape[0]" in src and "reshape(relu_, shape=(N, 32, 7, 7))" in src
    assert isinstance(compile_example("autoencoder").graph("Decoder").node("reshape").attrs.shape[0], Expr)


# -- scratch buffers: reused between calls, never shared ------------------------------------------

SCRATCH = """\
model Scratch(x: float[N, 4, 16, 16]) {
    a = x -> conv2d(4, 3, stride=2, padding=1)
    b = a -> conv2d(4, 3, padding=1)
    c = a -> conv2d(4, 3, padding=2, dilation=2) -> maxpool2d(3, stride=1, padding=1)
    return b + c
}
"""


def test_scratch_buffers_are_reused_safely(tmp_path):
    """The three convolutions gather columns of one shape with different padding, so they
    reuse one scratch buffer whose zeros differ; calls one after another and from four threads
    at once give torch's numbers every time."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "scratch.net"
    path.write_text(SCRATCH)
    prog = netc.compile_file(path)
    torch.manual_seed(0)
    module = prog.to_torch("Scratch").eval()
    ex = prog.to_numpy("Scratch", weights=module.state_dict())
    xs = [np.random.default_rng(i).standard_normal((2, 4, 16, 16)).astype(np.float32) for i in range(8)]
    want = [run_torch(module, [x]) for x in xs]
    for x, w in zip(xs * 2, want * 2):
        assert_close(ex(x), w, np.float32, "sequential")
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            for got, w in zip(pool.map(ex, xs), want):
                assert_close(got, w, np.float32, "threads")
    cache = ex.module._scratch.__defaults__[-1]
    assert cache
    ex.release()  # frees what the program keeps between calls; it still runs
    assert not cache
    assert_close(ex(xs[0]), want[0], np.float32, "after release")


@pytest.mark.parametrize("shape, kernel, padding, bias, stride", [
    ((2, 3, 6, 40), 3, 1, True, 1),
    ((2, 3, 5, 64), 4, "same", False, 1),  # asymmetric padding: torch puts the odd one at the end
    ((1, 4, 7, 48), (1, 3), (0, 1), True, 1),
    ((3, 2, 9, 33), (3, 1), 0, True, 1),
    ((2, 3, 6, 40), 3, 0, False, 1),
    ((2, 3, 9, 64), 3, 1, True, 2),  # phases: ResNet's downsampling convolutions
    ((2, 3, 11, 81), 7, 3, False, 2),  # ResNet's stem
    ((2, 4, 8, 60), 1, 0, False, 2),  # ResNet's 1x1 shortcut
    ((1, 2, 7, 50), (2, 3), 1, True, (1, 2)),
    ((1, 2, 10, 90), 5, 2, True, 3),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_on_wide_images(shape, kernel, padding, bias, stride, dtype):
    """Convolutions of images much wider than the kernel take the kernel's path over the
    padded rows (of each stride phase) laid end to end (_conv2d_rows); torch's numbers,
    called twice (the scratch buffers are reused)."""
    conv = KERNELS["conv2d"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    w = rng.standard_normal((5, shape[1], *k)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype) if bias else None
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), None if b is None else
                                      torch.from_numpy(b), stride=stride, padding=padding).numpy()
    # first, an unpadded image of the padded size: it leaves its values in the scratch buffer
    # that the padded convolution then reuses, whose borders must be zeros again
    pads = [kk - 1 for kk in k] if padding == "same" else [2 * p for p in ((padding,) * 2 if isinstance(
        padding, int) else padding)]
    conv(rng.standard_normal((*shape[:2], shape[2] + pads[0], shape[3] + pads[1])).astype(dtype), w, b)
    for _ in range(2):
        assert_close(conv(x, w, b, stride=stride, padding=padding), want, dtype, f"{shape} {kernel} {padding}")
