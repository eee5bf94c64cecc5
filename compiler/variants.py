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

import hashlib
import numbers
import threading
from collections import OrderedDict
from pathlib import Path

from . import ast
from .elaborate import Elaborator
from .ir import Graph
from .loader import load
from .pipeline import Compiled, parse_defines
from .source import Diagnostics, TooManyErrors


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


MAX_NODES = 2000  # a model with more nodes is not elaborated again: its parameters are fixed
_CACHE: OrderedDict[tuple, dict] = OrderedDict()  # what perturbed() gave, by the files' contents and options
_CACHE_SIZE = 32
_LOCK = threading.Lock()


def perturbed(compiled: Compiled, model: str) -> dict[str, Graph | None]:
    """Each scalar parameter of ``model`` -> the model's graph with that parameter changed
    (None where no candidate value gives a graph without errors). The files are read and
    parsed once; the model is elaborated once per candidate. Kept per process for the same
    file contents, values and options (the same dict each time: callers must not change it)."""
    key = _key(compiled, model)
    with _LOCK:
        if key is not None and key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    out = _perturbed(compiled, model)
    if key is not None:
        with _LOCK:
            _CACHE[key] = out
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return out


def _key(compiled: Compiled, model: str) -> tuple | None:
    """What the graphs depend on: the files read (by content), the model's parameter values
    (-D applied), the -D values, limits and passes; None when a file cannot be read again."""
    try:
        files = tuple((p, hashlib.sha256(Path(p).read_bytes()).hexdigest()) for p in compiled.sources)
    except OSError:
        return None
    params = compiled.graphs[model].params
    nodes = tuple((n.id, n.op) for n in compiled.graphs[model].nodes())  # (the graph itself: -O levels differ)
    return (compiled.path, files, model, nodes, repr(sorted(params.items())), repr(sorted(compiled.defines.items())),
            compiled.level, tuple(compiled.disable), compiled.max_params, compiled.allow_imports_outside)


def _perturbed(compiled: Compiled, model: str) -> dict[str, Graph | None]:
    graph = compiled.graphs[model]
    out: dict[str, Graph | None] = dict.fromkeys(graph.params)
    if len(graph.nodes()) > MAX_NODES:  # each elaboration costs as much again: parameters fixed
        return out
    ws = load(compiled.path, Diagnostics(), compiled.allow_imports_outside)
    decl = ws.namespaces.get(ws.root, {}).get(model) if ws.root else None
    if not isinstance(decl, ast.FuncDecl):  # (the file changed since it was compiled)
        return out
    for name, value in graph.params.items():
        for v in candidates(value):
            values, bad = parse_defines({**compiled.defines, name: v})
            changed = None if bad else _elaborate(ws, decl, values, compiled.max_params)
            if changed is not None:
                if compiled.level:
                    from .passes import optimize

                    changed = optimize(changed, compiled.level, compiled.disable).graph
                out[name] = changed
                break
    return out


def _elaborate(ws, decl: ast.FuncDecl, values: dict, max_params: int) -> Graph | None:
    """The model's graph with these ``-D`` values; None on any error."""
    diags = Diagnostics()
    try:
        g = Elaborator(ws, diags, values).model(decl)
    except (TooManyErrors, RecursionError):
        return None
    except Exception:  # noqa: BLE001 -- a value the spec cannot take, however it fails: the parameter is fixed
        return None
    if g is None or diags.items or g.param_count() > max_params:
        return None
    return g
