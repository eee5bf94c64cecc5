"""One lowering per op: how a node reads in generated PyTorch source.

A lowering returns a :class:`Lowered`: the module the node owns (its constructor call, when
the op has weights or state) and the forward expression. Both are format strings whose
``{}`` holes take *values* (sizes, flags, rates) given beside them with a label; the emitter
renders each value as a literal, or, where instances of one block class differ, as a
constructor argument of that class. Named holes: ``{x0}``, ``{x1}``… the tensor inputs,
``{m}`` the node's module (``self.conv2d``). Values may be symbolic sizes (``Expr``); the
emitter turns them into expressions over the input shapes.

    @lowering("conv2d")
    def conv2d(node, xs):
        a = node.attrs
        return Lowered(
            module=Code("nn.Conv2d({}, {}, kernel_size={}, ...)", [("in_channels", xs[0].shape[1]), ...]),
            expr=Code("{m}({x0})"),
        )
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netc.compiler.ir import Node
from netc.compiler.types import TensorType


@dataclass(frozen=True)
class Code:
    """A format string and the labelled values for its ``{}`` holes."""

    template: str
    values: tuple[tuple[str, Any], ...] = ()

    def __init__(self, template: str, values=()):
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "values", tuple(values))


@dataclass(frozen=True)
class Lowered:
    expr: Code  # the forward expression
    module: Code | None = None  # constructor of the node's own module, if it has one
    unpack: str | None = None  # how the outputs unpack, e.g. "{0}, ({1}, {2})" for lstm
    helpers: frozenset[str] = field(default_factory=frozenset)  # prelude pieces it needs


LOWERINGS: dict[str, Callable[[Node, list[TensorType]], Lowered]] = {}


class LoweringError(ValueError):
    """An op (or a fused step or activation) the torch backend has no lowering for."""


def lower(node: Node, xs: list[TensorType]) -> Lowered:
    """The node's lowering; a :class:`LoweringError` naming the op when it has none."""
    fn = LOWERINGS.get(node.op)
    if fn is None:
        raise LoweringError(f"the torch backend has no lowering for the op `{node.op}` (node `{node.id}`): "
                            f"add one with @lowering({node.op!r}) in backends/torch/ops.py")
    return fn(node, xs)


def lowering(name: str):
    def register(fn):
        if name in LOWERINGS:
            raise ValueError(f"two torch lowerings for {name}")
        LOWERINGS[name] = fn
        return fn

    return register
