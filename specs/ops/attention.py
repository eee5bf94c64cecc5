"""Attention: ``self_attention`` and ``cross_attention`` (multi-head, as
torch.nn.MultiheadAttention with batch_first), scaled dot-product ``attention`` and the
sinusoidal ``positional_encoding``.

MACs of multi-head attention: the q, k, v projections (``numel(x) * D`` each, k and v from the
memory for cross attention), the two score matmuls (``N * T * S * D`` each) and the output
projection (``numel(x) * D``). ``attention``: ``batch * T * S * (d + dv)``.
"""

from __future__ import annotations

from netc.compiler.dims import product
from netc.compiler.types import ShapeError, TensorType, concrete
from netc.specs import opdef
from netc.specs.opdef import Op, Param, register

from ._util import broadcast, check_min, check_prob, expect, fmt_shape


class MultiHeadAttrs(opdef.Attrs):
    heads: int
    causal: bool = False
    dropout: float = 0.0  # on the attention weights, while training
    bias: bool = True


class _MultiHead(Op):
    """Shared rule of self and cross attention: x [N, T, D] -> [N, T, D]."""

    group = "attention"
    Attrs = MultiHeadAttrs
    traits = frozenset({"has_weights"})
    param_names = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        _, _, d = expect(x, 3, "[N, T, D]")
        check_min(1, heads=a.heads)
        check_prob("dropout", a.dropout)
        if d % a.heads != 0:
            raise ShapeError(f"needs the model dim divisible by heads; got D={d}, heads={a.heads}")
        return x

    @classmethod
    def params(cls, xs, a):
        d = concrete(xs[0].shape[2], "the model dim")
        out = {"in_proj_weight": Param((3 * d, d))}
        if a.bias:
            out["in_proj_bias"] = Param((3 * d,))
        out["out_proj.weight"] = Param((d, d))
        if a.bias:
            out["out_proj.bias"] = Param((d,))
        return out

    @classmethod
    def macs(cls, xs, ys, a):
        x, mem = xs[0], xs[-1]
        n, t, d = x.shape
        s = mem.shape[1]
        return 2 * x.numel() * d + 2 * mem.numel() * d + 2 * n * t * s * d


@register
class SelfAttention(_MultiHead):
    """Multi-head attention of a sequence [N, T, D] to itself."""

    name = "self_attention"
    signature = "self_attention(heads, causal=false, dropout=0, bias=true)"


@register
class CrossAttention(_MultiHead):
    """Multi-head attention of a sequence [N, T, D] (queries) to ``memory`` [N, S, D] (keys, values)."""

    name = "cross_attention"
    arity = (2, 2)
    signature = "cross_attention(memory, heads, causal=false, dropout=0, bias=true)"

    @classmethod
    def shape(cls, xs, a):
        x, memory = xs
        out = super().shape(xs, a)
        expect(memory, 3, "[N, S, D] (memory)")
        if memory.shape[0] != x.shape[0] or memory.shape[2] != x.shape[2]:
            raise ShapeError(f"needs memory [N, S, D] with the batch and model dims of the input; "
                             f"got {memory} for input {x}")
        return out


@register
class Attention(Op):
    """Scaled dot-product attention softmax(q kᵀ * scale + mask) v, with an optional additive mask."""

    name = "attention"
    group = "attention"
    arity = (3, 4)  # the fourth tensor is the mask, given by position or as mask=
    tensor_kwargs = ("mask",)
    signature = "attention(q, k, v, mask=none, causal=false, scale=none)"

    class Attrs(opdef.Attrs):
        causal: bool = False
        scale: float | None = None  # None: 1 / sqrt(d)

    @classmethod
    def shape(cls, xs, a):
        q, k, v = xs[:3]
        for name, x in zip("qkv", (q, k, v)):
            if x.rank < 2 or x.dtype != "float":
                raise ShapeError(f"needs float q, k, v of at least 2 dims [..., T, d]; got {name}: {x}")
        *bq, t, d = q.shape
        *bk, s, dk = k.shape
        *bv, sv, dv = v.shape
        if dk != d or sv != s:
            raise ShapeError(f"needs q [..., T, d], k [..., S, d], v [..., S, dv]; got {q}, {k}, {v}")
        batch = broadcast(broadcast(tuple(bq), tuple(bk), "the batch dims "), tuple(bv), "the batch dims ")
        if len(xs) > 4:
            raise ShapeError(f"takes one mask; got {len(xs) - 3}")
        if len(xs) == 4:
            _check_mask(xs[3], batch + (t, s), a.causal)
        return TensorType("float", batch + (t, dv))

    @classmethod
    def macs(cls, xs, ys, a):
        *batch, t, dv = ys[0].shape
        s, d = xs[1].shape[-2:]
        return product(batch) * t * s * (d + dv)


def _check_mask(mask: TensorType, scores: tuple, causal: bool) -> None:
    if causal:
        raise ShapeError("takes a mask or causal=true, not both")
    if mask.dtype == "int":
        raise ShapeError(f"needs a float (additive) or bool mask; got {mask}")
    try:
        fits = broadcast(mask.shape, scores) == scores
    except ShapeError:
        fits = False
    if not fits:
        raise ShapeError(f"needs a mask that broadcasts to the scores {fmt_shape(scores)}; got {mask}")


@register
class PositionalEncoding(Op):
    """Add the fixed sinusoidal position table of "Attention is all you need" to [N, T, D]."""

    name = "positional_encoding"
    group = "attention"
    signature = "positional_encoding"

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        _, _, d = expect(x, 3, "[N, T, D]")
        if d % 2 != 0:
            raise ShapeError(f"needs an even model dim D; got {x}")
        return x
