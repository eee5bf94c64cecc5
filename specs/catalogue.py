"""The op catalogue: every built-in op of the language, declared once.

An op is a small class: its attribute schema (a frozen `Attrs`, checked by pydantic-core, that forbids unknown
fields, so a misspelled argument is an error), its shape rule, its parameters (names and
shapes, named as the PyTorch module for the op names them), its MAC count, and its traits:
the facts about it that passes and backends act on (see :class:`Op`). Passes read traits
(:func:`has_trait`), never lists of op names, so a new op is picked up wherever its traits
say; backends keep only their lowering tables keyed by the op's name::

    @register
    class Relu(Op):
        "max(x, 0), elementwise."
        name = "relu"
        group = "activation"
        traits = frozenset({"elementwise", "unary_elementwise", "activation"})

        @classmethod
        def shape(cls, xs, a):
            return xs[0]
"""

from __future__ import annotations

from netc.specs import ops  # noqa: F401  (registers every op)
from netc.specs.opdef import (  # noqa: F401  (the catalogue's vocabulary, for its users)
    CATALOGUE,
    Attrs,
    CellBody,
    LayerRef,
    NoAttrs,
    Op,
    OpWithTrait,
    Param,
    has_trait,
    lookup,
    op_with,
    register,
    traits,
)


def get(name: str) -> type[Op] | None:
    return CATALOGUE.get(name)


def all_ops() -> dict[str, type[Op]]:
    return dict(sorted(CATALOGUE.items()))
