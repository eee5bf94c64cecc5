"""Random inputs of a model's declared types, for `netc run`, `netc verify` and tests."""

from __future__ import annotations

import numpy as np
from netc.compiler.dims import Expr, subs
from netc.compiler.ir import Graph

DEFAULT_SIZES = {"N": 2}
OTHER_SIZE = 5


def bind_sizes(graph: Graph, sizes: dict[str, int] | None = None) -> dict[str, int]:
    """A concrete size for every symbol of the inputs: given ones, N=2, the rest 5."""
    env = dict(DEFAULT_SIZES)
    env.update(sizes or {})
    for n in graph.input_nodes():
        for s in sorted(n.type.symbols()):
            env.setdefault(s, OTHER_SIZE)
    return env


def concrete_shape(shape, env: dict[str, int]) -> tuple[int, ...]:
    out = []
    for d in shape:
        v = subs(d, env) if isinstance(d, Expr) else d
        if isinstance(v, Expr):
            raise TypeError(f"size {d} is not bound by {env}")
        out.append(int(v))
    return tuple(out)


def int_high(graph: Graph, input_id: str) -> int:
    """Token ids must index every embedding the input reaches, directly or through ops that
    keep ints (a reshape, a slice, a concat): below the smallest table."""
    highs, seen, todo = [], {input_id}, [input_id]
    while todo:
        for u in graph.users(todo.pop()):
            if u.op == "embedding":
                highs.append(u.attrs.num)
            elif u.op == "unembed":
                highs.append(u.attrs.layer.params["weight"].shape[0])
            elif u.id not in seen and any(t.dtype == "int" for t in u.types):
                seen.add(u.id)
                todo.append(u.id)
    return max(1, min(highs)) if highs else 2


def random_inputs(graph: Graph, sizes: dict[str, int] | None = None, seed: int = 0,
                  dtype=np.float32) -> dict[str, np.ndarray]:
    """Seeded random arrays for each model input (floats ~ N(0, 1), ints in range)."""
    rng = np.random.default_rng(seed)
    env = bind_sizes(graph, sizes)
    out = {}
    for n in graph.input_nodes():
        shape = concrete_shape(n.type.shape, env)
        if n.type.dtype == "float":
            out[n.id] = rng.standard_normal(shape).astype(dtype)
        elif n.type.dtype == "int":
            out[n.id] = rng.integers(0, int_high(graph, n.id), size=shape, dtype=np.int64)
        else:
            out[n.id] = rng.integers(0, 2, size=shape).astype(bool)
    return out
