"""The same model elaborated again with one scalar parameter changed, for backends that turn
a model's parameters into constructor arguments (``ResNet18(classes=10)``).

A model parameter can size a layer (``linear(classes)``), count a stack (``GPT2Block(...) *
layers``) or change the graph itself (an ``if`` on it, a repeat count of a chain of ops). The
backend cannot tell which from one graph: the IR holds values, not the expressions they came
from. So each parameter is changed once (``classes`` 1000 -> 1001; a value the spec refuses
is followed by the next candidate: ``v + 1``, ``2 * v``, ``v + 2``) and the model elaborated
again, with the same ``-D`` values, limits and ``-O`` level. The backend compares the two
graphs: a parameter whose graphs differ only in sizes it can name becomes an argument; any
other is fixed at its value (``backends/torch/params.py``).
"""

from __future__ import annotations

import numbers

from .ir import Graph
from .pipeline import Compiled, compile_spec
from .source import SpecError


def candidates(value) -> list:
    """Other values to elaborate a parameter with, the likeliest to be accepted first."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, numbers.Integral):
        v = int(value)
        return [v + 1, 2 * v, v + 2] if v else [1, 2]
    if isinstance(value, float):
        return [value / 2, value * 2] if value else [0.5]
    return []  # a string or tuple: no size, fixed at its value


def perturbed(compiled: Compiled, model: str) -> dict[str, Graph | None]:
    """Each scalar parameter of ``model`` -> the model's graph with that parameter changed
    (None where no candidate value gives a graph)."""
    graph = compiled.graphs[model]
    others = {p for name, g in compiled.graphs.items() if name != model for p in g.params}
    # a -D value only other models use would be an unused -D when this model is compiled alone
    defines = {k: v for k, v in compiled.defines.items() if k in graph.params or k not in others}
    out: dict[str, Graph | None] = {}
    for name, value in graph.params.items():
        out[name] = None
        for v in candidates(value):
            try:
                c = compile_spec(compiled.path, {**defines, name: v}, [model], max_params=compiled.max_params,
                                 allow_imports_outside=compiled.allow_imports_outside)
            except (SpecError, RecursionError):
                continue
            g = c.graphs.get(model)
            if g is None:
                continue
            if compiled.level:
                from .passes import optimize

                g = optimize(g, compiled.level, compiled.disable).graph
            out[name] = g
            break
    return out
