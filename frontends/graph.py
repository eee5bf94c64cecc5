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
# folded even on weights: the result is the weight, seen another way (``origin`` says which)
_ALIASING = ("Identity", "Transpose", "Cast", "Dropout")


@dataclass
class ONode:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    proto: object = None  # the onnx.NodeProto (inputs renamed past dropped nodes)

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

    def dtype(self, value: str) -> str | None:
        if value in self.consts:
            return "float" if self.consts[value].dtype.kind == "f" else "int"
        return self.dtypes.get(value)

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


def read(model) -> OnnxGraph:
    """Fold and index ``model`` (an ``onnx.ModelProto``): shape inference and folding take
    turns until nothing more folds (a folded size lets inference type the next node)."""
    import onnx
    from onnx import numpy_helper

    try:  # a model ONNX itself rejects (a dangling input, a missing attribute) goes no further
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 -- ValidationError and friends
        refuse(f"not a valid ONNX model: {str(e).strip().splitlines()[0]}")
    count = len(model.graph.node)
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights, origin = set(consts), {}
    protos, alias = list(model.graph.node), {}
    for _ in range(6):
        g = _infer(model, protos, consts)
        shapes = {v.name: _dims(v.type) for v in [*g.value_info, *g.input, *g.output]}
        dtypes = {v.name: _dtype(v.type) for v in [*g.value_info, *g.input, *g.output]}
        kept = _fold_pass(protos, consts, weights, origin, alias, shapes)
        if len(kept) == len(protos):
            break
        protos = kept
    inputs = [Value(i.name, _dtype(i.type), _dims(i.type) or ()) for i in g.input if i.name not in consts]
    outputs = [Value(alias.get(o.name, o.name), _dtype(o.type), _dims(o.type) or ()) for o in g.output]
    nodes = [_node(p, i) for i, p in enumerate(protos)]
    out = OnnxGraph(model.graph.name or "model", nodes, consts, weights, shapes, inputs, outputs, count)
    out.origin, out.dtypes = origin, dtypes
    out.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    return out


def _infer(model, protos, consts):
    """ONNX shape inference over the nodes left, the folded values given as initializers."""
    from onnx import helper, numpy_helper, shape_inference

    used = {v for p in protos for v in p.input}
    # big constants (weights) go in by type alone: inference needs their shapes, not their data
    small = {k: a for k, a in consts.items() if k in used and np.asarray(a).size <= 4096}
    inits = [numpy_helper.from_array(np.asarray(a), k) for k, a in small.items()]
    typed = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype), a.shape)
             for k, a in consts.items() if k in used and k not in small]
    graph = helper.make_graph(protos, model.graph.name or "model",
                              [i for i in model.graph.input if i.name not in consts] + typed,
                              list(model.graph.output), inits)
    m = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    try:
        return shape_inference.infer_shapes(m).graph
    except Exception as e:  # noqa: BLE001 -- onnx raises its own assorted errors
        refuse(f"ONNX shape inference failed: {e}")


def _node(p, i: int) -> ONode:
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in p.attribute}
    return ONode(p.name or f"{p.op_type}_{i}", p.op_type, list(p.input), list(p.output), attrs, p)


def _fold_pass(protos, consts, weights, origin, alias, shapes) -> list:
    """The nodes that stay; folds the rest into ``consts`` and drops pass-through nodes."""
    kept = []
    for i, p in enumerate(protos):
        if any(v in alias for v in p.input):
            ins = [alias.get(v, v) for v in p.input]
            del p.input[:]
            p.input.extend(ins)
        node = _node(p, i)
        if node.op in _CONTROL_FLOW:
            refuse(f"control flow is not expressible in a spec: ONNX {node.op} node `{node.name}`", node)
        if node.op in _PASS_THROUGH and node.inputs and node.inputs[0] not in consts:
            alias[node.outputs[0]] = node.inputs[0]
            continue
        if _foldable(node, consts, weights, shapes):
            _fold(node, p, consts, weights, shapes, origin)
            continue
        kept.append(p)
    return kept


def _foldable(node: ONode, consts: dict, weights: set, shapes: dict) -> bool:
    if node.op == "Constant":
        return True
    if node.op == "Shape":
        s = shapes.get(node.inputs[0]) if node.inputs[0] not in consts else consts[node.inputs[0]].shape
        return s is not None and all(isinstance(d, int) and d > 0 for d in s)
    ins = [v for v in node.inputs if v]
    if not ins or not all(v in consts for v in ins):
        return False
    # a weight read by index or sliced is a layer (embedding), not a constant to fold
    return node.op in _ALIASING or not any(v in weights and consts[v].size > 1 for v in ins)


def _fold(node: ONode, proto, consts: dict, weights: set, shapes: dict, origin: dict) -> None:
    import onnx
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
        if node.op in _ALIASING and node.inputs[0] in weights:
            weights.add(name)
            origin[name] = origin.get(node.inputs[0], node.inputs[0])

