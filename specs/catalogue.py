"""The op catalogue: every built-in op of the language, declared once.

An op is a small class: its attribute schema (a frozen pydantic model that forbids unknown
fields, so a misspelled argument is an error), its shape rule, its parameters (names and
shapes, named as the PyTorch module for the op names them) and its MAC count. Backends keep
their own tables keyed by the op's name::

    @register
    class Relu(Op):
        "max(x, 0), elementwise."
        name = "relu"
        group = "activation"
        traits = frozenset({"elementwise"})

        @classmethod
        def shape(cls, xs, a):
            return xs[0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netc.compiler.dims import Dim
from netc.compiler.types import TensorType
from pydantic import BaseModel, ConfigDict


class Attrs(BaseModel):
    """Base of every attribute schema: immutable, strict about unknown names."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, arbitrary_types_allowed=True)


class NoAttrs(Attrs):
    pass


@dataclass(frozen=True)
class Param:
    """One weight of a layer. ``buffer`` weights (running stats) are state, not parameters."""

    shape: tuple[int, ...]
    buffer: bool = False
    dtype: str = "float"

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class Op:
    """Base class of a catalogue entry. Subclasses set the class attributes and override
    the classmethods they need."""

    name: ClassVar[str]
    group: ClassVar[str]  # dense, conv, pool, norm, activation, shape, recurrent, attention, math
    Attrs: ClassVar[type[Attrs]] = NoAttrs
    # How many leading positional arguments are tensors: (min, max); max None = any number.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    # Keyword arguments whose values are tensors (or tuples of tensors); they are appended,
    # flattened and in this order, to the tensor inputs: lstm(x, init=(h, c)) has inputs x, h, c.
    tensor_kwargs: ClassVar[tuple[str, ...]] = ()
    # Attribute that takes all remaining positional arguments as a tuple: reshape(x, N, T, 64).
    varargs: ClassVar[str | None] = None
    traits: ClassVar[frozenset[str]] = frozenset()  # elementwise, has_weights, stateful, random
    # The language-level signature, for docs: "conv2d(out, kernel, stride=1, ...)".
    signature: ClassVar[str] = ""

    @classmethod
    def shape(cls, xs: list[TensorType], a: Any) -> TensorType | tuple[TensorType, ...]:
        raise NotImplementedError

    @classmethod
    def params(cls, xs: list[TensorType], a: Any) -> dict[str, Param]:
        return {}

    @classmethod
    def macs(cls, xs: list[TensorType], ys: tuple[TensorType, ...], a: Any) -> Dim:
        return 0

    @classmethod
    def pack(cls, outs: tuple):
        """The value a user sees from the flat outputs: one tensor, or a (nested) tuple."""
        return outs[0] if len(outs) == 1 else outs

    @classmethod
    def doc(cls) -> str:
        return (cls.__doc__ or "").strip()


CATALOGUE: dict[str, type[Op]] = {}


def register(cls: type[Op]) -> type[Op]:
    assert cls.name not in CATALOGUE, f"op {cls.name} declared twice"
    CATALOGUE[cls.name] = cls
    return cls


def get(name: str) -> type[Op] | None:
    _load()
    return CATALOGUE.get(name)


def all_ops() -> dict[str, type[Op]]:
    _load()
    return dict(sorted(CATALOGUE.items()))


_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from netc.specs import ops  # noqa: F401  (registers every op)


@dataclass(frozen=True)
class LayerRef:
    """A layer bound with ``let`` and passed as an argument (``unembed(emb)``)."""

    scope: str  # the owning layer's scope path, e.g. "wte"
    op: str  # the owning layer's op, e.g. "embedding"
    params: dict  # name -> Param of the owning layer

    def __hash__(self) -> int:
        return hash((self.scope, self.op))


@dataclass(frozen=True)
class CellBody:
    """What ``scan`` needs to know of an elaborated cell: its weights and per-step MACs."""

    name: str
    params: dict  # name -> Param, names scoped inside the cell ("linear.weight")
    step_macs: Dim
    states: int  # how many state tensors the cell carries (h, or h and c)
    graph: Any = None  # the cell's own IR graph, for the backends

    def __hash__(self) -> int:
        return hash(self.name)
