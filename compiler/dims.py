"""Symbolic dimensions: integer expressions over named symbols, kept in canonical form.

A dimension is a plain ``int`` or an :class:`Expr`. Every operation returns the canonical
result, and an ``Expr`` whose value is constant collapses back to ``int``, so shape rules are
written once with ordinary Python arithmetic and work for concrete and symbolic sizes alike::

    >>> T = sym("T")
    >>> (T + 2 - 3) + 1
    T
    >>> (sym("H") + 2 * 1 - 1 * (3 - 1) - 1) // 2 + 1
    (H + 1) // 2

Canonical form: a polynomial with integer coefficients whose atoms are symbols or
floor divisions ``(p) // k`` of a polynomial by a positive integer. ``e // k`` splits off the
part of ``e`` that ``k`` divides exactly, and nested floor divisions merge
(``((H + 1) // 2 + 1) // 2`` is ``(H + 3) // 4``). ``e % k`` is ``e - k * (e // k)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Union

from .limits import MAX_DIM_TERMS
from .records import Record

Dim = Union[int, "Expr"]


class DimError(ValueError):
    """An arithmetic on dimensions that has no integer answer (``500 / 8``, ``H / 0``)."""


def _too_big() -> DimError:
    return DimError(f"a symbolic size has grown past {MAX_DIM_TERMS} terms or 1024-bit numbers (the limit)")


class FloorDiv(Record):
    """The atom ``num // den`` where ``num`` cannot be divided exactly by ``den`` > 1."""

    num: Expr
    den: int

    def __lt__(self, other: FloorDiv) -> bool:  # (deterministic sorting)
        return (self.num, self.den) < (other.num, other.den)

    def __str__(self) -> str:
        return _floor_str(self, _same)


def _atom_key(a: str | FloorDiv) -> tuple[int, str]:
    return (0, a) if isinstance(a, str) else (1, str(a))


Monomial = tuple  # sorted tuple of atoms (str | FloorDiv), with repetition for powers


def _mono_key(m: Monomial) -> tuple:
    return (len(m) == 0, tuple(_atom_key(a) for a in m))


class Expr:
    """A canonical integer polynomial over symbols and floor-division atoms."""

    __slots__ = ("_hash", "terms")

    def __init__(self, terms: dict[Monomial, int]):
        items = [(m, c) for m, c in terms.items() if c != 0]
        items.sort(key=lambda mc: _mono_key(mc[0]))
        self.terms: tuple[tuple[Monomial, int], ...] = tuple(items)
        self._hash = hash(self.terms)

    @staticmethod
    def _canonical(terms: tuple[tuple[Monomial, int], ...]) -> Expr:
        """An Expr of terms already in canonical order, none zero (a product by a nonzero int,
        a sum with an int: the arithmetic on the checker's hot path skips the sort)."""
        e = object.__new__(Expr)
        e.terms, e._hash = terms, hash(terms)
        return e

    # -- construction -------------------------------------------------------------------
    @staticmethod
    def of(x: Dim) -> Expr:
        if isinstance(x, Expr):
            return x
        if isinstance(x, bool) or not isinstance(x, int):
            raise TypeError(f"not a dimension: {x!r}")
        return Expr({(): x})

    def _norm(self) -> Dim:
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return self

    def const(self) -> int:
        """The constant term."""
        return dict(self.terms).get((), 0)

    # -- arithmetic ---------------------------------------------------------------------
    def __add__(self, other: Dim) -> Dim:
        if type(other) is int:  # only the constant term changes; it sorts last
            if other == 0:
                return self._norm()
            terms = self.terms
            if terms and terms[-1][0] == ():
                c = terms[-1][1] + other
                terms = terms[:-1] + (((), c),) if c else terms[:-1]
            else:
                terms = terms + (((), other),)
            return Expr._canonical(terms)._norm()
        if not isinstance(other, (int, Expr)) or isinstance(other, bool):
            return NotImplemented
        acc = dict(self.terms)
        for m, c in Expr.of(other).terms:
            acc[m] = acc.get(m, 0) + c
        return Expr(acc)._norm()

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return Expr({m: -c for m, c in self.terms})._norm()

    def __sub__(self, other: Dim) -> Dim:
        if not isinstance(other, (int, Expr)) or isinstance(other, bool):
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other: Dim) -> Dim:
        return (-self) + other

    def __mul__(self, other: Dim) -> Dim:
        if type(other) is int:  # the same monomials, in the same order
            if other == 0 or other == 1:
                return self._norm() if other else 0
            terms = tuple((m, c * other) for m, c in self.terms)
            if any(c.bit_length() > 1024 for _, c in terms):
                raise _too_big()
            return Expr._canonical(terms)._norm()
        if not isinstance(other, (int, Expr)) or isinstance(other, bool):
            return NotImplemented
        acc: dict[Monomial, int] = {}
        for m1, c1 in self.terms:
            for m2, c2 in Expr.of(other).terms:
                m = tuple(sorted(m1 + m2, key=_atom_key))
                acc[m] = acc.get(m, 0) + c1 * c2
        # products are where sizes grow (a square doubles the terms' degree and digits): bound them
        if len(acc) > MAX_DIM_TERMS or any(c.bit_length() > 1024 for c in acc.values()):
            raise _too_big()
        return Expr(acc)._norm()

    __rmul__ = __mul__

    def __floordiv__(self, other: Dim) -> Dim:
        return floordiv(self, other)

    def __rfloordiv__(self, other: Dim) -> Dim:
        return floordiv(other, self)

    def __mod__(self, other: Dim) -> Dim:
        return self - other * floordiv(self, other)

    def __rmod__(self, other: Dim) -> Dim:
        return other - self * floordiv(other, self)

    # -- comparison: structural ----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Expr):
            return self.terms == other.terms
        return False  # a canonical Expr is never a constant

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: Expr) -> bool:  # only for deterministic sorting
        return str(self) < str(other)

    # -- printing -----------------------------------------------------------------------
    def __str__(self) -> str:
        return _expr_str(self, _same)

    __repr__ = __str__


def _same(name: str) -> str:
    return name


def _expr_str(e: Expr, name: Callable[[str], str], mul: str = "*") -> str:
    out = ""
    for i, (m, c) in enumerate(e.terms):
        mag = abs(c)
        body = _mono_str(m, name, wrap=mag != 1 or c < 0, mul=mul)
        text = str(mag) if not body else (body if mag == 1 else f"{mag}{mul}{body}")
        if i == 0:
            out = ("-" if c < 0 else "") + text
        else:
            out += (" - " if c < 0 else " + ") + text
    return out


def _floor_str(f: FloorDiv, name: Callable[[str], str], mul: str = "*") -> str:
    num = _expr_str(f.num, name, mul)
    return f"({num}) // {f.den}" if len(f.num.terms) > 1 else f"{num} // {f.den}"


def _mono_str(m: Monomial, name: Callable[[str], str], wrap: bool = False, mul: str = "*") -> str:
    parts = []
    for a in m:
        if isinstance(a, str):
            parts.append(name(a))
        elif isinstance(a, _Code):
            parts.append(a.text)
        else:
            s = _floor_str(a, name, mul)
            parts.append(f"({s})" if len(m) > 1 or wrap else s)
    return mul.join(parts)


def code(d: Dim, name: Callable[[str], str], atoms: dict | None = None, mul: str = "*") -> str:
    """``d`` as a Python expression, built from its terms: each symbol written as
    ``name(symbol)`` (an input's ``x.shape[1]``, a local variable), and each floor division
    that ``atoms`` holds as its code there (``H // 8`` as ``skip.shape[2]``), never by
    substituting into its text. ``code(d, str)`` is ``str(d)``, which is valid Python itself;
    ``mul=" * "`` spaces products as ruff formats them (``2 * x.shape[1]``)."""
    if isinstance(d, int):
        return str(d)
    if not atoms:
        return _expr_str(d, name, mul)
    return _expr_str(Expr({tuple(_Code(atoms[a]) if a in atoms else a for a in m): c for m, c in d.terms}), name, mul)


class _Code(Record):
    """Code text standing for an atom (only while printing)."""

    text: str

    def __str__(self) -> str:
        return self.text


def free_symbols(d: Dim, atoms=()) -> set[str]:
    """The symbols of ``d`` outside the floor divisions ``atoms`` (those that code() needs)."""
    if isinstance(d, int):
        return set()
    out: set[str] = set()
    for m, _ in d.terms:
        for a in m:
            if isinstance(a, str):
                out.add(a)
            elif a not in atoms:
                out |= free_symbols(a.num, atoms)
    return out


def sym(name: str) -> Expr:
    """The dimension named ``name``."""
    return Expr({(name,): 1})


def is_dim(x: object) -> bool:
    return isinstance(x, Expr) or (isinstance(x, int) and not isinstance(x, bool))


def floordiv(a: Dim, b: Dim) -> Dim:
    """``a // b`` in canonical form. Division by a symbolic divisor works only when exact."""
    if isinstance(b, Expr):
        if a == b:
            return 1
        q = _exact_quotient(a, b)
        if q is None:
            raise DimError(f"cannot divide {a} by the symbolic size {b}")
        return q
    if b == 0:
        raise DimError("division by zero")
    if isinstance(a, int):
        return a // b
    if b < 0:
        return floordiv(-a, -b)
    if b == 1:
        return a
    quot: dict[Monomial, int] = {}
    rem: dict[Monomial, int] = {}
    for m, c in a.terms:
        quot[m], rem[m] = divmod(c, b)
    q, r = Expr(quot)._norm(), Expr(rem)._norm()
    if isinstance(r, int):  # 0 <= r < b
        return q
    return q + _floordiv_atom(r, b)


def _floordiv_atom(r: Expr, b: int) -> Dim:
    # floor((g*e + c) / (g*k)) == floor((e + c // g) / k): divide out the common factor g of
    # b and the non-constant coefficients, so (2*H + 2) // 4 is (H + 1) // 2.
    nonconst = [(m, c) for m, c in r.terms if m != ()]
    g = math.gcd(b, *(c for _, c in nonconst))
    if g > 1:
        return floordiv(Expr({m: c // g for m, c in r.terms})._norm(), b // g)
    # floor((floor(e / m) + c) / b) == floor((e + c*m) / (m*b)) for positive m, b.
    if len(nonconst) == 1 and nonconst[0][1] == 1 and len(nonconst[0][0]) == 1:
        atom = nonconst[0][0][0]
        if isinstance(atom, FloorDiv):
            return floordiv(atom.num + r.const() * atom.den, atom.den * b)
    return Expr({(FloorDiv(r, b),): 1})


def _exact_quotient(a: Dim, b: Expr) -> Dim | None:
    """``a / b`` when ``b`` is a single monomial dividing every term of ``a``; else None."""
    if len(b.terms) != 1:
        return None
    (bm, bc), = b.terms
    acc: dict[Monomial, int] = {}
    for m, c in Expr.of(a).terms:
        rest = list(m)
        for atom in bm:
            if atom not in rest:
                return None
            rest.remove(atom)
        if c % bc:
            return None
        acc[tuple(rest)] = c // bc
    return Expr(acc)._norm()


def exact_div(a: Dim, b: Dim) -> Dim:
    """``a / b`` that must be exact: ``512 / 8`` is ``64``; ``500 / 8`` raises DimError."""
    if isinstance(b, int):
        if b == 0:
            raise DimError("division by zero")
        if isinstance(a, int):
            if a % b:
                raise DimError(f"{a} / {b} is not exact ({a} is not a multiple of {b})")
            return a // b
        if all(c % b == 0 for _, c in a.terms):
            return Expr({m: c // b for m, c in a.terms})._norm()
        raise DimError(f"{a} / {b} is not exact; write {a} // {b} to round down")
    q = _exact_quotient(a, b) if a != b else 1
    if q is None:
        raise DimError(f"{a} / {b} is not exact")
    return q


def symbols(d: Dim) -> set[str]:
    """The free symbols of a dimension."""
    out: set[str] = set()
    if isinstance(d, Expr):
        for m, _ in d.terms:
            for a in m:
                out |= {a} if isinstance(a, str) else symbols(a.num)
    return out


def subs(d: Dim, env: dict[str, Dim]) -> Dim:
    """``d`` with each symbol named in ``env`` replaced by its value, re-canonicalised."""
    if isinstance(d, int):
        return d
    total: Dim = 0
    for m, c in d.terms:
        term: Dim = c
        for a in m:
            term = term * (env.get(a, sym(a)) if isinstance(a, str) else floordiv(subs(a.num, env), a.den))
        total = total + term
    return total


def product(dims) -> Dim:
    out: Dim = 1
    for d in dims:
        out = out * d
    return out


def fmt(d: Dim) -> str:
    return str(d)
