"""Projection fusion: linear layers that read the same input become one wider linear.

    q = linear(x, out=64)                  q_k_v = linear(x, out=192)
    k = linear(x, out=64)           ==>    q_k_v_split = split(q_k_v, (64, 64, 64), dim=-1)
    v = linear(x, out=64)                  readers of q, k, v read its outputs 0, 1, 2

One matrix multiply in the place of several (Q, K and V projections written by hand, heads
that share a trunk). The fused layer's weight stacks the layers' weights by rows, in graph
order (and the biases alike); its id is the layers' names joined by ``_``, in their block
(``attn.q_k_v``), so its weight names are ``attn.q_k_v.weight`` and ``attn.q_k_v.bias``.

Only layers in the same block (the module that holds them), with the same ``bias`` and the
same fused activation, whose weights are their own (no ``let`` layer applied twice, no tied
``unembed``) are fused together; a group of one stays as it is.

-O3 only: one GEMM call saved against a split whose parts are read strided is a trade-off,
and on this CPU it measured within the noise both ways (the VAE's mu/logvar heads 1.00–1.01,
LLaMA's gate/up 0.97–1.05 of -O2 without it: docs/performance.md), so it is offered behind
the flag rather than decided without a cost model.
"""

from __future__ import annotations

from functools import reduce

from netc.specs.catalogue import get

from ..ir import Graph, Node, Ref
from ..shapes import infer_op
from ._fusion import fresh_id
from ._layers import concat_rows, weight_sharers, why_weights_shared
from ._util import union
from .base import PassContext, PassResult, WeightTransform, register


@register("fuse_qkv", level=3,
          purpose="fuse linear layers that read the same input (Q, K, V) into one wider linear and a split")
def fuse_qkv(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    readers: dict[Ref, list[Node]] = {}
    sharers = weight_sharers(g)
    for n in g.nodes():
        if n.op == "linear":
            readers.setdefault(n.inputs[0], []).append(n)
    for lins in (ls for ls in readers.values() if len(ls) > 1):
        groups: dict[tuple, list[Node]] = {}
        for n in lins:
            why = why_weights_shared(g, n, sharers)
            if why:
                result.skip(f"linear `{n.id}` not fused with the other readers of its input: {why}", n.span)
            else:
                groups.setdefault(_key(g, n), []).append(n)
        for ms in groups.values():
            if len(ms) > 1:
                node, transform = fuse(g, ms)
                ctx.transforms.append(transform)
                result.rewrote(f"fused linear {', '.join(f'`{m.id}`' for m in ms)} ==> linear `{node.id}` "
                               f"(out={node.attrs.out}) and a split", node.span)
            elif len(groups) > 1:
                other = next(m for o in groups.values() for m in o if m is not ms[0])
                result.skip(f"linear `{ms[0].id}` not fused with `{other.id}`, which reads the same input: "
                            f"{_difference(g, ms[0], other)}", ms[0].span)
    return result


def _key(g: Graph, n: Node) -> tuple:
    a = n.attrs
    return (n.block, a.bias, a.activation, a.activation_slope, n.inits)


def _difference(g: Graph, a: Node, b: Node) -> str:
    if a.block != b.block:
        return "they are in different blocks"
    if a.attrs.bias != b.attrs.bias:
        return f"bias={str(a.attrs.bias).lower()} against bias={str(b.attrs.bias).lower()}"
    if a.inits != b.inits:  # one layer starts as the spec says: the fused one cannot start two ways
        return "they are initialised differently (weight_init / bias_init)"
    return f"activation {a.attrs.activation} against {b.attrs.activation}"


def fuse(g: Graph, ms: list[Node]) -> tuple[Node, WeightTransform]:
    """Put one linear and a split in the place of the linears ``ms`` (in graph order)."""
    first, x = ms[0], ms[0].inputs[0]
    nid = fresh_id(g, first.id, "_".join(m.name for m in ms))
    attrs = first.attrs.model_copy(update={"out": sum(m.attrs.out for m in ms)})
    span = reduce(union, [m.span for m in ms])
    inf = infer_op(get("linear"), [g.type_of(x)], attrs)
    node = g.insert_before(first.id, Node(nid, "linear", (x,), attrs, inf.types, span, first.block,
                                          inf.params, None, inf.macs, inits=first.inits))
    sizes = get("split").Attrs(sizes=tuple(m.attrs.out for m in ms), dim=-1)
    types = infer_op(get("split"), [node.type], sizes).types
    split = g.insert_before(first.id, Node(fresh_id(g, first.id, f"{node.name}_split"), "split",
                                           ((nid, 0),), sizes, types, span, first.block))
    for i, m in enumerate(ms):
        g.replace_uses((m.id, 0), (split.id, i))
        g.remove(m.id)
    names = [m.id for m in ms]

    def stacked(w: dict) -> dict:
        out = {f"{nid}.weight": concat_rows([w[f"{m}.weight"] for m in names])}
        if attrs.bias:
            out[f"{nid}.bias"] = concat_rows([w[f"{m}.bias"] for m in names])
        return out

    return node, WeightTransform(stacked, drops=tuple(p for m in ms for p in m.param_names()))
