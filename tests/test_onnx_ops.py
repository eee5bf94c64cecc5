"""Every op of the catalogue through the ONNX exporter, one node at a time: the cases of the
NumPy backend's op tests (tests/test_numpy_backend.py ``CASES``, a few configurations of each
op, themselves checked against torch) become one-node ONNX models that pass the full checker,
whose inferred output shapes are netc's, and that ONNX Runtime runs to the NumPy program's
numbers (float32, 1e-4 relative). ``randn_like``'s integer hash is compared bit for bit."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from netc.backends.numpy.kernels.random import _lowbias32
from netc.backends.onnx.emit import lower_model
from netc.compiler.types import TensorType
from test_numpy_backend import CASES, op_inputs, op_program

import netc

ALL = [(n, xs, a) for n, cases in CASES.items() for xs, a in cases]


def _weights(graph, rng) -> dict[str, np.ndarray]:
    """Random weights (an identity init would hide batch norm's buffers and the like)."""
    out = {}
    for name, p in graph.weights().items():
        shape = tuple(int(d) for d in p.shape)
        lo, hi = (0.2, 1.5) if name.endswith("running_var") else (-0.5, 1.0)
        out[name] = rng.uniform(lo, hi, shape).astype(np.float32)
    return out


def session(model) -> ort.InferenceSession:
    """One-thread sessions: a thread pool per small model costs more than the model runs."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _rel(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max(initial=0) / max(np.abs(want).max(initial=0), 1e-12))


@pytest.mark.parametrize("name, xs, attrs", ALL, ids=lambda v: v if isinstance(v, str) else "")
def test_op_exports_and_matches_numpy(name, xs, attrs):
    compiled = op_program(name, xs, attrs)
    graph = compiled.graphs["OpTest"]
    weights = _weights(graph, np.random.default_rng(0))
    model, _ = lower_model(graph, weights, "ops.net")
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    for vi, t in zip(inferred.graph.output, graph.output_types(), strict=True):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        assert dims == list(t.shape), (vi.name, dims, t)
    inputs = op_inputs(name, graph, np.float32, np.random.default_rng(0))
    want = netc.Program(compiled).to_numpy("OpTest", weights=weights)(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    got = session(model).run(None, {n.id: x for n, x in zip(graph.input_nodes(), inputs)})
    for g, w in zip(got, want, strict=True):
        assert g.shape == np.shape(w) and g.dtype.kind == np.asarray(w).dtype.kind, (g.shape, np.shape(w))
        assert _rel(g, w) <= 1e-4, (name, _rel(g, w))


@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_randn_like_hash_is_bit_exact(seed):
    """The uniforms' integer part of the draw ((hash >> 8) + 1 and hash >> 8, before the cast
    to float) equals the NumPy kernel's on 3 x 4000 elements, and the normals agree."""
    compiled = op_program("randn_like", [TensorType("float", (3, 4000))], {"seed": seed})
    graph = compiled.graphs["OpTest"]
    model, _ = lower_model(graph, {}, "ops.net")
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    assert len(casts) == 2
    model.graph.output.extend(onnx.helper.make_tensor_value_info(c.input[0], onnx.TensorProto.INT64, None)
                              for c in casts)
    x = np.zeros((3, 4000), np.float32)
    z, a, b = session(model).run(None, {"x0": x})
    i = np.arange(x.size, dtype=np.int64)
    s = _lowbias32(np.int64(seed))
    want_a = _lowbias32(_lowbias32((2 * i) & 0xFFFFFFFF) ^ s)
    want_b = _lowbias32(_lowbias32((2 * i + 1) & 0xFFFFFFFF) ^ s)
    np.testing.assert_array_equal(a, (want_a >> 8) + 1)
    np.testing.assert_array_equal(b, want_b >> 8)
    want = netc.Program(compiled).to_numpy("OpTest", weights={})(x)
    assert np.abs(z - want).max() <= 1e-4 * np.abs(want).max()
