"""Walking an IR graph into ONNX nodes: each node through its lowering (the table in
``table.py``), errors turned into netc diagnostics at the node's span. ``emit.py`` builds the
model around it; ``scan``'s lowering calls :func:`lower_cell` for its body."""

from __future__ import annotations

import onnx
from netc.backends.emit_kit import file_name
from netc.compiler.ir import Graph
from netc.compiler.source import Diagnostic, SpecError
from onnx import helper

from .table import LOWERINGS, ONNX_DTYPES, UNSUPPORTED, Builder, LoweringError


def value_info(name: str, t) -> onnx.ValueInfoProto:
    dims = [d if isinstance(d, int) else str(d) for d in t.shape]
    return helper.make_tensor_value_info(name, ONNX_DTYPES[t.dtype], dims)


def doc_of(node) -> str:
    """``lenet.net:5: -> conv2d(32, 3, padding=1) -> relu`` (the node's source line)."""
    s = node.span
    if s is None:
        return ""
    text = s.source.line(s.line).strip() if s.source else ""
    return f"{file_name(s.path)}:{s.line}: {text}"


def lower_nodes(b: Builder, graph: Graph, values: dict) -> None:
    """Lower every non-input node of ``graph``; ``values`` maps (node id, port) to ONNX value
    names and starts with the inputs'."""
    for node in graph.nodes():
        if node.op == "input":
            continue
        xs = [values[r] for r in node.inputs]
        b.start(node.id, doc_of(node))
        try:
            fn = LOWERINGS.get(node.op)
            if fn is None:
                reason = UNSUPPORTED.get(node.op, "the ONNX backend has no lowering for it yet")
                raise LoweringError(f"`{node.op}` cannot be exported to ONNX: {reason}")
            outs = fn(b, node, xs, node.attrs)
        except LoweringError as e:
            raise SpecError([Diagnostic(str(e) if str(e).startswith("`") else f"{node.op}: {e}", node.span,
                                        hint="export with --backend torch or numpy, or write the layer "
                                             "with ops that ONNX has (docs/interop.md)")]) from None
        for i, (out, t) in enumerate(zip(outs, node.types)):
            values[(node.id, i)] = out
            b.types.setdefault(out, t)


def lower_cell(b: Builder, graph: Graph, prefix: str, name: str, fixed: list[str]) -> onnx.GraphProto:
    """The body of an ONNX ``Scan`` for a cell graph: inputs the states, then x_t; outputs the
    new states, then the first state again (the scanned output). The cell's fixed inputs
    (``memory=enc``) are the outer graph's values ``fixed``, read from the body by name (ONNX
    subgraphs see the enclosing graph's values). Weights are the model's, under ``prefix``
    (the scan layer's scope)."""
    inner = Builder(b.weights, b.initializers, b.used, b.prefix + prefix)
    inner.node_names = b.node_names
    nodes = graph.input_nodes()
    step, outer, states = nodes[0], nodes[1:1 + len(fixed)], nodes[1 + len(fixed):]
    values, inputs = {}, []
    for n, v in zip(outer, fixed):
        values[(n.id, 0)] = v
        inner.types[v] = n.type
    for n in states + [step]:
        v = inner.fresh(f"{name}.{n.id}")
        values[(n.id, 0)] = v
        inner.types[v] = n.type
        inputs.append(value_info(v, n.type))
    inner.inputs = [values[(n.id, 0)] for n in nodes]
    lower_nodes(inner, graph, values)
    infos = []
    refs = [r for _, r in graph.outputs]
    for i, r in enumerate(refs + refs[:1]):
        v = inner.fresh(f"{name}.out{i}")
        inner.nodes.append(helper.make_node("Identity", [values[r]], [v], name=v))
        infos.append(value_info(v, graph.type_of(r)))
    return helper.make_graph(inner.nodes, name, inputs, infos)
