"""ONNX nodes -> netc layers, in order: the attention and GELU patterns first (their nodes are
taken whole), then one rule per remaining node (``rules_cnn``, ``rules_seq``). A node with no
rule is refused, naming its op and node: never an approximation."""

from __future__ import annotations

from . import attention, rules_cnn, rules_seq  # noqa: F401  (rules_cnn registers its rules)
from .errors import ImportRefused, refuse
from .graph import OnnxGraph
from .layers import Layer
from .reader import RULES, Reader


def recognise(g: OnnxGraph) -> list[Layer]:
    r = Reader(g)
    patterns = {**attention.find(r.g), **rules_seq.gelu_tanh(r.g), **rules_seq.layernorm_math(r.g),
                **rules_seq.gelu_erf(r.g)}
    for lay in patterns.values():
        r.taken |= lay.taken
    out: list[Layer] = []
    params: dict[str, Layer] = {}
    for node in r.g.nodes:
        if id(node) in patterns:
            made = [patterns[id(node)]]
        elif id(node) in r.taken:
            continue
        else:
            fn = RULES.get(node.op)
            if fn is None:
                refuse(f"ONNX op {node.op} (node `{node.name}`) has no netc equivalent", node)
            try:
                made = fn(r, node)
            except ImportRefused:
                raise
            except (LookupError, ValueError, TypeError, AttributeError) as e:  # a node the rule cannot read
                refuse(f"cannot read ONNX {node.op} node `{node.name}`: {type(e).__name__}: {e}", node)
            made = [] if made is None else made if isinstance(made, list) else [made]
        for layer in made:
            layer.inputs = [r.value(v) for v in layer.inputs]
            layer.source = layer.source or node.name
            for v in layer.inputs:
                if v in r.g.weights and v not in params and r.g.const(v).size > 1:
                    params[v] = r.param(v)
                    out.append(params[v])
            out.append(layer)
    rules_seq.tied(out, r.g)
    return out
