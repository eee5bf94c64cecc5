"""The memory and time a run needs, estimated from the checked shapes before anything is
allocated, and the budgets it must fit in (``netc run/verify --max-memory`` and ``--max-time``,
``max_memory=`` and ``max_time=`` in the API).

The estimate is an upper bound of what the backends hold at once, without knowing which
buffers they free early: every weight, and every tensor each node computes (its outputs, at
the run's concrete sizes), all alive together; ``verify`` counts both backends. A spec past
the budget is a :class:`BudgetError` (a ``SpecError``) at the node that needs the most memory,
with its size, before a weight or an input exists. ``MemoryError`` inside a run (NumPy or the
allocator of torch giving up) becomes the same error, without a place.

Time: a run performs at least the multiply-adds the shapes give (the MACs of ``netc summary``,
at the run's sizes; ``verify`` runs them twice, once per backend), and no CPU performs more
than :data:`~netc.compiler.limits.MAX_MACS_PER_S` a second, so a run whose MACs need longer
than the budget is a :class:`BudgetError` at the model before it starts (:func:`check_time`).
A run that fits that bound may still be slower (memory-bound ops, Python overhead): the
``netc`` command stops it at its deadline (``netc/watchdog.py``).

    >>> fmt_bytes(3 * 2**30)
    '3.0 GiB'
"""

from __future__ import annotations

import math

from netc.compiler.dims import Expr, subs, symbols
from netc.compiler.ir import Graph
from netc.compiler.limits import MAX_MACS_PER_S
from netc.compiler.source import Diagnostic, SpecError

DEFAULT_MAX_MEMORY = 4 << 30  # bytes; `--max-memory`
UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20,
         "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}
ITEMSIZE = {"int": 8, "bool": 1}  # float: the run's dtype
HINT = "run at smaller sizes (--size, -D), or raise the budget with --max-memory (max_memory= in the API)"
TIME_HINT = "run at smaller sizes (--size, -D), or raise the budget with --max-time (max_time= in the API)"


class BudgetError(SpecError):
    """A run that would need more memory than its budget."""


def parse_bytes(text: str) -> int:
    """``"512M"``, ``"4GiB"``, ``"1_000_000"`` as a number of bytes (ValueError otherwise)."""
    t = text.strip().replace("_", "").replace(",", "").upper()
    num = t.rstrip("KMGTIB")
    unit = t[len(num):]
    if unit not in UNITS or not num.replace(".", "", 1).isdigit():
        raise ValueError(f"needs a size in bytes like 512M or 4G; got {text!r}")
    return int(float(num) * UNITS[unit])


def fmt_bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} bytes"


def _numel(shape, env: dict[str, int]) -> int | None:
    out = 1
    for d in shape:
        v = subs(d, env) if isinstance(d, Expr) else d
        if isinstance(v, Expr):
            return None  # a size the inputs do not bind: not counted
        out *= max(int(v), 0)
    return out


def estimate(graph: Graph, env: dict[str, int], itemsize: int):
    """(weight bytes, activation bytes, the node needing the most, its bytes) for one run of
    ``graph`` at ``env``."""
    held = sum(math.prod(int(d) for d in p.shape) for p in graph.weights().values()) * itemsize
    total, top, top_bytes = 0, None, -1
    for node in graph.nodes():
        need = 0
        for t in node.types:
            n = _numel(t.shape, env)
            need += 0 if n is None else n * ITEMSIZE.get(t.dtype, itemsize)
        total += need
        if need > top_bytes:
            top, top_bytes = node, need
    return held, total, top, top_bytes


def check(graph: Graph, env: dict[str, int], itemsize: int, budget: int | None, copies: int = 1,
          weights: bool = True, what: str = "running") -> None:
    """Raise :class:`BudgetError` if the weights (unless ``weights`` is false: they exist
    already) and ``copies`` runs of ``graph`` at ``env`` may need more than ``budget`` bytes
    (None: no budget)."""
    if budget is None:
        return
    held, acts, node, need = estimate(graph, env, itemsize)
    total = held * weights + acts * copies
    if total <= budget:
        return
    sizes = ", ".join(f"{k}={v}" for k, v in sorted(env.items()))
    at = f" at {sizes}" if sizes else ""
    where = f"; the largest is `{node.id}` ({node.op}): {node.types[0]} needs {fmt_bytes(need)}" if node else ""
    raise BudgetError([Diagnostic(f"{what} model `{graph.name}`{at} needs about {fmt_bytes(total)}, more than "
                                  f"the memory budget of {fmt_bytes(budget)}{where}",
                                  node.span if node is not None else None, hint=HINT)])


def macs(graph: Graph, env: dict[str, int]):
    """(the multiply-adds of one run of ``graph`` at ``env``, the node doing the most, its MACs);
    a count the inputs do not bind is left out (a lower bound)."""
    total, top, top_macs = 0, None, 0
    for node in graph.nodes():
        m = subs(node.macs, env) if isinstance(node.macs, Expr) else node.macs
        if isinstance(m, Expr) or m <= 0:
            continue
        total += int(m)
        if m > top_macs:
            top, top_macs = node, int(m)
    return total, top, top_macs


def check_time(graph: Graph, env: dict[str, int], seconds: float | None, copies: int = 1,
               what: str = "running") -> None:
    """Raise :class:`BudgetError`, at the model's inputs, if ``copies`` runs of ``graph`` at ``env``
    cannot finish within ``seconds`` even at MAX_MACS_PER_S (None: no budget)."""
    if seconds is None:
        return
    total, node, most = macs(graph, env)
    need = total * copies / MAX_MACS_PER_S
    if need <= seconds:
        return
    sizes = ", ".join(f"{k}={v}" for k, v in sorted(env.items()))
    at = f" at {sizes}" if sizes else ""
    twice = f" ({copies} runs of {sci(total)})" if copies > 1 else ""
    ins = graph.input_nodes()
    notes = [(f"the most is `{node.id}` ({node.op}): {sci(most)} multiply-adds", node.span)] if node else []
    raise BudgetError([Diagnostic(f"{what} model `{graph.name}`{at} needs {sci(total * copies)} multiply-adds"
                                  f"{twice}: at least {_secs(need)} even at {sci(MAX_MACS_PER_S)} a second "
                                  f"(faster than any CPU), more than the {_secs(seconds)} left of the time budget",
                                  ins[0].span if ins else None, notes, hint=TIME_HINT)])


def sci(x: float) -> str:
    """``8.59e15``, ``1e13``, ``4096``: a count for a message."""
    return f"{x:.3g}".replace("e+", "e")


def _secs(s: float) -> str:
    return f"{s:,.0f} s" if s >= 10 else f"{s:.2g} s"


def out_of_memory(graph: Graph, budget: int | None, error: BaseException) -> BudgetError:
    """The BudgetError for a MemoryError (or torch's allocator failing) inside a run, at the
    model's first input (which node failed is not known)."""
    limit = f" (the budget is {fmt_bytes(budget)})" if budget else ""
    ins = graph.input_nodes()
    return BudgetError([Diagnostic(f"model `{graph.name}` ran out of memory{limit}: {error}",
                                   ins[0].span if ins else None, hint=HINT)])


def is_out_of_memory(error: BaseException) -> bool:
    """A MemoryError, or torch's CPU allocator failing (a RuntimeError)."""
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and (
        "can't allocate memory" in str(error) or "not enough memory" in str(error)))


def bind_from_inputs(graph: Graph, inputs) -> dict[str, int]:
    """The symbol sizes the actual input arrays give: a dim that is a plain symbol takes the
    array's size there."""
    import numpy as np  # here: the check path does not load NumPy

    env: dict[str, int] = {}
    for node, x in zip(graph.input_nodes(), inputs):
        shape = np.shape(x)
        if len(shape) != len(node.type.shape):
            continue
        for d, n in zip(node.type.shape, shape):
            if isinstance(d, Expr) and symbols(d) == {str(d)}:
                env.setdefault(str(d), int(n))
    return env
