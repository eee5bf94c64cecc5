"""How layers start: ``linear(768, weight_init=normal(0.02), bias_init=zeros)`` on one layer,
and ``defaults weight_init=normal(0.02), bias_init=zeros`` for every layer of a block or
model, and of the blocks it applies, unless a layer or an inner ``defaults`` says otherwise.
The result is each node's ``inits``: (weight name, Init) for the weights the spec starts;
the torch backend writes one ``nn.init`` call per weight after building the layer."""

from __future__ import annotations

from netc.specs.init import LAYER_ARGS, targets

from . import ast
from .source import Span
from .values import POISON, Frame


class Inits:
    """Mixin of the Elaborator."""

    def defaults_stmt(self, stmt: ast.Defaults, frame: Frame, seen: dict) -> None:
        """``defaults weight_init=..., bias_init=...``: set for the whole body (and the blocks it
        applies); ``seen`` holds the names this body already set."""
        for a in stmt.args:
            if a.name is None:
                self.error("`defaults` takes `weight_init=` and `bias_init=`; got a value without a name", a.span,
                           frame, hint="write `defaults weight_init=normal(0.02), bias_init=zeros`")
                continue
            if a.name not in LAYER_ARGS:
                close = self.close_name(a.name, list(LAYER_ARGS))
                self.error(f"`defaults` has no argument `{a.name}`; it sets `weight_init` and `bias_init`",
                           a.span, frame, hint=f"did you mean `{close}`?" if close else None)
                continue
            if a.name in seen:
                self.error(f"`{a.name}` is set twice by `defaults` in this body", a.span, frame,
                           [("it is first set", seen[a.name])], hint="keep one of them")
                continue
            seen[a.name] = a.span
            init = self.init_value(a.value, frame, f"`{a.name}`")
            if init is not POISON and a.name not in frame.given_inits:  # the instance's own argument wins
                frame.inits[a.name] = init

    def layer_inits(self, op, explicit: dict, params: dict, span: Span, frame: Frame):
        """The node's ``inits`` from the layer's own ``weight_init``/``bias_init`` (``explicit``:
        name -> (Init, span)) over the defaults in scope; POISON after an error. The defaults
        reach every layer with weights except norms, whose gains start at 1 and shifts at 0
        (as Hugging Face's ``_init_weights`` leaves them), and ``param`` tensors, which
        have their own initialiser."""
        out: dict[str, object] = {}
        if params and op.group != "norm" and op.name != "parameter":
            for arg in LAYER_ARGS:  # in LAYER_ARGS' order: out_init over weight_init
                if arg in frame.inits:
                    out.update(dict.fromkeys(targets(arg, params), frame.inits[arg]))
        for arg in [a for a in LAYER_ARGS if a in explicit]:  # out_init over weight_init, as written in any order
            init, at = explicit[arg]
            word = LAYER_ARGS[arg]
            if not params or op.name == "parameter":
                hint = ("a `param` takes its initialiser after `=`: `param w: [4] = normal(0.02)`"
                        if op.name == "parameter" else f"`{arg}` goes on a layer with weights, like "
                                                       f"`linear(256, {arg}=...)`")
                return self.error(f"{op.name} has no weights, so `{arg}` has nothing to start", at, frame,
                                  hint=hint)
            names = targets(arg, params)
            if not names:
                hint = f"drop `{arg}`" + (" (the layer is built with bias=false)" if word == "bias" else "")
                if arg == "out_init":
                    hint = "`out_init` starts an attention layer's output projection; here use `weight_init`"
                return self.error(f"{op.name} has no {word} here (its weights: "
                                  f"{', '.join(n for n, p in params.items() if not p.buffer)})", at, frame, hint=hint)
            out.update(dict.fromkeys(names, init))
        return tuple((name, out[name]) for name in params if name in out)
