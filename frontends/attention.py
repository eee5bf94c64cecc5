"""The attention pattern -> ``self_attention(heads, causal=…)``.

Exporters write multi-head attention as dozens of nodes, laid out differently by each
(Hugging Face's GPT-2: one packed projection, ``Split``, ``Reshape``/``Transpose`` per head;
torch's ``nn.MultiheadAttention``: sequence-first ``Transpose``, ``Unsqueeze``, ``Gather``).
What they share is the dataflow, which is what is matched:

    x ─(shape ops)─ projection(s) ─(shape ops, split, × scale)─ q, k, v
    softmax(q @ k (+ causal mask)) ─(NaN guard)─ @ v ─(shape ops)─ projection ─(shape ops)─ y

where "shape ops" only move elements (Reshape, Transpose, Squeeze, Unsqueeze, Split, Slice,
Gather of a constant index). The region must be closed (nothing outside reads a value inside
it but y), its mask either absent or exactly causal. Then the region itself is run by ONNX's
reference evaluator on a random x and compared with netc's own ``self_attention`` kernel on
the extracted weights: only a region that computes the same numbers becomes the op.
"""

from __future__ import annotations

import numpy as np

from .graph import OnnxGraph, ONode
from .layers import Layer

SHAPE_OPS = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Split", "Slice", "Gather")


class _NoMatch(Exception):
    pass


def find(g: OnnxGraph) -> dict[int, Layer]:
    """Each attention region found: id(anchor node) -> the layer; the region's other nodes
    are listed on the layer (``.taken``)."""
    out = {}
    for s in [n for n in g.nodes if n.op == "Softmax"]:
        try:
            layer, region, anchor = _match(g, s)
        except (_NoMatch, LookupError, ValueError, TypeError, AttributeError):  # an odd graph: no match
            continue
        layer.taken = {id(n) for n in region}
        out[id(anchor)] = layer
    return out


def _one_producer(g: OnnxGraph, v: str) -> ONode:
    p = g.producer(v)
    if p is None:
        raise _NoMatch
    return p


def _scalar(g: OnnxGraph, n: ONode) -> str | None:
    """The tensor input of a Mul/Div by a one-element constant, else None."""
    if n.op not in ("Mul", "Div") or len(n.inputs) != 2:
        return None
    a, b = n.inputs
    cb = g.const(b)
    if cb is not None and cb.size == 1 and g.const(a) is None:
        return a
    ca = g.const(a)
    if n.op == "Mul" and ca is not None and ca.size == 1 and g.const(b) is None:
        return b
    return None


def _shape_input(g: OnnxGraph, n: ONode) -> str | None:
    if n.op not in SHAPE_OPS or not n.inputs or g.const(n.inputs[0]) is not None:
        return None
    if n.op == "Gather" and (g.const(n.inputs[1]) is None):
        return None
    if any(g.const(v) is None for v in n.inputs[1:] if v):
        return None
    return n.inputs[0]


def _back(g: OnnxGraph, v: str, region: list) -> tuple[str, ONode]:
    """Walk up from ``v`` through shape ops and scalings; return (value, its producer) at the
    first node that is neither."""
    while True:
        p = _one_producer(g, v)
        nxt = _shape_input(g, p) or _scalar(g, p)
        if nxt is None:
            return v, p
        region.append(p)
        v = nxt


def _projection(g: OnnxGraph, v: str, p: ONode, region: list):
    """(input value, torch-layout weight, bias or None) of a linear map ending at ``v``."""
    if p.op == "Gemm" and g.const(p.inputs[1]) is not None and not p.attr("transA", 0) \
            and p.attr("alpha", 1.0) == 1.0 and p.attr("beta", 1.0) == 1.0:
        w = g.const(p.inputs[1])
        w = w if p.attr("transB", 0) else w.T
        b = g.const(p.inputs[2]) if len(p.inputs) > 2 and p.inputs[2] else None
        region.append(p)
        return p.inputs[0], w, b
    bias = None
    if p.op == "Add":
        a, c = p.inputs
        if g.const(a) is not None:
            a, c = c, a
        bias = g.const(c)
        if bias is None:
            raise _NoMatch
        region.append(p)
        p = _one_producer(g, a)
    if p.op == "MatMul" and g.const(p.inputs[1]) is not None and g.const(p.inputs[1]).ndim == 2:
        region.append(p)
        return p.inputs[0], g.const(p.inputs[1]).T, bias
    raise _NoMatch


def _source(g: OnnxGraph, v: str, region: list) -> tuple[str, ONode, tuple]:
    """From q, k or v back to the projection and the region's input x."""
    v, p = _back(g, v, region)
    before = len(region)
    u, w, b = _projection(g, v, p, region)
    x, _ = _back(g, u, region)
    return x, region[before], (w, b)


def _match(g: OnnxGraph, s: ONode):
    region: list[ONode] = [s]
    v = s.inputs[0]
    causal = False
    while True:  # softmax's input: scores (+ mask) (* scale)
        p = _one_producer(g, v)
        if p.op == "Add" and any(g.const(i) is not None for i in p.inputs):
            m = next(g.const(i) for i in p.inputs if g.const(i) is not None)
            if not _is_causal(m):
                raise _NoMatch
            causal = True
            region.append(p)
            v = next(i for i in p.inputs if g.const(i) is None)
        elif _scalar(g, p) is not None:
            region.append(p)
            v = _scalar(g, p)
        elif p.op == "MatMul" and all(g.const(i) is None for i in p.inputs):
            region.append(p)
            scores = p
            break
        else:
            raise _NoMatch
    probs = s.outputs[0]
    users = g.users(probs)
    if len(users) == 2 and {u.op for u in users} == {"IsNaN", "Where"}:  # NaN guard of fully masked rows
        isnan = next(u for u in users if u.op == "IsNaN")
        where = next(u for u in users if u.op == "Where")
        if where.inputs[0] != isnan.outputs[0] or where.inputs[2] != probs:
            raise _NoMatch
        region += [isnan, where]
        probs = where.outputs[0]
        users = g.users(probs)
    if len(users) != 1 or users[0].op != "MatMul" or users[0].inputs[0] != probs:
        raise _NoMatch
    pv = users[0]
    region.append(pv)
    xq, pq, wq = _source(g, scores.inputs[0], region)
    xk, pk, wk = _source(g, scores.inputs[1], region)
    xv, pv_, wv = _source(g, pv.inputs[1], region)
    if not xq == xk == xv:
        raise _NoMatch
    x = xq
    # forward from the weighted values to the output projection and back to x's shape
    y, region = _forward(g, pv.outputs[0], g.shape(x), region)
    packed = pq is pk is pv_
    if packed:
        w, b = wq
        weights = [w, b if b is not None else np.zeros(w.shape[0], np.float32)]
    elif len({id(pq), id(pk), id(pv_)}) == 3:
        zeros = [np.zeros(p[0].shape[0], np.float32) for p in (wq, wk, wv)]
        weights = [np.concatenate([wq[0], wk[0], wv[0]]),
                   np.concatenate([p[1] if p[1] is not None else z for p, z in zip((wq, wk, wv), zeros)])]
    else:
        raise _NoMatch
    ow, ob = region.out_proj
    weights += [ow, ob if ob is not None else np.zeros(ow.shape[0], np.float32)]
    weights = [np.ascontiguousarray(a, np.float32) for a in weights]
    shape = g.shape(s.outputs[0])
    xs = g.shape(x)
    if not (xs and len(xs) == 3 and all(isinstance(d, int) for d in xs)) or not all(isinstance(d, int) for d in shape):
        raise _NoMatch
    heads = shape[1] if len(shape) == 4 else shape[0] // xs[0]
    nodes = list(region)
    _closed(g, nodes, y)
    _verify(g, nodes, x, y, xs, weights, heads, causal)
    kw = {"causal": True} if causal else {}
    anchor = g.producer(y)
    return Layer("self_attention", [x], y, (heads,), kw, weights, source=anchor.name), nodes, anchor


class _Region(list):
    out_proj = None


def _forward(g: OnnxGraph, v: str, x_shape, region: list):
    region = _Region(region)
    found = None
    while True:
        users = g.users(v)
        if len(users) != 1 or g.is_output(v):
            break
        u = users[0]
        if _shape_input(g, u) == v and len(u.outputs) == 1:
            region.append(u)
            v = u.outputs[0]
            continue
        if found is None and u.op in ("Gemm", "MatMul"):
            out = u.outputs[0]
            if u.op == "MatMul":
                nxt = g.users(out)
                if len(nxt) == 1 and nxt[0].op == "Add" and not g.is_output(out):
                    out = nxt[0].outputs[0]
            try:
                _, w, b = _projection(g, out, g.producer(out), region)
            except _NoMatch:
                break
            found = (w, b)
            v = out
            continue
        break
    if found is None:
        raise _NoMatch
    # y: the last value on the way with x's shape
    region.out_proj = found
    y = v
    while tuple(g.shape(y) or ()) != tuple(x_shape or ()):
        p = g.producer(y)
        if p not in region or p.op not in SHAPE_OPS:
            raise _NoMatch
        region.remove(p)
        y = p.inputs[0]
    return y, region


def _closed(g: OnnxGraph, nodes: list[ONode], y: str) -> None:
    inside = {id(n) for n in nodes}
    for n in nodes:
        for o in n.outputs:
            if o == y:
                continue
            if g.is_output(o) or any(id(u) not in inside for u in g.users(o)):
                raise _NoMatch


def _is_causal(m: np.ndarray) -> bool:
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        return False
    m = m.reshape(-1, *m.shape[-2:])
    if m.shape[0] != 1:
        return False
    m = m[0].astype(np.float64)
    keep = np.tril(np.ones(m.shape, bool))
    return bool(np.all(m[keep] == 0) and np.all(m[~keep] <= -1e4))


def _verify(g: OnnxGraph, nodes, x: str, y: str, xs, weights, heads: int, causal: bool) -> None:
    """Run the region (ONNX's reference evaluator) and netc's self_attention kernel on one
    random x; a region that does not compute the same is not attention."""
    from netc.backends.numpy.kernels.attention import self_attention
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    order = {id(n): i for i, n in enumerate(g.nodes)}
    nodes = sorted(nodes, key=lambda n: order[id(n)])
    used = {v for n in nodes for v in n.inputs if v and g.const(v) is not None}
    inits = [numpy_helper.from_array(np.asarray(g.const(v)), v) for v in sorted(used)]
    graph = helper.make_graph([n.proto for n in nodes], "attention",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, list(xs))],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], inits)
    xv = np.random.default_rng(0).standard_normal(xs).astype(np.float32)
    try:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)])
        got = ReferenceEvaluator(model).run(None, {x: xv})[0]
    except Exception as e:  # noqa: BLE001 -- a region that does not run on its own is no match
        raise _NoMatch(f"the region does not run on its own: {e}") from None
    want = self_attention(xv, in_proj_weight=weights[0], in_proj_bias=weights[1], out_proj_weight=weights[2],
                          out_proj_bias=weights[3], heads=heads, causal=causal)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(want).max())):
        raise _NoMatch
