"""Running a generated NumPy program: the source imported from a cache file (as the torch
modules are), bound to checked weights, called on arrays.

    >>> import numpy as np, netc
    >>> ex = netc.compile_file("examples/lenet.net").to_numpy("LeNet")   # seeded weights
    >>> ex(np.zeros((3, 1, 28, 28), np.float32)).shape
    (3, 10)
"""

from __future__ import annotations

import os

import numpy as np
from netc.compiler.ir import Graph

from . import budget
from .torch_modules import load_source
from .weights import WeightError, as_float, check_weights, init_weights, load_npz, state_dict_to_numpy


class NumpyProgram:
    """A model (or a pair) as a callable on NumPy arrays: ``program(*inputs)`` runs
    ``forward`` (for a pair, the first model) and returns an array, or a tuple of them.

    Attributes: ``source`` (the generated program), ``module`` (it, imported), ``weights``
    (model name -> dict of arrays), ``models`` (the model names, in order), ``max_memory``
    (bytes a call's tensors may need, estimated from the shapes at the inputs' sizes before
    it runs; None: no limit; past it, or on a ``MemoryError``, a ``BudgetError``).
    """

    def __init__(self, source: str, module, graphs: dict[str, Graph], weights: dict[str, dict],
                 max_memory: int | None = budget.DEFAULT_MAX_MEMORY):
        self.max_memory = max_memory
        self.source = source
        self.module = module
        self.graphs = graphs
        self.models = list(graphs)
        self.weights = weights

    def __call__(self, *inputs):
        return self.run(self.models[0], *inputs)

    def run(self, model: str, *inputs):
        """Run one model of the program on its inputs (arrays, in the model's input order)."""
        graph = self.graphs[model]
        want = [n.id for n in graph.input_nodes()]
        if len(inputs) != len(want):
            raise TypeError(f"{model} takes {len(want)} input(s) ({', '.join(want)}); got {len(inputs)}")
        inputs = [np.asarray(x) for x in inputs]
        floats = {x.dtype for x in inputs if x.dtype.kind == "f"}
        weights = {w.dtype for w in self.weights[model].values() if w.dtype.kind == "f"}
        if floats and weights and floats != weights:
            raise TypeError(f"{model}: the inputs are {_names(floats)} but the weights are {_names(weights)}; "
                            f"convert one (program.astype(np.float64) converts the weights)")
        itemsize = max((w.itemsize for w in floats | weights), default=4)
        budget.check(graph, budget.bind_from_inputs(graph, inputs), itemsize, self.max_memory, weights=False)
        fn = self.module.forward if len(self.models) == 1 else getattr(self.module, f"forward_{model}")
        try:
            return fn(self.weights[model], *inputs)
        except MemoryError as e:
            raise budget.out_of_memory(graph, self.max_memory, e) from None

    def release(self) -> None:
        """Free the scratch buffers the program keeps between calls (the convolutions' column
        buffers: 122 MB for ResNet-18 at batch 8); the next call allocates them again."""
        scratch = getattr(self.module, "_scratch", None)
        if scratch is not None:
            scratch(None, None)

    def astype(self, dtype) -> NumpyProgram:
        """The same program with its float weights converted to ``dtype`` (float32, float64)."""
        weights = {m: {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in w.items()}
                   for m, w in self.weights.items()}
        return NumpyProgram(self.source, self.module, self.graphs, weights, self.max_memory)

    def __repr__(self) -> str:
        return f"<netc NumPy program of {', '.join(self.models)}>"


def _names(dtypes) -> str:
    return " and ".join(sorted(str(d) for d in dtypes))


def as_arrays(weights, expected: dict | None = None) -> dict[str, np.ndarray]:
    """Weights given as a path to an .npz (its members checked against ``expected``, name ->
    shape, before they are read), a torch state_dict or a dict of arrays."""
    if isinstance(weights, (str, os.PathLike)):
        return load_npz(weights, expected)
    return state_dict_to_numpy(weights)


def build(source: str, stem: str, graphs: dict[str, Graph], weights=None, roles: dict[str, str] | None = None,
          seed: int = 0, max_memory: int | None = budget.DEFAULT_MAX_MEMORY) -> NumpyProgram:
    """Import ``source`` and bind it to weights, checked against each model's graph.

    ``weights``: None (seeded, deterministic weights of the graphs' shapes), a path to an
    .npz, a torch state_dict or a dict of arrays. For a pair (``roles``: model -> role), the
    names carry the role prefix, as the pair module's state_dict does: ``encoder.conv2d.weight``.
    """
    module = load_source(source, stem=stem, kind="numpy")
    if weights is None:
        bound = {m: init_weights(g, seed) for m, g in graphs.items()}
    else:
        expected = {(f"{roles[m]}.{k}" if roles else k): p.shape for m, g in graphs.items()
                    for k, p in g.weights().items()}
        arrays = as_arrays(weights, expected)
        if roles:
            bound = {m: {k[len(r) + 1:]: v for k, v in arrays.items() if k.startswith(r + ".")}
                     for m, r in roles.items()}
            stray = sorted(k for k in arrays if not any(k.startswith(r + ".") for r in roles.values()))
            if stray:
                raise WeightError([f"unexpected weight `{k}` (pair weights start with "
                                   f"{' or '.join(r + '.' for r in roles.values())})" for k in stray])
        else:
            bound = {m: arrays for m in graphs}
    for m, g in graphs.items():
        try:
            check_weights(g, bound[m])
        except WeightError as e:
            if not roles:
                raise
            raise WeightError([_with_role(p, roles[m]) for p in e.problems]) from None
    bound = {m: {k: as_float(k, v) for k, v in w.items()} for m, w in bound.items()}  # float16 -> float32
    return NumpyProgram(source, module, graphs, bound, max_memory)


def _with_role(problem: str, role: str) -> str:
    """The problem text with the weight name as the pair names it."""
    head, tick, rest = problem.partition("`")
    return f"{head}{tick}{role}.{rest}" if tick else problem
