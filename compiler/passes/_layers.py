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


def weight_sharers(g: Graph) -> dict[str, list[str]]:
    """Each layer scope -> the other nodes that use its weights (a ``let`` layer applied
    again, a tied ``unembed``), in graph order: built once per pass, so that asking about
    every layer stays linear."""
    out: dict[str, list[str]] = {}
    for n in g.nodes():
        tied = getattr(getattr(n.attrs, "layer", None), "scope", None)
        for scope in {n.layer, tied} - {None, n.id}:
            out.setdefault(scope, []).append(n.id)
    return out


def why_weights_shared(g: Graph, layer: Node, sharers: dict[str, list[str]]) -> str | None:
    """Why rewriting ``layer``'s weights would change another node (``sharers`` from
    :func:`weight_sharers`), or None when they are its own."""
    if layer.layer and layer.layer != layer.id:
        return f"`{layer.id}` applies the weights of `{layer.layer}`"
    other = next((nid for nid in sharers.get(layer.id, ()) if nid in g), None)
    return f"`{other}` shares the weights of `{layer.id}`" if other else None


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
