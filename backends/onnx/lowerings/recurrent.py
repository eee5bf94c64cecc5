"""Recurrent layers as ONNX ``RNN`` / ``LSTM`` / ``GRU``, one node per layer, time-major:
torch's gate blocks are reordered at export (LSTM i f g o -> ONNX i o f c, GRU r z n -> z r h
with ``linear_before_reset=1``), both directions stacked, and ``W_ih``/``W_hh`` biases joined.
``scan`` becomes an ONNX ``Scan`` whose body is the cell's own graph, lowered by the same
emitter (it reads the weights from the model's initialisers)."""

from __future__ import annotations

import numpy as np

from ..table import lowering

ONNX_OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
GATES = {"rnn": [0], "lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}


def _gates(w: np.ndarray, order: list[int]) -> np.ndarray:
    return np.concatenate([np.split(w, len(order))[i] for i in order])


def _stacked(b, node, prefix: str, layer: int, dirs: int) -> list[str]:
    """W, R, B initialisers of one layer in ONNX's layout, both directions stacked."""
    order, out = GATES[node.op], {"W": [], "R": [], "B": []}
    for d in range(dirs):
        sfx = f"l{layer}" + ("_reverse" if d else "")
        w = {k: np.asarray(b.weights[f"{prefix}.{k}_{sfx}"]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        out["W"].append(_gates(w["weight_ih"], order))
        out["R"].append(_gates(w["weight_hh"], order))
        out["B"].append(np.concatenate([_gates(w["bias_ih"], order), _gates(w["bias_hh"], order)]))
    return [b.derived(f"{prefix}.onnx_{k}_l{layer}", np.stack(v)) for k, v in out.items()]


@lowering("rnn", "lstm", "gru")
def recurrent(b, node, xs, a):
    dirs, states = (2 if a.bidirectional else 1), len(node.types) - 1
    prefix = b.prefix + (node.layer or node.id)
    attrs = {"hidden_size": a.hidden, "direction": "bidirectional" if a.bidirectional else "forward"}
    if node.op == "gru":
        attrs["linear_before_reset"] = 1
    if node.op == "rnn":
        attrs["activations"] = ["Tanh" if a.nonlinearity == "tanh" else "Relu"] * dirs
    x = b.add("Transpose", [xs[0]], perm=[1, 0, 2])  # [T, N, I]
    finals: list[list[str]] = [[] for _ in range(states)]
    for layer in range(a.layers):
        inits = [b.add("Slice", [s, b.ints([layer * dirs]), b.ints([(layer + 1) * dirs]), b.ints([0])])
                 for s in xs[1:]]
        ins = [x, *_stacked(b, node, prefix, layer, dirs), "", *inits]
        y, *hs = b.add(ONNX_OP[node.op], ins, outputs=1 + states, **attrs)  # y: [T, dirs, N, H]
        x = b.add("Reshape", [b.add("Transpose", [y], perm=[0, 2, 1, 3]), b.ints([0, 0, -1], "merged")])
        for acc, h in zip(finals, hs):
            acc.append(h)
    seq = b.add("Transpose", [x], perm=[1, 0, 2])
    return [seq] + [acc[0] if len(acc) == 1 else b.add("Concat", acc, axis=0) for acc in finals]


@lowering("scan")
def scan(b, node, xs, a):
    from ..walk import lower_cell

    body = a.cell
    fixed = xs[1:1 + len(body.fixed)]
    if body.init:
        inits = xs[len(xs) - body.states:]
    else:
        n = b.dim(xs[0], 0)
        zeros = b.add("ConstantOfShape", [b.add("Concat", [n, b.ints([a.hidden], "hidden")], axis=0)],
                      value=_zero())
        inits = [zeros] * body.states
    prefix = (node.layer or node.id) + "."
    graph = lower_cell(b, body.graph, prefix, f"{node.id}.body", fixed)
    outs = b.add("Scan", [*inits, xs[0]], outputs=body.states + 1, body=graph,
                 num_scan_inputs=1, scan_input_axes=[1], scan_output_axes=[1])
    return [outs[-1]]


def _zero():
    from onnx import numpy_helper

    return numpy_helper.from_array(np.zeros(1, np.float32))
