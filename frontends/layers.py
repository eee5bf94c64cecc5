"""The importer's middle: a model as a list of netc layers (one op application each), in an
order where every layer comes after the layers it reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}


@dataclass
class Layer:
    """One netc op application. ``args``/``kwargs``: its compile-time arguments as written;
    ``inputs``: the values it reads (ONNX value names); ``weights``: its parameters in the
    order the catalogue declares them (``weight``, ``bias``, …); ``source``: the ONNX node
    it was recognised from (its name gives names to blocks)."""

    op: str
    inputs: list[str]
    output: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    weights: list[np.ndarray] = field(default_factory=list)
    source: str = ""
    scalar: float | None = None  # a binary op with a number: x * 0.5 (``inputs`` has one value)
    scalar_left: bool = False  # 0.5 - x rather than x - 0.5
    origin: str | None = None  # the initializer its weight is (ties an output projection to an embedding)
    shared: str | None = None  # an embedding used twice: its `let` name
    shared_ref: str | None = None  # unembed: the `let` layer it reads
    taken: set = field(default_factory=set)  # a pattern's ONNX nodes (ids)

    @property
    def binary(self) -> bool:
        return self.op in BINARY

    def values(self) -> list:
        """The arguments a block may turn into its parameters: ints, floats and int tuples."""
        out = [("arg", i, a) for i, a in enumerate(self.args) if _parametric(a)]
        out += [("kw", k, v) for k, v in self.kwargs.items() if _parametric(v)]
        return out

    def structure(self) -> tuple:
        """What two layers must share to be copies of one layer in a block: the op, which
        arguments it has, its fixed (bool, string) arguments; not the numbers."""
        args = tuple(a if not _parametric(a) else type(a).__name__ for a in self.args)
        # numbers given by keyword may be left at their default in one copy and not in another
        kw = tuple(sorted((k, v) for k, v in self.kwargs.items() if not _parametric(v)))
        return (self.op, args, kw, self.scalar is not None, self.scalar_left, len(self.inputs))


def default(op: str, key: str):
    """The catalogue's default of an op's keyword argument (``stride`` of conv2d: 1)."""
    from netc.specs.catalogue import get

    entry = get(op)
    field = getattr(getattr(entry, "Attrs", None), "model_fields", {}).get(key)
    return None if field is None else field.default


def _parametric(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    return isinstance(v, tuple) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
