"""Optimisation passes over the graph IR, one per file, run as a named pipeline.

A pass is a function ``(ctx: PassContext) -> PassResult`` registered with :func:`register`
under a name, an optimisation level and a one-line purpose. ``-O0`` runs none, ``-O1`` the
safe clean-ups (same numbers in training and inference), ``-O2`` adds inference-only
rewrites (dropout removed, batch-norm folded into the layer before it, fusions), each one
either a gain wherever it applies or decided by a measured cost model; ``-O3`` adds the
rewrites whose speed-up is not shown on this CPU (``fuse_qkv``), for a user to measure on
theirs. A pass that
changes how weights are laid out records a :class:`WeightTransform`; the runtime replays
them to turn an unfused state dict into the fused layout.

    >>> from netc.compiler.passes import all_passes
    >>> [p.name for p in all_passes()][-1]
    'eliminate_dead_code'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .. import records
from ..ir import Graph
from ..limits import gc_paused
from ..verify import verify
from .base import PIPELINE, Change, Pass, PassContext, PassResult, WeightTransform, register  # noqa: F401 (the API)


def all_passes() -> list[Pass]:
    """The pipeline in order (registering the passes on first use)."""
    from . import order  # noqa: F401  (its imports register the passes, in pipeline order)

    return list(PIPELINE)


@dataclass
class Optimized:
    graph: Graph
    report: list[tuple[Pass, PassResult]]
    transforms: list[WeightTransform]


# Not run on the cells of ``scan``: they move weights (a cell's weights are named inside its
# scan's layer, and weight transforms are the model's) or change a layout the cell's loop
# would convert at every step.
NOT_IN_CELLS = ("fold_batchnorm", "fuse_qkv", "use_channels_last")


@gc_paused
def optimize(graph: Graph, level: int, disable=(), print_after=None, check: bool = False,
             emit: Callable[[str], None] = print) -> Optimized:
    """Run the pipeline for ``level`` on a copy of ``graph``, then on the cells its ``scan``
    nodes run (their rewrites are reported under the same passes, marked with the cell).

    ``check`` (or the environment variable ``NETC_VERIFY_IR=1``, which the test suite sets)
    verifies the graph before the first pass and after every pass: a pass that breaks an IR
    invariant raises :class:`~netc.compiler.verify.IRError` naming it."""
    unknown = set(disable) - {p.name for p in all_passes()}
    if unknown:
        raise ValueError(f"no pass named {', '.join(sorted(unknown))}; passes: {', '.join(p.name for p in PIPELINE)}")
    check = check or os.environ.get("NETC_VERIFY_IR") == "1"
    if check:
        verify(graph, "before the passes")
    ctx = PassContext(graph.copy(), level)
    report = []
    for p in PIPELINE:
        if p.level > level or p.name in disable:
            continue
        result = p.run(ctx)
        report.append((p, result))
        if check:
            verify(ctx.graph, f"after pass {p.name}")
        if print_after and p.name in print_after:
            emit(f"# after {p.name}\n{ctx.graph}")
    if level:
        _optimize_cells(ctx.graph, level, tuple(disable), check, dict(report))
        if check:
            verify(ctx.graph, "after optimising its cells")
    return Optimized(ctx.graph, report, ctx.transforms)


def _optimize_cells(graph: Graph, level: int, disable: tuple, check: bool, results: dict) -> None:
    """Optimise each cell that a scan node of ``graph`` runs (once per cell, nested cells
    by recursion) and put the optimised cell in the node."""
    done: dict[int, object] = {}
    for n in [n for n in graph.nodes() if n.op == "scan"]:
        cell = n.attrs.cell
        if id(cell.graph) not in done:
            inner = optimize(cell.graph, level, disable + NOT_IN_CELLS, check=check)
            for p, r in inner.report:  # the cell runs a subset of the model's passes
                marked = [[Change(f"in cell `{cell.name}`: {c.what}", c.span) for c in cs] for cs in (r.rewrites, r.skipped)]
                results[p].rewrites += marked[0]
                results[p].skipped += marked[1]
                results[p].changed |= r.changed
            done[id(cell.graph)] = records.replace(cell, graph=inner.graph)
        graph.replace(records.replace(n, attrs=n.attrs.model_copy(update={"cell": done[id(cell.graph)]})))


def convert_weights(transforms: list[WeightTransform], weights: dict) -> dict:
    """An unfused state dict (torch tensors or numpy arrays) in the fused layout."""
    out = dict(weights)
    for t in transforms:
        new = t.fn(out)
        for name in t.drops:
            out.pop(name, None)
        out.update(new)
    return out


def format_report(report: list[tuple[Pass, PassResult]]) -> str:
    lines = []
    for p, r in report:
        lines.append(f"{p.name} (-O{p.level}): {p.purpose}: "
                     + (f"{len(r.rewrites)} rewrite(s)" if r.changed else "no change"))
        lines += [f"  decided {c}" for c in r.notes]
        lines += [f"  rewrote {c}" for c in r.rewrites]
        lines += [f"  skipped {c}" for c in r.skipped]
    return "\n".join(lines)
