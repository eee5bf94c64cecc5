"""Activation fusion: a layer applies the activation that is its only reader.

    y = linear(x, out=128)                 y = linear(x, out=128, activation="relu")
    z = relu(y)                     ==>    readers of z read y

For an op with the trait ``layer`` (``linear``, ``conv1d``, ``conv2d``, ``conv_transpose2d``)
followed by one with the trait ``activation`` (``relu``, ``gelu``, ``silu``, ``tanh``,
``sigmoid``, ``relu6``, ``hardsigmoid``, ``hardswish``, ``leaky_relu``: its one float attribute,
the slope, goes to ``activation_slope``; ``gelu`` only at its defaults, not the tanh form). The torch backend writes the pair as one expression,
``torch.relu(self.linear(x))``, and the NumPy kernels apply the activation in place on the
layer's output: one statement and one buffer fewer. Summaries and diagrams show the op as
``linear+relu``.

Only when the activation is the layer's only reader, the layer is no result and applies no
activation yet. The weights stay as they are. Across a block's result (ResNet's ``relu`` in
``Basic`` after the convolution of a ``ConvBN``) the activation becomes that block instance's
epilogue (``_epilogue``): the instance's, not the block's, so the block keeps one class.
"""

from __future__ import annotations

from netc.specs.catalogue import has_trait

from .. import records
from ._epilogue import add_epilogue, shared_modules, where, why_not_across
from ._fusion import at_defaults
from ._layers import why_not_sole_reader
from ._util import union
from .base import PassContext, PassResult, each_node, register


@register("fuse_activation", level=2,
          purpose="fuse an activation into the layer before it (applied in place on its output)")
def fuse_activation(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    shared = shared_modules(g)
    for act in each_node(g, lambda n: has_trait(n.op, "activation")):  # afresh: a fusion may move its input
        layer = g.producer(act.inputs[0])
        if not has_trait(layer.op, "layer"):
            continue
        blocks = []  # the instances whose result `layer` is, when `act` is outside them
        if g.block_of(layer.id) != g.block_of(act.id):
            blocks, why = why_not_across(g, layer, act, shared)
        else:
            why = why_not_sole_reader(g, layer, act)
        if layer.attrs.activation is not None:
            why = f"`{layer.id}` already applies {layer.attrs.activation}"
        fields = type(act.attrs).model_fields if act.attrs is not None else {}
        values = [getattr(act.attrs, k) for k in fields]  # leaky_relu's slope
        one_float = len(fields) == 1 and next(iter(fields.values())).annotation is float
        if one_float or at_defaults(act.attrs):  # gelu at its defaults: no value to carry
            values = values if one_float else []
        else:
            why = why or f"{act.op} has attributes other than the one float that activation_slope holds"
        if why:
            result.skip(f"{act.op} `{act.id}` not fused into {layer.op} `{layer.id}`: {why}", act.span)
            continue
        slope = float(values[0]) if values else layer.attrs.activation_slope
        attrs = layer.attrs.model_copy(update={"activation": act.op, "activation_slope": slope})
        span = union(layer.span, act.span) if not blocks else layer.span  # (in its block, the layer's text)
        g.replace(records.replace(layer, attrs=attrs, span=span))
        g.replace_uses((act.id, 0), (layer.id, 0))
        g.remove(act.id)
        add_epilogue(g, blocks, (layer.id, 0), act.op, float(values[0]) if values else None)
        across = f" {where(blocks)}" if blocks else ""
        result.rewrote(f"fused {act.op} `{act.id}` into {layer.op} `{layer.id}`{across}", act.span if blocks else span)
    return result
