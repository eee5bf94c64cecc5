"""The kernel table and the decorators that fill it.

``@kernel("relu")`` registers a kernel under an op name; ``@helper`` registers a private
function that kernels call. Both keep the registration order, which is the order their
sources appear in a generated program, so the output is byte-stable.

A kernel's source is copied into the standalone program (decorators dropped), so its body
may use only ``np``, ``math``, its arguments, and helpers or other kernels by name.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable

KERNELS: dict[str, Callable] = {}  # op name -> kernel
ORDER: dict[str, Callable] = {}  # function name -> kernel or helper, in registration order


def _register(fn: Callable) -> None:
    if fn.__name__ in ORDER:
        raise ValueError(f"two kernel functions named {fn.__name__}")
    ORDER[fn.__name__] = fn


def kernel(op: str):
    """Register ``fn`` as the kernel of ``op``; the function name may differ (``sum_``)."""

    def register(fn: Callable) -> Callable:
        if op in KERNELS:
            raise ValueError(f"two NumPy kernels for {op}")
        KERNELS[op] = fn
        _register(fn)
        return fn

    return register


def helper(fn: Callable) -> Callable:
    """Register a private function that kernels call; it is copied into programs that need it."""
    _register(fn)
    return fn


@functools.cache  # read once per process: every NumPy program build asks again
def source(fn: Callable) -> str:
    """The function's source as it goes into a program: dedented, without decorators."""
    text = textwrap.dedent(inspect.getsource(fn))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    return "\n".join(lines[start:]).rstrip() + "\n"


@functools.cache
def _names(fn: Callable) -> frozenset[str]:
    return frozenset(n.id for n in ast.walk(ast.parse(source(fn))) if isinstance(n, ast.Name))


def _references(fn: Callable) -> set[str]:
    return _names(fn) & ORDER.keys() - {fn.__name__}


def closure(fns: list[Callable]) -> list[Callable]:
    """``fns`` and every helper or kernel they call, transitively, in registration order."""
    seen: set[str] = set()
    todo = [f.__name__ for f in fns]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += sorted(_references(ORDER[name]))
    return [fn for name, fn in ORDER.items() if name in seen]
