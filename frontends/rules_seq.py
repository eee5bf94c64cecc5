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
    rank = len(r.g.shape(n.inputs[0]) or ())
    perm = list(n.attr("perm", list(range(rank))[::-1]))
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
        except (LookupError, ValueError, TypeError):  # (float() of a tensor constant, ...): no match
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


def layernorm_math(g: OnnxGraph) -> dict[int, Layer]:
    """(x - mean(x)) / sqrt(mean((x - mean(x))²) + eps) * γ + β over the last dim, as exporters
    before opset 17 write layer norm -> layernorm (γ, β: weights)."""
    out = {}
    for div in [n for n in g.nodes if n.op == "Div"]:
        try:
            lay, nodes, anchor = _layernorm_at(g, div)
        except (LookupError, ValueError, TypeError, ZeroDivisionError):  # an odd graph: no match
            continue
        lay.taken = {id(m) for m in nodes}
        out[id(anchor)] = lay
    return out


def _last_axis_mean(g: OnnxGraph, n: ONode | None) -> str:
    if n is None or n.op != "ReduceMean" or not n.attr("keepdims", 1):
        raise LookupError
    axes = n.attr("axes")
    if axes is None and len(n.inputs) > 1:
        axes = g.const(n.inputs[1])
    rank = len(g.shape(n.inputs[0]) or ())
    if axes is None or [int(a) % rank for a in np.ravel(axes)] != [rank - 1]:
        raise LookupError
    return n.inputs[0]


def _layernorm_at(g: OnnxGraph, div: ONode):
    sub, sq = g.producer(div.inputs[0]), g.producer(div.inputs[1])
    if sub is None or sub.op != "Sub" or sq is None or sq.op != "Sqrt":
        raise LookupError
    m1 = g.producer(sub.inputs[1])
    x = _last_axis_mean(g, m1)
    if sub.inputs[0] != x:
        raise LookupError
    add_eps = g.producer(sq.inputs[0])
    if add_eps is None or add_eps.op != "Add":
        raise LookupError
    var, eps = (add_eps.inputs if g.const(add_eps.inputs[1]) is not None else add_eps.inputs[::-1])
    if g.const(eps) is None or g.const(eps).size != 1:
        raise LookupError
    m2 = g.producer(var)
    sqd = g.producer(_last_axis_mean(g, m2))
    if sqd is None or not ((sqd.op == "Pow" and g.const(sqd.inputs[1]) is not None
                            and float(g.const(sqd.inputs[1])) == 2.0 and sqd.inputs[0] == sub.outputs[0])
                           or (sqd.op == "Mul" and sqd.inputs == [sub.outputs[0]] * 2)):
        raise LookupError
    nodes, last, ws = [m1, sub, sqd, m2, add_eps, sq, div], div, []
    for op in ("Mul", "Add"):  # the affine part, when there is one
        users = g.users(last.outputs[0])
        if len(users) != 1 or users[0].op != op or g.is_output(last.outputs[0]):
            break
        other = next(v for v in users[0].inputs if v != last.outputs[0])
        if other not in g.weights or g.const(other).shape != (g.shape(x)[-1],):
            break
        ws.append(np.asarray(g.const(other), np.float32))
        last = users[0]
        nodes.append(last)
    if len(ws) == 1:
        ws.append(np.zeros_like(ws[0]))
    inside = {id(n) for n in nodes}
    for n in nodes[:-1]:
        if g.is_output(n.outputs[0]) or any(id(u) not in inside for u in g.users(n.outputs[0])):
            raise LookupError
    from .rules_cnn import _float

    e = _float(float(g.const(eps)))
    kw = {} if abs(e - 1e-5) < 1e-12 else {"eps": e}
    if not ws:
        kw["affine"] = False
    return Layer("layernorm", [x], last.outputs[0], (), kw, ws, source=last.name), nodes, last


def gelu_erf(g: OnnxGraph) -> dict[int, Layer]:
    """x · ½ · (1 + erf(x / √2)), in any order of the two products -> gelu."""
    out = {}
    for erf in [n for n in g.nodes if n.op == "Erf"]:
        try:
            lay, nodes, anchor = _gelu_erf_at(g, erf)
        except (LookupError, StopIteration, ValueError, TypeError):  # an odd graph: no match
            continue
        lay.taken = {id(m) for m in nodes}
        out[id(anchor)] = lay
    return out


def _scaled(g: OnnxGraph, n: ONode | None, op: str, value: float) -> str:
    """The tensor operand of ``n`` = op(tensor, constant ≈ value)."""
    if n is None or n.op != op:
        raise LookupError
    for c, other in ((n.inputs[1], n.inputs[0]), (n.inputs[0], n.inputs[1])):
        k = g.const(c)
        if k is not None and k.size == 1 and math.isclose(float(k.reshape(())), value, rel_tol=1e-5):
            return other
    raise LookupError


def _gelu_erf_at(g: OnnxGraph, erf: ONode):
    scale = g.producer(erf.inputs[0])
    try:
        x = _scaled(g, scale, "Div", math.sqrt(2))
    except LookupError:
        x = _scaled(g, scale, "Mul", 1 / math.sqrt(2))
    one = next(u for u in g.users(erf.outputs[0]))
    if _scaled(g, one, "Add", 1.0) != erf.outputs[0]:
        raise LookupError
    m1 = g.users(one.outputs[0])
    if len(m1) != 1 or m1[0].op != "Mul":
        raise LookupError
    m1 = m1[0]
    other = next(v for v in m1.inputs if v != one.outputs[0])
    if other == x:  # (x · (1 + erf)) · ½
        fin = g.users(m1.outputs[0])
        if len(fin) != 1 or _scaled(g, fin[0], "Mul", 0.5) != m1.outputs[0]:
            raise LookupError
        nodes, last = [scale, erf, one, m1, fin[0]], fin[0]
    else:  # (x · ½) · (1 + erf)
        half = g.producer(other)
        if _scaled(g, half, "Mul", 0.5) != x:
            raise LookupError
        nodes, last = [scale, erf, one, half, m1], m1
    inside = {id(n) for n in nodes}
    for n in nodes:
        if n is not last and (g.is_output(n.outputs[0]) or any(id(u) not in inside for u in g.users(n.outputs[0]))):
            raise LookupError
    return Layer("gelu", [x], last.outputs[0], source=last.name), nodes, last


@rule("Shape")
def shape(r: Reader, n: ONode):
    refuse(f"ONNX Shape node `{n.name}` reads a size known only at run time (a dim the model leaves "
           "dynamic); netc's import computes with the exported sizes: export with fixed sizes and name the "
           "dims with --dynamic (e.g. --dynamic N,T)", n)
