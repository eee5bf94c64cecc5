"""Attention: ``self_attention`` and ``cross_attention`` (multi-head, as
torch.nn.MultiheadAttention with batch_first), scaled dot-product ``attention`` and the
sinusoidal ``positional_encoding``.

MACs of multi-head attention: the q projection (``numel(x) * D``), the k and v projections
(``numel(memory) * kv_heads * D / heads`` each, the memory being x for self attention), the two
score matmuls (``N * T * S * D`` each) and the output projection (``numel(x) * D``).
``attention``: ``batch * T * S * (d + dv)``; ``rotary``: ``2 * numel(x)``.
"""

from __future__ import annotations

from netc.compiler.dims import product
from netc.compiler.types import ShapeError, TensorType, concrete
from netc.specs import opdef
from netc.specs.opdef import Op, Param, register

from ._util import broadcast, check_min, check_prob, expect, expect_min_rank, fmt_shape


class MultiHeadAttrs(opdef.Attrs):
    heads: int
    kv_heads: int | None = None  # grouped-query attention: k, v with fewer heads (None: heads)
    causal: bool = False
    dropout: float = 0.0  # on the attention weights, while training
    bias: bool = True
    masks: tuple[str, ...] = ()  # which of mask=, padding= the node reads (the elaborator sets it)


class SelfAttentionAttrs(MultiHeadAttrs):
    rotary: bool = False  # rotary position embeddings on q and k (RoPE, "rotate half")
    base: float = 10000.0  # RoPE's frequency base


class _MultiHead(Op):
    """Shared rule of self and cross attention: x [N, T, D] -> [N, T, D]."""

    group = "attention"
    Attrs = MultiHeadAttrs
    traits = frozenset({"has_weights"})
    param_names = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
    tensor_kwargs = ("mask", "padding")
    tensor_kwargs_attr = "masks"

    @classmethod
    def shape(cls, xs, a):
        x, memory = xs[0], xs[cls.arity[0] - 1]
        n, t, d = expect(x, 3, "[N, T, D]")
        check_min(1, heads=a.heads)
        check_prob("dropout", a.dropout)
        kv = kv_heads(a)
        check_min(1, kv_heads=kv)
        if a.heads % kv != 0:
            raise ShapeError(f"needs heads divisible by kv_heads (each k, v head serves heads / kv_heads query "
                             f"heads); got heads={a.heads}, kv_heads={kv}",
                             hint=f"kv_heads may be one of {', '.join(map(str, _divisors(a.heads)))}")
        if d % a.heads != 0:
            raise ShapeError(f"needs the model dim divisible by heads; got D={d}, heads={a.heads}")
        if getattr(a, "rotary", False) and (d // a.heads) % 2 != 0:
            raise ShapeError(f"rotary=true needs an even head size (RoPE rotates pairs of features); "
                             f"got D / heads = {d} / {a.heads} = {d // a.heads}")
        if getattr(a, "rotary", False) and a.base <= 0:
            raise ShapeError(f"needs base > 0; got base={a.base}")
        check_masks(xs[cls.arity[0]:], a.masks, n, (n, a.heads, t, memory.shape[1]), a.causal)
        return x

    @classmethod
    def params(cls, xs, a):
        d = concrete(xs[0].shape[2], "the model dim")
        qkv = d + 2 * (d // a.heads) * kv_heads(a)
        out = {"in_proj_weight": Param((qkv, d))}
        if a.bias:
            out["in_proj_bias"] = Param((qkv,))
        out["out_proj.weight"] = Param((d, d))
        if a.bias:
            out["out_proj.bias"] = Param((d,))
        return out

    @classmethod
    def macs(cls, xs, ys, a):
        x, mem = xs[0], xs[cls.arity[0] - 1]
        n, t, d = x.shape
        s = mem.shape[1]
        kv = d // a.heads * kv_heads(a)
        return 2 * x.numel() * d + 2 * mem.numel() * kv + 2 * n * t * s * d


def kv_heads(a) -> int:
    return a.heads if a.kv_heads is None else a.kv_heads


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, min(n, 4096) + 1) if n % k == 0][:12]


@register
class SelfAttention(_MultiHead):
    """Multi-head attention of [N, T, D] to itself; mask [N, heads, T, T], padding bool [N, T], GQA, RoPE."""

    name = "self_attention"
    Attrs = SelfAttentionAttrs
    signature = ("self_attention(heads, mask=none, padding=none, kv_heads=heads, causal=false, dropout=0, "
                 "bias=true, rotary=false, base=10000)")


@register
class CrossAttention(_MultiHead):
    """Multi-head attention of [N, T, D] (queries) to ``memory`` [N, S, D]; mask, padding bool [N, S]."""

    name = "cross_attention"
    arity = (2, 2)
    signature = ("cross_attention(memory, heads, mask=none, padding=none, kv_heads=heads, causal=false, "
                 "dropout=0, bias=true)")

    @classmethod
    def shape(cls, xs, a):
        x, memory = xs[:2]
        expect(memory, 3, "[N, S, D] (memory)")
        out = super().shape(xs, a)
        if memory.shape[0] != x.shape[0] or memory.shape[2] != x.shape[2]:
            raise ShapeError(f"needs memory [N, S, D] with the batch and model dims of the input; "
                             f"got {memory} for input {x}")
        return out


@register
class Attention(Op):
    """Scaled dot-product attention softmax(q kᵀ * scale + mask) v; k, v may have fewer heads (GQA)."""

    name = "attention"
    group = "attention"
    arity = (3, 4)  # the fourth tensor is the mask, given by position or as mask=
    tensor_kwargs = ("mask", "padding")
    tensor_kwargs_attr = "masks"
    signature = "attention(q, k, v, mask=none, padding=none, causal=false, scale=none, dropout=0)"

    class Attrs(opdef.Attrs):
        causal: bool = False
        scale: float | None = None  # None: 1 / sqrt(d)
        dropout: float = 0.0  # on the attention weights, while training
        masks: tuple[str, ...] = ()  # which of mask=, padding= the node reads (the elaborator sets it)

    @classmethod
    def shape(cls, xs, a):
        q, k, v = xs[:3]
        for name, x in zip("qkv", (q, k, v)):
            if x.rank < 2 or x.dtype != "float":
                raise ShapeError(f"needs float q, k, v of at least 2 dims [..., T, d]; got {name}: {x}")
        check_prob("dropout", a.dropout)
        *bq, t, d = q.shape
        *bk, s, dk = k.shape
        *bv, sv, dv = v.shape
        if dk != d or sv != s:
            raise ShapeError(f"needs q [..., T, d], k [..., S, d], v [..., S, dv]; got {q}, {k}, {v}")
        bkv = broadcast(tuple(bk), tuple(bv), "the batch dims ")
        batch = broadcast(tuple(bq), _grouped(tuple(bq), bkv), "the batch dims ")
        n = batch[0] if batch else 1
        check_masks(xs[3:], a.masks or ("mask",) * min(len(xs) - 3, 1), n, batch + (t, s), False)
        return TensorType("float", batch + (t, dv))

    @classmethod
    def macs(cls, xs, ys, a):
        *batch, t, dv = ys[0].shape
        s, d = xs[1].shape[-2:]
        return product(batch) * t * s * (d + dv)


def _grouped(bq: tuple, bkv: tuple) -> tuple:
    """k's and v's batch dims with their heads (dim -3 of k) taken as q's when q's are a multiple:
    grouped-query attention, where each k, v head serves a group of query heads."""
    if len(bq) < 1 or len(bkv) < 1 or 1 in (bq[-1], bkv[-1]) or bkv[-1] == bq[-1]:
        return bkv
    h, kv = bq[-1], bkv[-1]
    if isinstance(h, int) and isinstance(kv, int) and h % kv == 0:
        return bkv[:-1] + (h,)
    if isinstance(h, int) and isinstance(kv, int):
        raise ShapeError(f"needs q's heads (dim -3) a multiple of k's and v's for grouped-query attention; "
                         f"got {h} query heads and {kv} key/value heads")
    return bkv


def check_masks(masks: list, names: tuple[str, ...], n, scores: tuple, causal: bool) -> None:
    """A padding mask is bool [N, S]; an arbitrary mask (bool or float) broadcasts to ``scores``."""
    del causal  # a mask and causal=true combine: both must allow a position
    if len(masks) != len(names):
        raise ShapeError(f"takes one mask and one padding mask at most; got {len(masks)} masks")
    for name, m in zip(names, masks):
        if name == "padding":
            want = (n, scores[-1])
            if m.dtype != "bool" or m.shape != want:
                raise ShapeError(f"needs a padding mask bool{fmt_shape(want)} (true: a real position, false: "
                                 f"padding); got {m}",
                                 hint="a mask over the scores goes in `mask=`" if m.rank != 2 else
                                 ("declare the mask input bool, like `pad: bool[N, S]`" if m.dtype != "bool" else None))
            continue
        if m.dtype == "int":
            raise ShapeError(f"needs a bool (true: attend) or float (additive) mask; got {m}",
                             hint="declare the mask input bool or float, like `m: bool[N, 1, T, S]`")
        try:
            fits = broadcast(m.shape, scores) == scores
        except ShapeError:
            fits = False
        if not fits:
            hint = None
            if m.rank == 2 and m.dtype == "bool":
                hint = f"a padding mask bool{fmt_shape((n, scores[-1]))} goes in `padding=`"
            raise ShapeError(f"needs a mask that broadcasts to the scores {fmt_shape(scores)}; got {m}", hint=hint)


@register
class Rotary(Op):
    """Rotary position embedding (RoPE, "rotate half") of x [..., T, d], positions 0, 1, ... along T."""

    name = "rotary"
    group = "attention"
    signature = "rotary(base=10000)"

    class Attrs(opdef.Attrs):
        base: float = 10000.0

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        *_, d = expect_min_rank(x, 2, "[..., T, d]")
        if isinstance(d, int) and d % 2 != 0:
            raise ShapeError(f"needs an even last dim d (RoPE rotates pairs of features); got {x}")
        if a.base <= 0:
            raise ShapeError(f"needs base > 0; got base={a.base}")
        return x

    @classmethod
    def macs(cls, xs, ys, a):
        return 2 * xs[0].numel()


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
