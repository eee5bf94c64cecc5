"""Dropout removal, for inference.

    y = dropout(x, p=0.1)   ==>   readers of y read x

In eval mode dropout is the identity, so an inference program has no use for it; a program
built at ``-O2`` therefore trains without dropout. (Attention ops keep their ``dropout``
attribute, which is inactive in eval mode too.)
"""

from __future__ import annotations

from ._util import bypass
from .base import PassContext, PassResult, each_node, register


@register("remove_dropout", level=2, purpose="remove dropout, the identity in eval mode")
def remove_dropout(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    for n in each_node(g, lambda n: n.op == "dropout"):  # afresh: a removal may rewrite its input
        bypass(g, n, [n.inputs[0]])
        result.rewrote(f"removed dropout `{n.id}` (p={n.attrs.p}): the identity in eval mode", n.span)
    return result
