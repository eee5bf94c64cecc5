"""Channels-last memory layout for convolutions, for speed.

    x: float[N, 3, 224, 224]                   x1 = memory_format(x, format="channels_last")
    c = conv2d(x, ...)                ==>      c = conv2d(x1, ...)
    ...                                        ...
    return y   (4-d, channels-last)            return memory_format(y, format="contiguous")

Convolution kernels (oneDNN on CPU, cuDNN on GPU) run fastest on tensors stored N, H, W, C,
and the ops between the convolutions of a CNN (batch norm, activations, pooling, residual
adds) keep the layout of their input. So a value entering a convolution in the standard
layout is converted once, where it is made (every reader then gets the converted value),
the layout flows on through the network, and 4-d results leave in the standard layout.
Values are unchanged: a layout is how a tensor is stored, not what it holds. The torch
module converts in inference only (``x if torch.is_grad_enabled() else
x.contiguous(memory_format=torch.channels_last)``: see the lowering of ``memory_format``);
the NumPy executor treats the op as the identity. Weights keep their names and layout.
"""

from __future__ import annotations

from netc.specs.catalogue import get, has_trait

from ..ir import Node
from ._fusion import fresh_id
from .base import PassContext, PassResult, each_node, register


def _keeps_layout(op: str) -> bool:
    """Whether the op's kernels give its output the layout of its (4-d) input: the ops with
    the trait keeps_layout, and the elementwise ones."""
    return has_trait(op, "keeps_layout") or has_trait(op, "elementwise")


@register("use_channels_last", level=2,
          purpose="run convolutions on channels-last tensors (torch, inference)")
def use_channels_last(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    last: dict[str, bool] = {}  # node id -> its (first) output is stored channels-last
    for n in each_node(g):
        if has_trait(n.op, "channels_last") and not last.get(n.inputs[0][0], False):
            last[_convert(g, n.inputs[0], result)] = True
        last[n.id] = (has_trait(n.op, "channels_last")
                     or (n.op == "memory_format" and n.attrs.format == "channels_last")
                     or (_keeps_layout(n.op)
                         and any(last.get(src, False) for src, _ in n.inputs if g.type_of((src, 0)).rank == 4)))
    for i, (name, ref) in enumerate(list(g.outputs)):
        if g.type_of(ref).rank == 4 and last.get(ref[0], False):
            producer = g.producer(ref)
            node = _memory_format(g, ref, "contiguous", producer, in_model=True)
            g.outputs[i] = (name, (node.id, 0))
            result.rewrote(f"result `{name or producer.id}` back to the standard layout", producer.span)
    return result


def _convert(g, ref, result: PassResult) -> str:
    """Convert ``ref`` to channels-last where it is made; every reader reads the new value."""
    producer = g.producer(ref)
    node = _memory_format(g, ref, "channels_last", producer)
    g.replace_uses(ref, (node.id, 0))  # not the new node's own input
    what = f"input `{producer.id}`" if producer.op == "input" else f"{producer.op} `{producer.id}`"
    result.rewrote(f"{what} converted to channels-last for the convolutions after it", producer.span)
    return node.id


def _memory_format(g, ref, fmt: str, producer: Node, in_model: bool = False) -> Node:
    """A memory_format node reading ``ref``, in ``producer``'s block (or, ``in_model``, in the
    model itself, where a model result is read: a block's internal value is not visible
    there), just after it."""
    attrs = get("memory_format").Attrs(format=fmt)
    if in_model and producer.block:
        nid, k = fmt, 0
        while nid in g or nid in g.blocks:
            k += 1
            nid = f"{fmt}_{k}"
        node = Node(nid, "memory_format", (ref,), attrs, (g.type_of(ref),), producer.span, "")
    else:
        node = Node(fresh_id(g, producer.id, fmt), "memory_format", (ref,), attrs, (g.type_of(ref),),
                    producer.span, producer.block)
    first = next((n for n in g.nodes() if ref in n.inputs), None)
    return g.insert_before(first.id, node) if first else g.add(node)
