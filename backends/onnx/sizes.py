"""Symbolic sizes at run time: a netc size expression (``N``, ``W2 - 2 * W``, ``(H + 1) // 2``)
as a 1-element int64 ONNX tensor, read from the runtime shapes of the values that have its
parts (``Shape``) and computed with integer ``Add``/``Mul``/``Sub``; a floor division is
``(a - Mod(a, k)) / k`` (ONNX's integer ``Div`` truncates; ``Mod`` takes the divisor's sign,
as Python's). Pad widths, expand sizes, repeat counts and reshape targets use it."""

from __future__ import annotations

from netc.compiler.dims import Expr, FloorDiv


class SizeError(ValueError):
    """A symbol that no value in reach has as a dim."""


def find(b, d, sources) -> str | None:
    """``d`` read from the shape of a value that has it as a whole dim (the node's inputs
    first, then the graph's inputs), or None."""
    for v in [*sources, *b.inputs]:
        t = b.types.get(v)
        if t is None:
            continue
        for i, s in enumerate(t.shape):
            if s == d:
                return b.dim(v, i)
    return None


def size(b, d, sources=()) -> str:
    """The size ``d`` (an int or an :class:`Expr`) as a 1-element int64 tensor."""
    if isinstance(d, int):
        return b.ints([d])
    key = ("size", str(d))
    if key in b.cache:
        return b.cache[key]
    found = find(b, d, sources)
    if found is None:
        total = None
        for mono, coef in d.terms:
            term = None
            for atom in mono:
                v = _atom(b, atom, sources)
                term = v if term is None else b.add("Mul", [term, v])
            if term is None:
                term = b.ints([coef])
            elif coef != 1:
                term = b.add("Mul", [term, b.ints([coef])])
            total = term if total is None else b.add("Add", [total, term])
        found = total
    b.cache[key] = found
    return found


def _atom(b, atom, sources) -> str:
    whole = Expr({(atom,): 1})
    found = find(b, whole, sources)
    if found is not None:
        return found
    if isinstance(atom, str):
        raise SizeError(f"no input has the size {atom}")
    assert isinstance(atom, FloorDiv)
    num, den = size(b, atom.num, sources), b.ints([atom.den])
    return b.add("Div", [b.add("Sub", [num, b.add("Mod", [num, den])]), den])


def shape_tensor(b, dims, sources) -> str:
    """A 1-d int64 shape tensor for ``dims`` (ints and size expressions); a size that cannot
    be read is -1 (one at most)."""
    if all(isinstance(d, int) for d in dims):
        return b.ints(list(dims), "shape")
    parts, unknown = [], 0
    for d in dims:
        try:
            parts.append(size(b, d, sources))
        except SizeError:
            unknown += 1
            parts.append(b.ints([-1]))
    if unknown > 1:
        raise SizeError("cannot compute the target shape at run time (two sizes unknown)")
    return parts[0] if len(parts) == 1 else b.add("Concat", parts, axis=0)
