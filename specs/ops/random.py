"""Random numbers in a model: ``randn_like``. MACs: 0.

The contract, so that ``netc verify`` can compare backends: while a torch module trains,
``randn_like`` draws from torch's generator (``torch.randn_like``), so every step gets fresh
noise; in eval mode, and always in the NumPy program, it computes its numbers from
``seed`` and each element's position with a counter-based generator that both backends
write with the same integer and float32 operations: element i of the (contiguous) output
hashes 2i and 2i + 1 with ``seed`` (lowbias32, 32-bit, carried in int64 lanes) into two
uniforms u1 in (0, 1] and u2 in [0, 1) (24 bits each), and Box–Muller in float32 (float64 for a
float64 x) gives sqrt(-2 ln u1) cos(2π u2).
Eval outputs are therefore reproducible and equal across backends and devices (up to float32
rounding of log and cos); a spec that wants other noise per call site gives another seed.
"""

from __future__ import annotations

from netc.compiler.types import ShapeError
from netc.specs import opdef
from netc.specs.opdef import Op, register


@register
class RandnLike(Op):
    """Standard normal noise of x's shape (x's values are not read): torch's generator while training; in eval mode and in NumPy a counter-based draw from ``seed`` and the element index, equal in both backends."""

    name = "randn_like"
    group = "math"
    traits = frozenset({"random"})
    signature = "randn_like(x, seed=0)"

    class Attrs(opdef.Attrs):
        seed: int = 0

    @classmethod
    def shape(cls, xs, a):
        xs[0].expect_float()
        if not 0 <= a.seed < 2**32:
            raise ShapeError(f"needs 0 <= seed < 2**32; got seed={a.seed}",
                             hint="any seed from 0 to 4294967295; call sites with different seeds draw "
                                  "independent noise")
        return xs[0]
