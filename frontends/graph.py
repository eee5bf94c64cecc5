"""An ONNX model as a small, constant-folded graph the recogniser can read.

``read(model)`` runs ONNX's shape inference, folds every node whose inputs are all known
constants (``Constant``, ``Shape`` of a static shape, arithmetic on sizes, a transposed
initializer) with ONNX's own reference evaluator, drops ``Identity`` and ``Dropout``, and keeps
the rest as :class:`ONode` values in the model's (topological) order::

    g = read(onnx.load("resnet18.onnx"))
    g.nodes[0].op, g.shape(g.nodes[0].outputs[0])      # ('Conv', (1, 64, 16, 16))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import refuse

# nodes that need no folding to be read, or that must stay nodes: weights go through them
_PASS_THROUGH = ("Identity", "Dropout")
_CONTROL_FLOW = ("Loop", "If", "Scan", "SequenceMap")
# a node computing on a weight of this many elements or more stays a node (a Gather of a
# position table is the layer, not a constant)
_FOLD_LIMIT = 4096


@dataclass
class ONode:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)

    def attr(self, key, default=None):
        return self.attrs.get(key, default)


@dataclass
class Value:
    name: str
    dtype: str  # "float" or "int"
    shape: tuple  # ints and str (named dims)


class OnnxGraph:
    """The nodes left after folding, the constants, the typed inputs and outputs."""

    def __init__(self, name: str, nodes: list[ONode], consts: dict, weights: set, shapes: dict,
                 inputs: list[Value], outputs: list[Value], count: int):
        self.name, self.nodes, self.consts, self.weights = name, nodes, consts, weights
        self.shapes, self.inputs, self.outputs, self.node_count = shapes, inputs, outputs, count
        self._users: dict[str, list[ONode]] = {}
        self._producer: dict[str, ONode] = {}
        for n in nodes:
            for v in n.inputs:
                self._users.setdefault(v, []).append(n)
            for v in n.outputs:
                self._producer[v] = n

    def users(self, value: str) -> list[ONode]:
        return self._users.get(value, [])

    def producer(self, value: str) -> ONode | None:
        return self._producer.get(value)

    def shape(self, value: str) -> tuple | None:
        if value in self.consts:
            return tuple(self.consts[value].shape)
        return self.shapes.get(value)

    def const(self, value: str):
        return self.consts.get(value)

    def is_output(self, value: str) -> bool:
        return any(o.name == value for o in self.outputs)


def _dims(type_proto) -> tuple | None:
    t = type_proto.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim)


def _dtype(type_proto) -> str:
    from onnx import TensorProto

    e = type_proto.tensor_type.elem_type
    if e in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16):
        return "float"
    if e in (TensorProto.INT64, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8, TensorProto.UINT8):
        return "int"
    return "bool" if e == TensorProto.BOOL else "other"


def read(model, dynamic: dict[str, list[str]] | None = None) -> OnnxGraph:
    """Fold and index ``model`` (an ``onnx.ModelProto``). ``dynamic`` maps an input name to
    names for its leading dims (``--dynamic N,T``)."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    count = len(model.graph.node)
    try:
        model = shape_inference.infer_shapes(model)
    except Exception as e:  # noqa: BLE001 -- onnx raises its own assorted errors
        refuse(f"ONNX shape inference failed: {e}")
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    weights = set(consts)
    shapes = {v.name: _dims(v.type) for v in [*g.value_info, *g.input, *g.output]}
    inputs = [Value(i.name, _dtype(i.type), _dims(i.type) or ()) for i in g.input if i.name not in consts]
    outputs = [Value(o.name, _dtype(o.type), _dims(o.type) or ()) for o in g.output]
    alias: dict[str, str] = {}
    nodes: list[ONode] = []
    for p in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in p.attribute}
        node = ONode(p.name or f"{p.op_type}_{len(nodes)}", p.op_type, [alias.get(v, v) for v in p.input],
                     list(p.output), attrs)
        if node.op in _CONTROL_FLOW:
            refuse(f"control flow is not expressible in a spec: ONNX {node.op} node `{node.name}`", node)
        if node.op in _PASS_THROUGH and node.inputs and node.inputs[0] not in consts:
            alias[node.outputs[0]] = node.inputs[0]
            continue
        if _foldable(node, consts, shapes):
            _fold(node, p, consts, weights, shapes, onnx)
            continue
        nodes.append(node)
    # an output that is an alias of another value: the graph output names the aliased value
    for o in outputs:
        o.name = alias.get(o.name, o.name)
    return OnnxGraph(g.name or "model", nodes, consts, weights, shapes, inputs, outputs, count)


def _foldable(node: ONode, consts: dict, shapes: dict) -> bool:
    if node.op == "Constant":
        return True
    if node.op == "Shape":
        s = shapes.get(node.inputs[0]) if node.inputs[0] not in consts else consts[node.inputs[0]].shape
        return s is not None and all(isinstance(d, int) and d > 0 for d in s)
    ins = [v for v in node.inputs if v]
    if not ins or not all(v in consts for v in ins):
        return False
    # a big weight read by index or sliced is a layer (embedding), not a constant to fold
    return node.op in ("Identity", "Transpose", "Cast", "Dropout") or all(
        consts[v].size < _FOLD_LIMIT for v in ins)


def _fold(node: ONode, proto, consts: dict, weights: set, shapes: dict, onnx) -> None:
    from onnx.reference import ReferenceEvaluator

    if node.op == "Shape":
        x = node.inputs[0]
        dims = consts[x].shape if x in consts else shapes[x]
        start, end = node.attr("start", 0), node.attr("end", None)
        consts[node.outputs[0]] = np.array(list(dims)[start:end], dtype=np.int64)
        return
    feeds = {v: consts[v] for v in node.inputs if v}
    renamed = onnx.helper.make_node(proto.op_type, [v for v in node.inputs], list(proto.output),
                                    domain=proto.domain or None)
    renamed.attribute.extend(proto.attribute)
    try:
        outs = ReferenceEvaluator(renamed).run(None, feeds)
    except Exception as e:  # noqa: BLE001 -- the reference evaluator raises assorted errors
        refuse(f"cannot evaluate the constant ONNX {node.op} node `{node.name}`: {e}", node)
    for name, value in zip(node.outputs, outs):
        consts[name] = np.asarray(value)
        if node.op in ("Identity", "Transpose", "Cast", "Dropout") and any(v in weights for v in node.inputs):
            weights.add(name)

