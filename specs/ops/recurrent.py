"""Recurrent layers, batch first: ``rnn``, ``lstm``, ``gru`` (as torch.nn's), and ``scan``,
which runs a user-written cell along the time dim.

Outputs: the sequence [N, T, D*hidden] (D = 2 when bidirectional) and the final state
[layers*D, N, hidden] (for lstm both h and c; torch keeps states batch-second).
MACs: ``T * N * sum(gates * hidden * (in + hidden))`` over layers and directions, that is
``T * N`` times the number of matrix weights.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from netc.compiler.limits import MAX_REPEAT
from netc.compiler.types import ShapeError, TensorType, concrete
from netc.specs import opdef
from netc.specs.opdef import CellBody, Op, Param, register

from ._util import check_min, check_prob, expect


class RecurrentAttrs(opdef.Attrs):
    hidden: int
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between layers, as torch


class _Recurrent(Op):
    """Shared rule of rnn, lstm and gru; ``gates`` is the number of gate blocks in a weight."""

    gates: ClassVar[int]
    states: ClassVar[tuple[str, ...]] = ("h",)
    output_names = ("", "h")  # the sequence, then the states
    group = "recurrent"
    Attrs = RecurrentAttrs
    tensor_kwargs = ("init",)
    traits = frozenset({"has_weights"})

    @classmethod
    def shape(cls, xs, a):
        n, t, _ = expect(xs[0], 3, "[N, T, I]")
        check_min(1, hidden=a.hidden, layers=a.layers)
        if a.layers > MAX_REPEAT:
            raise ShapeError(f"needs layers <= {MAX_REPEAT} (the limit); got layers={a.layers}")
        check_prob("dropout", a.dropout)
        d = 2 if a.bidirectional else 1
        state = TensorType("float", (a.layers * d, n, a.hidden))
        cls._check_init(xs[1:], state)
        return (TensorType("float", (n, t, d * a.hidden)),) + (state,) * len(cls.states)

    @classmethod
    def _check_init(cls, inits: list[TensorType], state: TensorType) -> None:
        want = cls.states[0] if len(cls.states) == 1 else f"({', '.join(cls.states)})"
        k = len(cls.states)
        if inits and len(inits) != k:
            raise ShapeError(f"needs init={want}: {k} tensor{'s' if k > 1 else ''} of type {state}; "
                             f"got {len(inits)}")
        for name, x in zip(cls.states, inits):
            if x != state:
                raise ShapeError(f"needs init {name} of type {state} ([layers*directions, N, hidden]); "
                                 f"got {x}")

    @classmethod
    def params(cls, xs, a):
        size = concrete(xs[0].shape[2], "the input feature size")
        d = 2 if a.bidirectional else 1
        rows = cls.gates * a.hidden
        out = {}
        for layer in range(a.layers):
            fan_in = size if layer == 0 else d * a.hidden
            for sfx in ("", "_reverse")[:d]:
                out[f"weight_ih_l{layer}{sfx}"] = Param((rows, fan_in))
                out[f"weight_hh_l{layer}{sfx}"] = Param((rows, a.hidden))
                out[f"bias_ih_l{layer}{sfx}"] = Param((rows,))
                out[f"bias_hh_l{layer}{sfx}"] = Param((rows,))
        return out

    @classmethod
    def macs(cls, xs, ys, a):
        n, t, _ = xs[0].shape
        weights = sum(p.numel for k, p in cls.params(xs, a).items() if k.startswith("weight"))
        return t * n * weights

    @classmethod
    def pack(cls, outs):
        return tuple(outs) if len(cls.states) == 1 else (outs[0], tuple(outs[1:]))


@register
class Rnn(_Recurrent):
    """Elman RNN: h' = tanh(W x + U h + b) (or relu)."""

    name = "rnn"
    gates = 1
    signature = 'rnn(hidden, layers=1, bidirectional=false, dropout=0, nonlinearity="tanh", init=h)'

    class Attrs(RecurrentAttrs):
        nonlinearity: Literal["tanh", "relu"] = "tanh"


@register
class Lstm(_Recurrent):
    """Long short-term memory; the state is (h, c)."""

    name = "lstm"
    gates = 4
    states = ("h", "c")
    output_names = ("", "h", "c")
    signature = "lstm(hidden, layers=1, bidirectional=false, dropout=0, init=(h, c))"


@register
class Gru(_Recurrent):
    """Gated recurrent unit."""

    name = "gru"
    gates = 3
    signature = "gru(hidden, layers=1, bidirectional=false, dropout=0, init=h)"


@register
class Scan(Op):
    """Run a user-written cell along dim 1 from a zero state (or ``init``), with fixed inputs given by name."""

    # A cell input that is neither the step input nor a state is given by name and stays fixed
    # over the steps (``scan(Decoder, hidden=H, memory=enc)``): the node's inputs after the
    # sequence, in the cell's declaration order (``CellBody.fixed``); then the initial states
    # when ``init=`` gives them (``CellBody.init``). Yields the sequence of (first) states.

    name = "scan"
    group = "recurrent"
    arity = (1, None)
    traits = frozenset({"has_weights"})
    signature = "scan(cell, hidden, input=tensor, ..., init=state)"

    class Attrs(opdef.Attrs):
        cell: CellBody
        hidden: int

    @classmethod
    def shape(cls, xs, a):
        n, t, _ = expect(xs[0], 3, "[N, T, I]")
        check_min(1, hidden=a.hidden)
        return TensorType("float", (n, t, a.hidden))

    @classmethod
    def params(cls, xs, a):
        return dict(a.cell.params)

    @classmethod
    def macs(cls, xs, ys, a):
        return xs[0].shape[1] * a.cell.step_macs
