"""Tensor types: a dtype and a shape of concrete and symbolic dimensions."""

from __future__ import annotations

from .dims import Dim, Expr, product, symbols
from .records import Record

DTYPES = ("float", "int", "bool")


class ShapeError(ValueError):
    """A shape rule's complaint, in plain words. The checker attaches the span.

    ``hint`` is an optional suggested fix shown under the diagnostic.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class TensorType(Record):
    dtype: str
    shape: tuple[Dim, ...]

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown element type {self.dtype!r}")

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]"

    def shape_str(self) -> str:
        return f"[{', '.join(str(d) for d in self.shape)}]"

    def numel(self) -> Dim:
        return product(self.shape)

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for d in self.shape:
            out |= symbols(d)
        return out

    def is_concrete(self) -> bool:
        return not any(isinstance(d, Expr) for d in self.shape)

    def with_shape(self, shape) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    # -- helpers for shape rules -------------------------------------------------------
    def expect_rank(self, *ranks: int, what: str = "input", layout: str = "") -> tuple[Dim, ...]:
        """The dims, after checking the rank is one of ``ranks``."""
        if self.rank not in ranks:
            want = " or ".join(f"{r}-d" for r in ranks)
            lay = f" {layout}" if layout else ""
            raise ShapeError(f"needs a {want} {what}{lay}; got {self}")
        return self.shape

    def expect_float(self, what: str = "input") -> None:
        if self.dtype != "float":
            raise ShapeError(f"needs a float {what}; got {self}")

    def dim(self, axis: int) -> Dim:
        return self.shape[normalize_axis(axis, self.rank)]


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        valid = f" (its dims are {-rank} to {rank - 1})" if rank else ""
        raise ShapeError(f"dim {axis} is out of range for a {rank}-d tensor{valid}")
    return axis % rank if rank else 0


def concrete(d: Dim, what: str) -> int:
    """``d`` as an int, or a ShapeError saying that ``what`` must be known at compile time."""
    if isinstance(d, Expr):
        raise ShapeError(f"cannot size its weights: {what} must be a concrete size; got {d}",
                         hint="give that dimension a concrete size in the model's input type")
    return d
