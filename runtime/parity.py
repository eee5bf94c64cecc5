"""Running a model on seeded random inputs, and checking torch against NumPy: what
``netc run`` and ``netc verify`` print.

Weights: ``torch.manual_seed(seed)`` and a fresh module from :meth:`Program.to_torch`, so
the weights are torch's default initialisation; for ``verify`` they are then redrawn so that
signals keep their scale through deep networks (:mod:`netc.runtime.scaled_init`: fan-in
scaled, batch-norm statistics measured on the inputs and randomised). The NumPy program gets
that module's ``state_dict``, so both backends run the same weights for the same seed.
``verify`` also fails an output whose comparison would be vacuous: zero or too small for its
float type, or one that other inputs do not change past the tolerance. Without torch,
the NumPy side falls back to :func:`netc.runtime.weights.init_weights` (seeded too, but
not the same numbers). Inputs: :func:`netc.runtime.inputs.random_inputs` with the same
seed. Everything runs in eval mode (dropout off, batch-norm running statistics).

    >>> import netc
    >>> prog = netc.compile_file("examples/lenet.net")
    >>> [r.ok for r in verify(prog, "LeNet")]
    [True]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import budget
from .budget import DEFAULT_MAX_MEMORY
from .inputs import bind_sizes, random_inputs
from .scaled_init import scale_weights
from .weights import init_weights

DTYPES = {"float32": np.float32, "float64": np.float64}
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}  # max abs diff / max |torch output|


@dataclass
class Output:
    """One output of one run: its name, the array and, for verify, its difference to torch."""

    name: str
    value: np.ndarray
    max_abs: float = 0.0
    max_rel: float = 0.0
    problem: str | None = None  # a shape or dtype mismatch, a non-finite value on one side
    note: str | None = None  # what verify says without failing (both sides non-finite alike)
    vacuous: str | None = None  # why comparing it shows nothing (verify fails: see ``vacuous``)


@dataclass
class Run:
    """One model run: which model, on which backend, at which sizes, and its outputs."""

    model: str
    backend: str
    sizes: dict[str, int]
    outputs: list[Output] = field(default_factory=list)


@dataclass
class Verified:
    """One model through both backends: the NumPy outputs compared with torch's."""

    model: str
    sizes: dict[str, int]
    outputs: list[Output]
    tol: float

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((o.max_rel for o in self.outputs), default=0.0)

    @property
    def ok(self) -> bool:
        return self.agree and not self.is_vacuous

    @property
    def agree(self) -> bool:
        return all(o.problem is None for o in self.outputs) and self.max_rel <= self.tol

    @property
    def is_vacuous(self) -> bool:
        return any(o.vacuous for o in self.outputs)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_module(prog, name: str, seed: int, dtype: str):
    """A fresh module of a model or pair, initialised under ``torch.manual_seed(seed)``, eval."""
    torch = _torch()
    if torch is None:
        raise ImportError("this needs torch, which is not installed: pip install 'netc[torch]'")
    torch.manual_seed(seed)
    return prog.to_torch(name).eval().to(getattr(torch, dtype))


def _members(prog, name: str, module):
    """(model, its torch module or None, the pair role or None) for a model or a pair."""
    if name in prog.pairs:
        return [(m, None if module is None else getattr(module, role), role) for role, m in prog.pairs[name].roles]
    return [(name, module, None)]


def _names(graph) -> list[str]:
    many = len(graph.outputs) > 1
    return [n or (f"output{i}" if many else "output") for i, (n, _) in enumerate(graph.outputs)]


def _as_tuple(y) -> tuple:
    return y if isinstance(y, tuple) else (y,)


def call_torch(module, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    torch = _torch()
    with torch.no_grad():
        # (not np.ascontiguousarray: it makes a 0-d input 1-d)
        out = module(*(torch.from_numpy(x if x.flags.c_contiguous else x.copy()) for x in inputs.values()))
    return tuple(torch.as_tensor(o).numpy() for o in _as_tuple(out))


def run(prog, name: str, backend: str, seed: int = 0, dtype: str = "float32",
        sizes: dict[str, int] | None = None, max_memory: int | None = DEFAULT_MAX_MEMORY,
        max_time: float | None = None) -> list[Run]:
    """Run a model (or each model of a pair) on seeded random inputs with seeded weights.

    ``max_memory``: bytes the run may need, estimated from the shapes before anything is
    allocated (None: no limit); past it, :class:`~netc.runtime.budget.BudgetError`.
    ``max_time``: seconds; a run whose multiply-adds cannot be done in that time at
    ``limits.MAX_MACS_PER_S`` is a ``BudgetError`` before it starts (the call is not stopped
    once it runs: the ``netc`` command does that)."""
    return _bounded(prog, name, dtype, sizes, max_memory, max_time, 1, "running",
                    lambda: _run(prog, name, backend, seed, dtype, sizes))


def _bounded(prog, name: str, dtype: str, sizes, max_memory: int | None, max_time: float | None, copies: int,
             what: str, work):
    """``work()`` once the shapes say it fits in ``max_memory`` and ``max_time``; running out of
    memory anyway becomes the same located diagnostic."""
    _within_budget(prog, name, dtype, sizes, max_memory, copies=copies, what=what)
    for model in prog.members(name):
        graph = prog.graph(model)
        budget.check_time(graph, bind_sizes(graph, sizes), max_time, copies, what)
    try:
        return work()
    except (MemoryError, RuntimeError) as e:
        if budget.is_out_of_memory(e):
            raise budget.out_of_memory(prog.graph(prog.members(name)[0]), max_memory, e) from None
        raise


def _within_budget(prog, name: str, dtype: str, sizes, max_memory: int | None, copies: int, what: str) -> None:
    for model in prog.members(name):
        graph = prog.graph(model)
        budget.check(graph, bind_sizes(graph, sizes), np.dtype(DTYPES[dtype]).itemsize, max_memory, copies,
                     what=what)


def _run(prog, name: str, backend: str, seed: int, dtype: str, sizes: dict[str, int] | None) -> list[Run]:
    use_torch = _torch() is not None
    module = torch_module(prog, name, seed, dtype) if use_torch or backend == "torch" else None
    if backend == "numpy":
        weights = module.state_dict() if module is not None else _seeded(prog, name, seed, dtype)
        program = prog.to_numpy(name, weights=weights)
    runs = []
    for model, member, _ in _members(prog, name, module):
        graph = prog.graph(model)
        inputs = random_inputs(graph, sizes, seed, DTYPES[dtype])
        if backend == "torch":
            ys = call_torch(member, inputs)
        else:
            with np.errstate(all="ignore"):  # a NaN or inf is an output, shown in the stats, not a warning
                ys = _as_tuple(program.run(model, *inputs.values()))
        outs = [Output(n, np.asarray(y)) for n, y in zip(_names(graph), ys)]
        runs.append(Run(model, backend, _input_sizes(graph, sizes), outs))
    return runs


def _seeded(prog, name: str, seed: int, dtype: str) -> dict[str, np.ndarray]:
    """NumPy weights without torch, named as the module's state_dict would name them."""
    out = {}
    for model, _, role in _members(prog, name, None):
        for k, v in init_weights(prog.graph(model), seed, DTYPES[dtype]).items():
            out[f"{role}.{k}" if role else k] = v
    return out


def verify(prog, name: str, seed: int = 0, dtype: str = "float32", sizes: dict[str, int] | None = None,
           tol: float | None = None, max_memory: int | None = DEFAULT_MAX_MEMORY,
           max_time: float | None = None) -> list[Verified]:
    """The same weights (the torch module's state_dict) and inputs through torch and NumPy.

    ``max_memory``, ``max_time``: as for :func:`run`; both backends' activations and
    multiply-adds count."""
    tol = TOLERANCE[dtype] if tol is None else tol
    return _bounded(prog, name, dtype, sizes, max_memory, max_time, 2, "verifying",
                    lambda: _verify(prog, name, seed, dtype, sizes, tol))


def _verify(prog, name: str, seed: int, dtype: str, sizes: dict[str, int] | None, tol: float) -> list[Verified]:
    torch = _torch()
    module = torch_module(prog, name, seed, dtype)
    members = _members(prog, name, module)
    inputs = {model: random_inputs(prog.graph(model), sizes, seed, DTYPES[dtype]) for model, _, _ in members}
    for model, member, _ in members:  # weights that keep their scale (see scaled_init), per model
        scale_weights(member, [torch.from_numpy(x.copy()) for x in inputs[model].values()], seed)
    program = prog.to_numpy(name, weights=module.state_dict())
    out = []
    for model, member, _ in members:
        graph = prog.graph(model)
        want = call_torch(member, inputs[model])
        others = random_inputs(graph, sizes, seed + 1, DTYPES[dtype])
        other = call_torch(member, others)
        # inputs with one possible value (token ids below a vocabulary of 1) have no others to try
        varied = any(not np.array_equal(x, y) for x, y in zip(inputs[model].values(), others.values()))
        with np.errstate(all="ignore"):  # non-finite values are compared, not warned about
            got = _as_tuple(program.run(model, *inputs[model].values()))
        outs = [compare(n, g, w) for n, g, w in zip(_names(graph), got, want)]
        for o, w, w2 in zip(outs, want, other):
            o.vacuous = vacuous(w, w2, tol, varied)
        out.append(Verified(model, _input_sizes(graph, sizes), outs, tol))
    return out


def vacuous(want: np.ndarray, other: np.ndarray, tol: float, varied: bool = True) -> str | None:
    """Why comparing an output of torch with NumPy's would show nothing, or None: it is zero
    or too small for its float type, or it does not depend on the inputs (``other``, the
    output for other inputs, differs from ``want`` by no more than ``tol`` relative): then
    an error in any layer before would not change it past the tolerance. ``varied``: whether
    the other inputs differ at all; when every input has one possible value there are no
    others, and the output's not changing shows nothing."""
    if want.dtype.kind != "f" or want.size == 0 or want.shape != other.shape:
        return None
    a, b = want.astype(np.float64), other.astype(np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return None
    scale = float(np.abs(a).max())
    if scale < np.finfo(want.dtype).tiny * 1e6:
        return f"the output is too small to compare (max |output| {scale:.3g})"
    spread = float(np.abs(a - b).max()) / scale
    if spread <= tol and varied:
        return (f"the output does not depend on the inputs: other inputs change it by {spread:.3g} relative, "
                f"within the tolerance {tol:.3g}")
    return None


def compare(name: str, got, want: np.ndarray) -> Output:
    """NumPy's output against torch's: max abs diff, and that over max |torch output|.

    Non-finite values are equal where both sides hold the same one (a NaN where torch has a
    NaN, +inf where torch has +inf); anywhere else they are a difference, and ``problem``
    says where the first one is."""
    got = np.asarray(got)
    if got.shape != want.shape:
        return Output(name, got, np.inf, np.inf, f"shape {list(got.shape)}, torch {list(want.shape)}")
    problems = []
    if want.dtype != got.dtype and (want.dtype.kind == "f" or got.dtype.kind == "f"):
        problems.append(f"dtype {got.dtype}, torch {want.dtype}")
    if got.size == 0:
        return Output(name, got, 0.0, 0.0, "; ".join(problems) or None)
    a, b = got.astype(np.float64), want.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return _differences(name, got, a, b, problems)


def _differences(name: str, got: np.ndarray, a: np.ndarray, b: np.ndarray, problems: list[str]) -> Output:
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # identical values, non-finite ones included
    finite = np.isfinite(a) & np.isfinite(b)
    bad = ~same & ~finite  # a non-finite value on one side only, or two different ones
    diff = np.where(finite, np.abs(a - b), 0.0)
    max_abs = np.inf if bad.any() else float(diff.max())
    if bad.any():
        at = np.unravel_index(int(np.argmax(bad)), bad.shape)
        where = f"{name}[{', '.join(str(int(i)) for i in at)}]" if at else name
        problems.append(f"first non-finite difference at {where}: NumPy {a[at]}, torch {b[at]}")
    elif not finite.all():
        at = np.unravel_index(int(np.argmax(~finite)), finite.shape)
        where = f"{name}[{', '.join(str(int(i)) for i in at)}]" if at else name
        problems.append(f"note: both give non-finite values, the first {a[at]} at {where}")
    scale = float(np.abs(np.where(np.isfinite(b), b, 0.0)).max())
    max_rel = max_abs / scale if scale else max_abs
    notes = [p.removeprefix("note: ") for p in problems if p.startswith("note: ")]
    errors = [p for p in problems if not p.startswith("note: ")]
    return Output(name, got, max_abs, max_rel, "; ".join(errors) or None, "; ".join(notes) or None)


def _input_sizes(graph, sizes: dict[str, int] | None) -> dict[str, int]:
    """The symbol sizes the model's inputs were drawn at."""
    used = set().union(*(n.type.symbols() for n in graph.input_nodes()))
    return {k: v for k, v in sorted(bind_sizes(graph, sizes).items()) if k in used}


def input_symbols(prog, name: str) -> set[str]:
    """Every size symbol of the inputs of a model or the models of a pair."""
    return {s for m in prog.members(name) for n in prog.graph(m).input_nodes() for s in n.type.symbols()}


# -- text ------------------------------------------------------------------------------------------

def _shape(a: np.ndarray) -> str:
    return "[" + ", ".join(str(d) for d in a.shape) + "]"


def _sizes(sizes: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


def stats(a: np.ndarray) -> str:
    """mean, std, min and max of an array (as float64), or 'empty'."""
    if a.size == 0:
        return "empty"
    x = a.astype(np.float64)
    with np.errstate(all="ignore"):  # the mean of an inf and a -inf is a NaN, shown as one
            return f"mean {x.mean():.6g}  std {x.std():.6g}  min {x.min():.6g}  max {x.max():.6g}"


def render_run(runs: list[Run], seed: int, dtype: str) -> str:
    lines = []
    for r in runs:
        at = f", {_sizes(r.sizes)}" if r.sizes else ""
        lines.append(f"{r.model} ({r.backend}, {dtype}, seed {seed}{at})")
        width = max(len(o.name) for o in r.outputs)
        for o in r.outputs:
            lines.append(f"  {o.name:<{width}}  {_shape(o.value)} {o.value.dtype}  {stats(o.value)}")
    return "\n".join(lines)


def render_verify(results: list[Verified], seed: int, dtype: str) -> str:
    lines = []
    for v in results:
        at = f", {_sizes(v.sizes)}" if v.sizes else ""
        verdict = "ok" if v.ok else "FAIL" if not v.agree else "VACUOUS"
        lines.append(f"{v.model} ({dtype}, seed {seed}{at}): max abs diff {v.max_abs:.3g}, max rel diff "
                     f"{v.max_rel:.3g} (tol {v.tol:.3g})  {verdict}")
        width = max(len(o.name) for o in v.outputs)
        for o in v.outputs:
            note = "".join(f"  {t}" for t in (o.problem, o.note, o.vacuous and f"vacuous: {o.vacuous}") if t)
            lines.append(f"  {o.name:<{width}}  {_shape(o.value)}  max abs diff {o.max_abs:.3g}, "
                         f"max rel diff {o.max_rel:.3g}{note}")
    return "\n".join(lines)
