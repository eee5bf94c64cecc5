"""ONNX's node test cases through our NumPy kernels, for every ONNX op whose meaning we share.

The cases come from ``onnx.backend.test.case.node.collect_testcases()`` (the installed onnx
wheel ships the generators, not the ``data/node`` files): each is a one-node model, its
inputs and ONNX's expected outputs. The adapter (tests/onnx_adapter.py, :data:`ADAPTERS`)
maps the node's attributes to our kernel arguments and calls the kernels from the table
(``netc.backends.numpy.kernels.KERNELS``) directly; it changes layouts only where ONNX's
differ from ours (time-major RNN tensors, gate order, pads as begin/end lists).

Every case of the ops in :data:`ADAPTERS` is either run and must match, or listed in
:data:`OUT_OF_SCOPE` with the reason; the adapter must refuse exactly the listed cases, so
the list cannot go stale, and docs/conformance.md must name every case with its status.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx_adapter import ADAPTERS, Node, Unsupported

DOC = Path(__file__).resolve().parent.parent / "docs" / "conformance.md"
RTOL, ATOL = 1e-5, 1e-7  # ONNX's backend runner uses rtol=1e-3, atol=1e-7; we hold 1e-5 relative


_PADS_GT_HALF = "padding 2 with a 3-wide kernel: more than half the kernel, which the catalogue (as torch) refuses"
_CEIL = "ceil_mode: our pools round the output size down (torch's default); no ceil_mode attribute"
_DILATED_POOL = "dilated pooling: our pools have no dilation"
_EXCL_PAD = "count_include_pad=0 with padding: our average counts the zero padding (torch's default)"
_POOL_3D = "3-d pooling: our pools are 1-d and 2-d"
_ASYM = "SAME padding of a 2-wide kernel is asymmetric (0, 1): our padding is the same at both ends"
_GRU_LBR = ("linear_before_reset=0 (ONNX's default): the reset gate multiplies h before the recurrent matmul; "
            "torch's GRU, and ours, multiply after it (linear_before_reset=1; see the derived cases)")
OUT_OF_SCOPE = {
    "test_averagepool_2d_precomputed_pads": _EXCL_PAD,
    "test_averagepool_2d_precomputed_same_upper": _EXCL_PAD,
    "test_averagepool_2d_pads": _EXCL_PAD,
    "test_averagepool_2d_pads_count_include_pad": _PADS_GT_HALF,
    "test_averagepool_2d_same_upper": _ASYM,
    "test_averagepool_2d_same_lower": _ASYM,
    "test_averagepool_2d_ceil": _CEIL,
    "test_averagepool_2d_ceil_last_window_starts_on_pad": _CEIL,
    "test_averagepool_2d_dilations": _DILATED_POOL,
    "test_averagepool_3d_default": _POOL_3D,
    "test_averagepool_3d_dilations_small": _POOL_3D,
    "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True": _POOL_3D,
    "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False": _POOL_3D,
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True": _POOL_3D,
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False": _POOL_3D,
    "test_maxpool_2d_uint8": "uint8 input: our tensors are float (maxpool pads with -inf)",
    "test_maxpool_with_argmax_2d_precomputed_pads": "the Indices output (argmax): our maxpool returns values only",
    "test_maxpool_with_argmax_2d_precomputed_strides": "the Indices output (argmax, storage_order=1): our maxpool "
                                                       "returns values only",
    "test_maxpool_2d_same_upper": _ASYM,
    "test_maxpool_2d_same_lower": _ASYM,
    "test_maxpool_2d_pads": _PADS_GT_HALF,
    "test_maxpool_2d_ceil": _CEIL,
    "test_maxpool_2d_ceil_output_size_reduce_by_one": _CEIL,
    "test_maxpool_2d_dilations": _DILATED_POOL,
    "test_maxpool_3d_default": _POOL_3D,
    "test_maxpool_3d_dilations": _POOL_3D,
    "test_maxpool_3d_dilations_use_ref_impl": _POOL_3D,
    "test_maxpool_3d_dilations_use_ref_impl_large": _POOL_3D,
    "test_batchnorm_example_training_mode": "training_mode: our batchnorm is the inference form (running stats)",
    "test_batchnorm_epsilon_training_mode": "training_mode: our batchnorm is the inference form (running stats)",
    "test_convtranspose_1d": "1-d transposed convolution: we have conv_transpose2d only",
    "test_convtranspose_3d": "3-d transposed convolution: we have conv_transpose2d only",
    "test_convtranspose_autopad_same": "SAME_UPPER crops one row and column at the end only (pads (0, 1)): "
                                       "torch's padding crops both ends alike",
    "test_convtranspose_dilations": "dilations: our conv_transpose2d has none (torch's default 1)",
    "test_convtranspose_group_2": "group=2: our conv_transpose2d has no groups",
    "test_convtranspose_group_2_image_3": "group=2: our conv_transpose2d has no groups",
    "test_flatten_axis0": "axis 0 gives [1, n]: our flatten merges existing dims, never adds one",
    "test_flatten_negative_axis4": "axis -4 (= 0 here) gives [1, n]: our flatten merges existing dims, never "
                                   "adds one",
    "test_gather_1": "Gather on axis 1: an embedding looks up rows (axis 0)",
    "test_gather_2d_indices": "Gather on axis 1: an embedding looks up rows (axis 0)",
    "test_gather_negative_indices": "1-d data and negative indices: an embedding has a table of rows and ids "
                                    "from 0",
    "test_gelu_tanh_1": "approximate='tanh': our gelu is the exact (erf) one",
    "test_gelu_tanh_2": "approximate='tanh': our gelu is the exact (erf) one",
    "test_lstm_with_peepholes": "peepholes (P) and sequence_lens: torch's LSTM, and ours, have neither",
    **{f"test_gru_{c}": _GRU_LBR for c in ("defaults", "with_initial_bias", "seq_length", "batchwise", "reverse",
                                             "bidirectional")},
}


@cache
def cases() -> dict[str, list]:
    """op type -> ONNX's single-node cases of it: (name, node, inputs, expected outputs, rtol, atol)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        collected = collect_testcases()
    out: dict[str, list] = {op: [] for op in ADAPTERS}
    for case in collected:
        g = case.model.graph
        if len(g.node) != 1 or g.node[0].op_type not in ADAPTERS:
            continue  # the `_expanded` cases: the op decomposed into other ops
        node = Node.of(g.node[0], next(o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")))
        ins, want = case.data_sets[0]
        out[node.op_type].append((case.name, node, [_array(a) for a in ins], [_array(a) for a in want],
                                  case.rtol, case.atol))
    return out


def _array(a) -> np.ndarray:
    return numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a)


def run_case(node, inputs: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Our outputs by ONNX output position; raises Unsupported for a configuration we lack."""
    data = iter(inputs)
    positional = [next(data) if name else None for name in node.input]
    got = ADAPTERS[node.op_type](node, *positional)
    wanted = [i for i, name in enumerate(node.output) if name]
    if any(i >= len(got) for i in wanted):
        raise Unsupported(f"output {max(wanted)}: our op has {len(got)}")
    return {i: got[i] for i in wanted if got[i] is not None}


def check(name, node, inputs, want) -> str | None:
    """None when our outputs match ONNX's, else what differs."""
    got = run_case(node, inputs)
    produced = [i for i, n in enumerate(node.output) if n]
    for w, i in zip(want, produced):
        if i not in got:
            continue  # an optional ONNX output that is not an output of our op (LayerNormalization's stats)
        g = np.asarray(got[i])
        if g.shape != w.shape:
            return f"{name}: output {i} shape {g.shape}, ONNX {w.shape}"
        try:
            np.testing.assert_allclose(g.astype(w.dtype), w, rtol=RTOL, atol=ATOL)
        except AssertionError as e:
            return f"{name}: output {i}: {e}"
    return None


@pytest.mark.parametrize("op", sorted(ADAPTERS))
def test_onnx_node_cases(op):
    """Each case of ``op`` matches ONNX, or is out of scope as listed (and the adapter agrees)."""
    assert cases()[op], f"onnx has no node cases of {op}"
    failures, ran = [], 0
    for name, node, inputs, want, _, _ in cases()[op]:
        try:
            problem = check(name, node, inputs, want)
        except Unsupported as e:
            if name not in OUT_OF_SCOPE:
                failures.append(f"{name}: refused ({e}) but not listed out of scope")
            continue
        if name in OUT_OF_SCOPE:
            failures.append(f"{name}: listed out of scope, but the adapter runs it")
        elif problem:
            failures.append(problem)
        ran += 1
    assert not failures, "\n".join(failures)
    assert ran or all(n in OUT_OF_SCOPE for n, *_ in cases()[op])


def test_out_of_scope_names_real_cases():
    names = {c[0] for op in ADAPTERS for c in cases()[op]}
    assert not OUT_OF_SCOPE.keys() - names, sorted(OUT_OF_SCOPE.keys() - names)


def test_gru_with_linear_before_reset():
    """Derived cases: ONNX's GRU cases with linear_before_reset=1 (torch's GRU), expected
    outputs from onnx.reference.ReferenceEvaluator, so our gru kernel is checked against ONNX too."""
    from onnx.reference import ReferenceEvaluator

    ran = 0
    for name, node, inputs, _, _, _ in cases()["GRU"]:
        lbr = replace(node, attrs={**node.attrs, "linear_before_reset": 1})
        feeds = [n for n in node.input if n]
        graph = helper.make_graph([lbr.proto()], name, [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                                                for n in feeds],
                                  [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                                   for n in node.output if n])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", node.opset)])
        want = ReferenceEvaluator(model).run(None, dict(zip(feeds, inputs)))
        assert check(f"{name}[linear_before_reset=1]", lbr, inputs, want) is None
        ran += 1
    assert ran == len(cases()["GRU"]) > 0


def test_conformance_doc_lists_every_case():
    """docs/conformance.md names each case with its status, and the counts add up."""
    text = DOC.read_text()
    rows = dict(re.findall(r"^\| `(test_\w+)` \| (covered|out of scope)", text, re.MULTILINE))
    for op in ADAPTERS:
        for name, *_ in cases()[op]:
            assert rows.get(name) == ("out of scope" if name in OUT_OF_SCOPE else "covered"), name
    total = sum(len(cases()[op]) for op in ADAPTERS)
    assert f"{total} cases: {total - len(OUT_OF_SCOPE)} covered, {len(OUT_OF_SCOPE)} out of scope" in text
