"""What the layer-fusion passes (fold_batchnorm, fuse_qkv, fuse_activation) share: whether a
layer's output has one reader, whether its weights are its own, and rewriting weights held as
torch tensors or NumPy arrays alike. (Which ops are layers is their catalogue trait ``layer``.)
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node


def why_not_sole_reader(g: Graph, layer: Node, reader: Node) -> str | None:
    """Why ``reader`` cannot absorb into ``layer``: it is not the only thing that reads
    ``layer``'s output, or the two are in different block instances (a rewrite applies
    inside a block, to every instance alike, so that its instances keep one class), or None."""
    if g.block_of(layer.id) != g.block_of(reader.id):
        return f"`{layer.id}` and `{reader.id}` are in different blocks"
    if any(src == layer.id for _, (src, _p) in g.outputs):
        return f"`{layer.id}` is a result of the model"
    others = [u.id for u in g.users(layer.id) if u.id != reader.id]
    if others:
        return f"`{layer.id}` is also read by `{others[0]}`"
    return None


def why_weights_shared(g: Graph, layer: Node) -> str | None:
    """Why rewriting ``layer``'s weights would change another node (a ``let`` layer applied
    twice, a tied ``unembed``), or None when they are its own."""
    if layer.layer and layer.layer != layer.id:
        return f"`{layer.id}` applies the weights of `{layer.layer}`"
    for n in g.nodes():
        tied = getattr(getattr(n.attrs, "layer", None), "scope", None)
        if n.id != layer.id and (n.layer == layer.id or tied == layer.id):
            return f"`{n.id}` shares the weights of `{layer.id}`"
    return None


def concat_rows(parts: list):
    """Tensors or arrays stacked along dim 0, without importing torch (the optimiser does
    not depend on a backend): NumPy arrays through ``np.concatenate``, torch tensors into a
    ``new_empty`` tensor of their dtype and device (row copies are differentiable)."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    out = parts[0].new_empty((sum(p.shape[0] for p in parts), *parts[0].shape[1:]))
    row = 0
    for p in parts:
        out[row: row + p.shape[0]] = p
        row += p.shape[0]
    return out
