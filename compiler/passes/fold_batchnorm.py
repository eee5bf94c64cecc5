"""Batch-norm folding, for inference.

    y = conv2d(x, bias=false)            y = conv2d(x, bias=true)     # weight W', bias b'
    z = batchnorm(y)              ==>    readers of z read y

In eval mode a batchnorm is a per-channel affine map, ``z = (y - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``, so the layer before it can absorb it: ``W' = W * s`` along
the layer's output-channel axis (its ``weight_out_axis``: 0; 1 for ``conv_transpose2d``,
whose weight is [C_in, out, kh, kw]) and ``b' = (b - mean) * s + beta`` (b = 0 when the layer
had none). For the ops with the trait ``layer`` (``conv1d``, ``conv2d``, ``conv_transpose2d``,
and ``linear`` on [N, F]: on [N, T, F] a batchnorm normalises T, not the layer's features). The folded layer keeps its id,
so its weight names stay; the batchnorm's weights go.

Only when the batchnorm is the layer's only reader, the layer is no result, applies no
activation of its own, and neither's weights are shared with another node. A model built at
``-O2`` is for inference: trained weights come in through ``Program.convert_weights``.
"""

from __future__ import annotations

from netc.specs.catalogue import get, has_trait

from .. import records
from ..ir import Graph, Node
from ..shapes import infer_op
from ._layers import weight_sharers, why_not_sole_reader, why_weights_shared
from ._util import union
from .base import PassContext, PassResult, WeightTransform, each_node, register


@register("fold_batchnorm", level=2,
          purpose="fold an inference batchnorm into the conv, linear or conv_transpose before it")
def fold_batchnorm(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    sharers = weight_sharers(g)
    for bn in each_node(g, lambda n: n.op == "batchnorm"):  # afresh: a fold before may move its input
        layer = g.producer(bn.inputs[0])
        if not has_trait(layer.op, "layer"):
            continue
        why = why_not(g, layer, bn, sharers)
        if why:
            result.skip(f"batchnorm `{bn.id}` not folded into {layer.op} `{layer.id}`: {why}", bn.span)
            continue
        ctx.transforms.append(fold(g, layer, bn))
        result.rewrote(f"folded batchnorm `{bn.id}` into {layer.op} `{layer.id}` (weights scaled, bias "
                       f"{'shifted' if layer.attrs.bias else 'added'})", union(layer.span, bn.span))
    return result


def why_not(g: Graph, layer: Node, bn: Node, sharers: dict) -> str | None:
    x = g.type_of(bn.inputs[0])
    if layer.op == "linear" and x.rank != 2:
        return f"on {x} batchnorm normalises dim 1, not the features of `{layer.id}`"
    if layer.attrs.activation is not None:
        return f"`{layer.id}` applies {layer.attrs.activation} before the batchnorm"
    if bn.layer and bn.layer != bn.id:
        return f"`{bn.id}` applies the weights of `{bn.layer}`"
    return (why_not_sole_reader(g, layer, bn) or why_weights_shared(g, layer, sharers)
            or why_weights_shared(g, bn, sharers))


def fold(g: Graph, layer: Node, bn: Node) -> WeightTransform:
    """Rewrite the graph: ``layer`` with a bias in the place of both; return the weight rewrite."""
    attrs = layer.attrs.model_copy(update={"bias": True})
    inf = infer_op(get(layer.op), [g.type_of(r) for r in layer.inputs], attrs)
    g.replace(records.replace(layer, attrs=attrs, params=inf.params, span=union(layer.span, bn.span)))
    g.replace_uses((bn.id, 0), (layer.id, 0))
    g.remove(bn.id)
    axis = get(layer.op).weight_out_axis
    return WeightTransform(folded_weights(layer.id, bn.id, bn.attrs.eps, axis, layer.attrs.bias),
                           drops=tuple(bn.param_names()))


def folded_weights(layer: str, bn: str, eps: float, axis: int, has_bias: bool):
    """``weights -> {layer.weight: W', layer.bias: b'}``, for torch tensors or NumPy arrays
    (only arithmetic, ``**`` and ``reshape``, which both have)."""

    def fn(w: dict) -> dict:
        mean, gamma, beta = w[f"{bn}.running_mean"], w[f"{bn}.weight"], w[f"{bn}.bias"]
        scale = gamma / (w[f"{bn}.running_var"] + eps) ** 0.5
        weight = w[f"{layer}.weight"]
        shape = [1] * weight.ndim
        shape[axis] = -1
        bias = w[f"{layer}.bias"] if has_bias else mean * 0
        return {f"{layer}.weight": weight * scale.reshape(shape), f"{layer}.bias": (bias - mean) * scale + beta}

    return fn
