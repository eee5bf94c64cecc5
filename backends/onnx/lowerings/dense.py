"""Dense layers: ``linear`` as ``Gemm`` on a 2-d input, else ``MatMul`` (+ ``Add``) with the
weight transposed by a ``Transpose`` node (ONNX Runtime folds it at load); ``embedding`` as
``Gather``; ``unembed`` as ``MatMul`` with the tied table transposed."""

from __future__ import annotations

from ..table import lowering
from .activation import activate


def affine(b, x: str, rank: int, weight: str, bias: str | None) -> str:
    """x [..., F] @ weight[O, F]ᵀ + bias."""
    if rank == 2:
        return b.add("Gemm", [x, weight] + ([bias] if bias else []), transB=1)
    y = b.add("MatMul", [x, b.add("Transpose", [weight], perm=[1, 0])])
    return b.add("Add", [y, bias]) if bias else y


@lowering("linear")
def linear(b, node, xs, a):
    rank = b.types[xs[0]].rank
    return [activate(b, node, affine(b, xs[0], rank, b.param(node, "weight"), b.param(node, "bias")), a)]


@lowering("embedding")
def embedding(b, node, xs, a):
    return [b.add("Gather", [b.param(node, "weight"), xs[0]], axis=0)]


@lowering("unembed")
def unembed(b, node, xs, a):
    weight = b.weight(f"{a.layer.scope}.weight")
    return [affine(b, xs[0], b.types[xs[0]].rank, weight, None)]
