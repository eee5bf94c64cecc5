"""Graph IR to an ONNX model: one graph per model, built directly with ``onnx.helper``.

Each IR node goes through its lowering (``lowerings/``, the table in ``table.py``); the ONNX
nodes it makes are named after its scope (``layer1.0.conv_bn.conv2d``, then
``layer1.0.conv_bn.conv2d/Relu`` ...) and carry the ``.net`` file:line and source text in
``doc_string``. Inputs and outputs keep the spec's symbolic sizes as named dynamic dims
(``N``, ``T``); weights become initialisers named as the torch state_dict names them.
"""

from __future__ import annotations

import numpy as np
import onnx
from netc.backends.emit_kit import file_name
from netc.compiler.ir import Graph
from onnx import helper

from . import lowerings  # noqa: F401  (fills the table)
from .table import Builder
from .walk import lower_nodes, value_info

OPSET = 21  # Gelu (20), GroupNormalization with per-channel scale (21); ONNX Runtime 1.17+ runs it


def model_proto(graph: Graph, weights: dict[str, np.ndarray], spec: str) -> onnx.ModelProto:
    """The ONNX model of one model's IR with ``weights`` (netc names -> arrays)."""
    return lower_model(graph, weights, spec)[0]


def lower_model(graph: Graph, weights: dict[str, np.ndarray], spec: str) -> tuple[onnx.ModelProto, dict]:
    """The ONNX model, and the ONNX value name of each IR value ``(node id, port)`` (tests
    compare ONNX's inferred shapes with netc's)."""
    initializers: dict = {}
    b = Builder(weights, initializers, set())
    values, inputs = {}, []
    for n in graph.input_nodes():
        b.used.add(n.id)
        values[(n.id, 0)] = n.id
        b.types[n.id] = n.type
        inputs.append(value_info(n.id, n.type))
    b.inputs = [n.id for n in graph.input_nodes()]
    lower_nodes(b, graph, values)
    outputs = []
    many = len(graph.outputs) > 1
    for i, (rname, ref) in enumerate(graph.outputs):
        want = rname or (f"output{i}" if many else "output")
        out = b.fresh(want) if want in b.used else want
        b.used.add(out)
        b.current = None
        b.nodes.append(helper.make_node("Identity", [values[ref]], [out], name=b.fresh(f"{out}.identity")))
        outputs.append(value_info(out, graph.type_of(ref)))
    g = helper.make_graph(b.nodes, graph.name, inputs, outputs, list(initializers.values()),
                          doc_string=f"{graph.name} from {file_name(spec)}")
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(g, opset_imports=opsets, producer_name="netc",
                              ir_version=helper.find_min_ir_version_for(opsets))
    model.doc_string = f"netc: model {graph.name} of {file_name(spec)}"
    return model, values
