"""Initialisers: how a learned tensor starts (``param pos: [1, T, D] = normal(0.02)``, a
layer's ``weight_init=normal(0.02)``). Each is declared once here, with its arguments and its
torch form (an ``nn.init`` function, which fills a tensor in place and returns it); the NumPy
backend takes its weights from torch, so it needs none.

    >>> make("normal", (0.02,)).torch("w")
    'nn.init.normal_(w, std=0.02)'
"""

from __future__ import annotations

import re

from netc.compiler.records import Record


class Spec(Record):
    args: tuple[str, ...]  # argument names, in order
    defaults: tuple[float, ...]  # defaults of the trailing arguments
    template: str  # the nn.init call; {t} is the tensor, {name} each argument
    doc: str


INITIALISERS: dict[str, Spec] = {
    "zeros": Spec((), (), "nn.init.zeros_({t})", "all 0"),
    "ones": Spec((), (), "nn.init.ones_({t})", "all 1"),
    "full": Spec(("value",), (), "nn.init.constant_({t}, {value})", "all `value` (a LayerScale gain: `full(1e-6)`)"),
    "normal": Spec(("std", "mean"), (0.0,), "nn.init.normal_({t}, mean={mean}, std={std})",
                   "N(mean, std²)"),
    "trunc_normal": Spec(("std",), (), "nn.init.trunc_normal_({t}, std={std})",
                         "N(0, std²) redrawn outside [-2, 2] (torch's `trunc_normal_`)"),
    "uniform": Spec(("low", "high"), (), "nn.init.uniform_({t}, {low}, {high})", "U(low, high)"),
}


class Init(Record):
    """An initialiser with its arguments (numbers)."""

    kind: str
    args: tuple[float, ...] = ()

    def __str__(self) -> str:
        return self.kind + (f"({', '.join(_num(a) for a in self.args)})" if self.args else "")

    def values(self) -> dict[str, float]:
        spec = INITIALISERS[self.kind]
        missing = len(spec.args) - len(self.args)
        return dict(zip(spec.args, self.args + spec.defaults[len(spec.defaults) - missing:]))

    def torch(self, target: str) -> str:
        """The nn.init call that fills ``target`` (code) and returns it."""
        spec = INITIALISERS[self.kind]
        text = spec.template.replace("mean={mean}, ", "") if self.values().get("mean") == 0.0 else spec.template
        return text.format(t=target, **{k: _num(v) for k, v in self.values().items()})


def make(kind: str, args: tuple) -> Init:
    """The initialiser ``kind(args)``; ValueError (in words) when the arguments do not fit."""
    spec = INITIALISERS[kind]
    lo, hi = len(spec.args) - len(spec.defaults), len(spec.args)
    if not lo <= len(args) <= hi:
        want = f"{lo}" if lo == hi else f"{lo} or {hi}"
        sig = f"{kind}({', '.join(spec.args)})" if spec.args else kind
        raise ValueError(f"`{kind}` takes {want} number{'s' * (want != '1')}; got {len(args)} (write `{sig}`)")
    for name, v in zip(spec.args, args):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"`{kind}` argument `{name}` must be a number; got {v!r}")  # noqa: TRY004  (a spec error)
    if kind in ("normal", "trunc_normal") and args[0] < 0:
        raise ValueError(f"`{kind}` needs std >= 0; got {args[0]}")
    return Init(kind, tuple(float(a) for a in args))


def _num(v: float) -> str:
    return repr(float(v))


# A layer's initialiser arguments (``linear(768, weight_init=normal(0.02), bias_init=zeros)``,
# ``defaults weight_init=normal(0.02)``) and the word each looks for in its weight names.
# ``out_init`` starts attention's output projection ``out_proj.weight`` only (GPT-2 starts its
# residual projections smaller); a later argument here wins over an earlier one on a weight.
LAYER_ARGS: dict[str, str] = {"weight_init": "weight", "bias_init": "bias", "out_init": "output projection"}


def targets(arg: str, params: dict) -> list[str]:
    """The weights of a layer that ``arg`` (``weight_init`` or ``bias_init``) starts: every
    parameter (not a buffer) with that word in its name, so ``weight_init`` reaches lstm's
    ``weight_ih_l0`` and attention's ``in_proj_weight`` and ``out_proj.weight``.

    >>> from netc.specs.opdef import Param
    >>> targets("bias_init", {"weight_ih_l0": Param((8, 4)), "bias_ih_l0": Param((8,))})
    ['bias_ih_l0']
    """
    if arg == "out_init":
        return [name for name, p in params.items() if not p.buffer and name == "out_proj.weight"]
    word = LAYER_ARGS[arg]
    return [name for name, p in params.items() if not p.buffer and word in re.split(r"[._]", name)]
