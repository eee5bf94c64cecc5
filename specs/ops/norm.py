"""Normalisation and regularisation: ``batchnorm``, ``layernorm``, ``rmsnorm``, ``groupnorm``,
``dropout``.

MACs: a normalisation applies one scale-and-shift per element, ``numel(x)``; dropout 0.
"""

from __future__ import annotations

from netc.compiler.types import ShapeError, concrete
from netc.specs import opdef
from netc.specs.opdef import Op, Param, register

from ._util import check_min, check_prob, expect, expect_min_rank


def _affine(shape: tuple[int, ...]) -> dict[str, Param]:
    return {"weight": Param(shape), "bias": Param(shape)}


def _divisor_up_to(c: int, groups: int) -> int | None:
    """The largest divisor of ``c`` that is at most ``groups``, among 4096 candidates (a hint)."""
    low = min(groups, c)
    return next((g for g in range(low, max(low - 4096, 0), -1) if c % g == 0), None)


def _check_eps(eps: float) -> None:
    if eps <= 0:
        raise ShapeError(f"needs eps > 0; got eps={eps}")


class _Norm(Op):
    group = "norm"
    traits = frozenset({"has_weights", "fresh_output"})
    param_names = ("weight", "bias")

    @classmethod
    def macs(cls, xs, ys, a):
        return xs[0].numel()


@register
class BatchNorm(_Norm):
    """Normalise each channel over the batch (and positions); BatchNorm1d or 2d by rank."""

    name = "batchnorm"
    traits = frozenset({"has_weights", "stateful", "keeps_layout", "fresh_output"})
    param_names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    signature = "batchnorm(eps=1e-5, momentum=0.1)"

    class Attrs(opdef.Attrs):
        eps: float = 1e-5
        momentum: float = 0.1

    @classmethod
    def shape(cls, xs, a):
        expect(xs[0], (2, 3, 4), "[N, C], [N, C, L] or [N, C, H, W]")
        _check_eps(a.eps)
        if not 0 <= a.momentum <= 1:
            raise ShapeError(f"needs 0 <= momentum <= 1; got momentum={a.momentum}")
        return xs[0]

    @classmethod
    def params(cls, xs, a):
        c = (concrete(xs[0].shape[1], "the channel count"),)
        return {
            **_affine(c),
            "running_mean": Param(c, buffer=True),
            "running_var": Param(c, buffer=True),
            "num_batches_tracked": Param((), buffer=True, dtype="int"),
        }


@register
class LayerNorm(_Norm):
    """Normalise over the last dim (or the last ``dims`` dims), then a learned scale and shift if ``affine``."""

    name = "layernorm"
    signature = "layernorm(dims=1, eps=1e-5, affine=true)"

    class Attrs(opdef.Attrs):
        dims: int = 1
        eps: float = 1e-5
        affine: bool = True  # false: no weights (what fuse_layernorm makes of layer-norm math)

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        x.expect_float()
        check_min(1, dims=a.dims)
        if a.dims > x.rank:
            raise ShapeError(f"needs at least {a.dims} dims to normalise over dims={a.dims}; got {x}")
        _check_eps(a.eps)
        return x

    @classmethod
    def params(cls, xs, a):
        if not a.affine:
            return {}
        trailing = xs[0].shape[-a.dims:]
        return _affine(tuple(concrete(d, "the normalised shape") for d in trailing))


@register
class GroupNorm(_Norm):
    """Normalise over groups of channels (and all positions) of [N, C, ...]."""

    name = "groupnorm"
    signature = "groupnorm(groups, eps=1e-5)"

    class Attrs(opdef.Attrs):
        groups: int
        eps: float = 1e-5

    @classmethod
    def shape(cls, xs, a):
        x = xs[0]
        _, c, *_ = expect_min_rank(x, 2, "[N, C, ...]")
        check_min(1, groups=a.groups)
        if c % a.groups != 0:
            fit = _divisor_up_to(c, a.groups) if isinstance(c, int) else None
            raise ShapeError(f"needs channels divisible by groups; got {c} channels, groups={a.groups}",
                             hint=f"use a number of groups that divides {c}, like {fit}" if fit and fit > 1 else None)
        _check_eps(a.eps)
        return x

    @classmethod
    def params(cls, xs, a):
        return _affine((concrete(xs[0].shape[1], "the channel count"),))


@register
class RMSNorm(_Norm):
    """x / sqrt(mean(x²) + eps) * weight over the last dim (LLaMA's RMSNorm, torch.nn.RMSNorm)."""

    name = "rmsnorm"
    param_names = ("weight",)
    signature = "rmsnorm(eps=1e-6)"

    class Attrs(opdef.Attrs):
        eps: float = 1e-6

    @classmethod
    def shape(cls, xs, a):
        expect_min_rank(xs[0], 1, "[..., D]")
        _check_eps(a.eps)
        return xs[0]

    @classmethod
    def params(cls, xs, a):
        return {"weight": Param((concrete(xs[0].shape[-1], "the normalised dim"),))}


@register
class Dropout(Op):
    """Zero each element with probability ``p`` while training (scaling the rest by 1/(1-p))."""

    name = "dropout"
    group = "norm"
    traits = frozenset({"random", "keeps_layout"})
    signature = "dropout(p=0.5)"

    class Attrs(opdef.Attrs):
        p: float = 0.5

    @classmethod
    def shape(cls, xs, a):
        xs[0].expect_float()
        check_prob("p", a.p)
        return xs[0]
