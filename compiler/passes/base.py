"""What a pass is and how it registers: :class:`PassContext` in, :class:`PassResult` out, a
:class:`WeightTransform` for a pass that changes how weights are laid out, and
:func:`register`, which puts a pass in the pipeline (``order.py`` imports the passes in
pipeline order). Pass files import this module, never the package, so that the driver
(``passes/__init__``) sits above them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..ir import Graph, Node
from ..source import Span


@dataclass(frozen=True)
class Change:
    """One rewrite, or one skipped opportunity and why, with the spec location."""

    what: str
    span: Span | None = None

    def __str__(self) -> str:
        return f"{self.span}: {self.what}" if self.span else self.what


@dataclass
class PassResult:
    changed: bool = False
    rewrites: list[Change] = field(default_factory=list)
    skipped: list[Change] = field(default_factory=list)
    notes: list[Change] = field(default_factory=list)  # why a pass decided as it did (a cost model)

    def rewrote(self, what: str, span: Span | None = None) -> None:
        self.changed = True
        self.rewrites.append(Change(what, span))

    def skip(self, what: str, span: Span | None = None) -> None:
        self.skipped.append(Change(what, span))

    def note(self, what: str, span: Span | None = None) -> None:
        self.notes.append(Change(what, span))


@dataclass
class WeightTransform:
    """How fused weights are computed from unfused ones: ``fn(weights) -> new entries``;
    ``drops`` are the unfused names that no longer exist."""

    fn: Callable[[dict], dict]
    drops: tuple[str, ...] = ()


@dataclass
class PassContext:
    graph: Graph
    level: int
    transforms: list[WeightTransform] = field(default_factory=list)


@dataclass(frozen=True)
class Pass:
    name: str
    level: int
    purpose: str
    run: Callable[[PassContext], PassResult]


PIPELINE: list[Pass] = []


def register(name: str, level: int, purpose: str):
    def add(fn):
        if any(p.name == name for p in PIPELINE):
            raise ValueError(f"pass {name} registered twice")
        PIPELINE.append(Pass(name, level, purpose, fn))
        return fn

    return add


def each_node(g: Graph, want: Callable[[Node], bool] = lambda n: True) -> Iterator[Node]:
    """The rewrite driver every pass walks its graph with: the nodes that ``want`` at the
    start, in graph order, each read afresh when its turn comes (an earlier rewrite may have
    replaced it with new inputs or attributes) and skipped once a rewrite removed it."""
    for nid in [n.id for n in g.nodes() if want(n)]:
        if nid in g:
            yield g.node(nid)
