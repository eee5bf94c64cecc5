"""Rules for the ops of sequence and vision-transformer models: embeddings (and the tied
output projection), ``Reshape`` (a linear over [N, T, D] as ``Reshape``-``Gemm``-``Reshape``,
``flatten``, a reshape that changes nothing), ``Transpose``, ``Concat``, ``Gather`` of one
position (``x[:, 0]``), ``Expand`` that changes nothing, and GPT-2's tanh GELU written out."""

from __future__ import annotations

import math

import numpy as np

from .errors import refuse
from .graph import OnnxGraph, ONode
from .layers import Layer
from .reader import Reader, rule
from .rules_cnn import gemm


@rule("Gather")
def gather(r: Reader, n: ONode):
    data, idx = n.inputs
    table, index = r.g.const(data), r.g.const(idx)
    if table is not None and data in r.g.weights and table.ndim == 2:
        if index is None:
            return Layer("embedding", [idx], n.outputs[0], (int(table.shape[0]), int(table.shape[1])), {},
                         [np.asarray(table, np.float32)], origin=r.g.origin.get(data, data))
        seq = _positions_of(r, index)
        if seq is None:
            refuse(f"ONNX Gather node `{n.name}` reads fixed rows of a weight; netc reads rows by position "
                   "(`positions(x)`) or by token", n)
        pos = Layer("positions", [seq], n.outputs[0] + "#positions")
        emb = Layer("embedding", [pos.output], n.outputs[0], (int(table.shape[0]), int(table.shape[1])), {},
                    [np.asarray(table, np.float32)], origin=r.g.origin.get(data, data))
        return [pos, emb]
    if table is None and index is not None and index.ndim == 0:
        axis = n.attr("axis", 0)
        rank = len(r.g.shape(data) or ())
        axis = axis + rank if axis < 0 else axis
        items = [":"] * axis + [str(int(index))]
        return Layer("__index__", [data], n.outputs[0], (", ".join(items),))
    refuse(f"ONNX Gather node `{n.name}` has no netc equivalent (a gather by computed indices)", n)


def _positions_of(r: Reader, index: np.ndarray) -> str | None:
    """An int input [N, T] or [T] whose positions 0..T-1 ``index`` is, if any."""
    flat = index.reshape(-1, index.shape[-1]) if index.ndim else None
    if flat is None or not all(np.array_equal(row, np.arange(index.shape[-1])) for row in flat):
        return None
    for i in r.g.inputs:
        if i.dtype == "int" and len(i.shape) == 2 and i.shape[-1] == index.shape[-1]:
            return i.name
    return None


@rule("Reshape")
def reshape(r: Reader, n: ONode):
    x, target = n.inputs[0], r.g.const(n.inputs[1])
    if target is None:
        refuse(f"dynamic reshape: ONNX Reshape node `{n.name}` takes its shape from a value computed at run "
               "time; a spec's shapes are static or symbolic", n)
    src, dst = r.g.shape(x), r.g.shape(n.outputs[0])
    if src is None or dst is None:
        refuse(f"ONNX Reshape node `{n.name}`: its shapes are unknown after shape inference", n)
    if tuple(src) == tuple(dst):
        r.alias[n.outputs[0]] = x
        return None
    gm = r.only_user(n.outputs[0], "Gemm")
    if gm is not None and len(dst) == 2 and tuple(dst) == (int(np.prod(src[:-1])), src[-1]):
        back = r.only_user(gm.outputs[0], "Reshape")
        out_shape = r.g.shape(back.outputs[0]) if back is not None else None
        if out_shape is not None and tuple(out_shape[:-1]) == tuple(src[:-1]):
            lay = gemm(r, gm)
            r.take(gm)
            r.take(back)
            lay.inputs, lay.output, lay.source = [x], back.outputs[0], gm.name
            return lay
    k = len(dst) - 1
    if len(src) > len(dst) and tuple(src[:k]) == tuple(dst[:k]) and dst[k] == int(np.prod(src[k:])):
        return Layer("flatten", [x], n.outputs[0], () if k == 1 else (k,))
    return Layer("reshape", [x], n.outputs[0], tuple(int(d) for d in dst))


@rule("Transpose")
def transpose(r: Reader, n: ONode):
    perm = list(n.attr("perm"))
    moved = [i for i, p in enumerate(perm) if p != i]
    if not moved:
        r.alias[n.outputs[0]] = n.inputs[0]
        return None
    if len(moved) == 2 and perm[moved[0]] == moved[1]:
        return Layer("transpose", [n.inputs[0]], n.outputs[0], tuple(moved))
    return Layer("permute", [n.inputs[0]], n.outputs[0], tuple(perm))


@rule("Expand")
def expand(r: Reader, n: ONode):
    if tuple(r.g.shape(n.inputs[0]) or ()) == tuple(r.g.shape(n.outputs[0]) or (None,)):
        r.alias[n.outputs[0]] = n.inputs[0]
        return
    refuse(f"ONNX Expand node `{n.name}` broadcasts to a new shape; netc's import does not write it yet", n)


@rule("Concat")
def concat(r: Reader, n: ONode):
    return Layer("concat", list(n.inputs), n.outputs[0], (), {"dim": int(n.attr("axis"))})


def tied(layers: list[Layer], g: OnnxGraph) -> None:
    """A linear whose weight is an embedding's table (GPT-2's output projection) becomes
    ``unembed`` of that embedding, which becomes a shared layer (``let``)."""
    tables = {lay.origin: lay for lay in layers if lay.op == "embedding" and getattr(lay, "origin", None)}
    for lay in layers:
        src = getattr(lay, "origin", None)
        if lay.op == "linear" and src in tables and lay.kwargs.get("bias") is False:
            emb = tables[src]
            emb.shared = emb.shared if getattr(emb, "shared", None) else _short(src)
            lay.op, lay.args, lay.kwargs, lay.weights = "unembed", (), {}, []
            lay.shared_ref = emb.shared


def _short(name: str) -> str:
    from .write import ident

    parts = [p for p in name.replace("/", ".").split(".") if p and p not in ("weight", "bias")]
    return ident(parts[-1] if parts else name, "table")


def gelu_tanh(g: OnnxGraph) -> dict[int, Layer]:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³))) -> gelu(approximate="tanh")."""
    out = {}
    for t in [n for n in g.nodes if n.op == "Tanh"]:
        try:
            lay, nodes, anchor = _gelu_at(g, t)
        except LookupError:
            continue
        lay.taken = {id(m) for m in nodes}
        out[id(anchor)] = lay
    return out


def _gelu_at(g: OnnxGraph, t: ONode):
    def prod(v, op):
        p = g.producer(v)
        if p is None or p.op != op:
            raise LookupError
        return p

    def split(n: ONode, value: float | None):
        a, b = n.inputs
        for c, other in ((b, a), (a, b)):
            k = g.const(c)
            if k is not None and k.size == 1 and (value is None or math.isclose(float(k), value, rel_tol=1e-5)):
                return other
        raise LookupError

    m2 = prod(t.inputs[0], "Mul")
    a = prod(split(m2, math.sqrt(2 / math.pi)), "Add")
    x, m1 = a.inputs
    if g.producer(m1) is None or g.producer(m1).op != "Mul":
        x, m1 = m1, x
    m1n = prod(m1, "Mul")
    pw = prod(split(m1n, 0.044715), "Pow")
    if pw.inputs[0] != x or not math.isclose(float(g.const(pw.inputs[1])), 3.0):
        raise LookupError
    users = g.users(t.outputs[0])
    if len(users) != 1 or users[0].op != "Add":
        raise LookupError
    one = users[0]
    if split(one, 1.0) != t.outputs[0]:
        raise LookupError
    last = g.users(one.outputs[0])
    if len(last) != 1 or last[0].op != "Mul":
        raise LookupError
    fin = last[0]
    half = g.producer(next(v for v in fin.inputs if v != one.outputs[0]))
    if half is None or half.op != "Mul" or split(half, 0.5) != x:
        raise LookupError
    nodes = [pw, m1n, a, m2, t, one, half, fin]
    inside = {id(n) for n in nodes}
    for n in nodes[:-1]:
        if g.is_output(n.outputs[0]) or any(id(u) not in inside for u in g.users(n.outputs[0])):
            raise LookupError
    return Layer("gelu", [x], fin.outputs[0], (), {"approximate": "tanh"}, source=fin.name), nodes, fin


@rule("Cast")
def cast(r: Reader, n: ONode):
    if n.attr("to") == 1 and r.g.dtype(n.inputs[0]) == "float":  # float32 to float32: nothing
        r.alias[n.outputs[0]] = n.inputs[0]
        return
    refuse(f"ONNX Cast node `{n.name}` changes the dtype (to {n.attr('to')}); a spec's dtypes are fixed", n)
