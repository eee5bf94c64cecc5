"""Which parameters of a model its class takes as constructor arguments.

``compiler/variants.py`` elaborates the model again with each scalar parameter changed. A
parameter becomes an argument of the model's class (``ResNet18(classes=1000)``) when the
changed graph's scopes all join the classes of the spec's own graph (the same layers, blocks
and statements; only sizes differ) and every size that differs is one the class can compute
from its arguments: the parameter itself where a layer's size equals it in every graph
(``linear(classes)``), or a size expression of the spec over it (``padding=k // 2``), passed
down to blocks as their own arguments. A stack's count is such a size (``GPT2Block(...) *
layers`` is ``range(layers)``). Parameters are tried one by one and kept while all kept
ones fit together. Any other parameter (it decides an ``if``, the length of a chain of ops,
or a size no expression gives) is fixed at its value: the class accepts only that value and
says to emit the model again for another.
"""

from __future__ import annotations

from netc.compiler.ir import Graph

from .emit import Emitter
from .lower import LoweringError


def settle(path: str, graph: Graph, variants: dict[str, Graph | None]) -> list[str]:
    """The parameters of ``graph`` its class can take as arguments, given the graph with each
    one changed (``variants``; None where no other value elaborates)."""
    base = Emitter(path)
    base.model(graph)
    base.finish()
    kept: list[str] = []
    for name, changed in variants.items():
        if changed is not None and name.isidentifier() and name not in base.taken and name != "self" \
                and _fits(path, graph, [variants[k] for k in kept] + [changed], kept + [name], len(base.order)):
            kept.append(name)
    return kept


def _fits(path: str, graph: Graph, changed: list[Graph], names: list[str], n_classes: int) -> bool:
    em = Emitter(path)
    try:
        cls = em.model(graph)
        if any(em.model(g, variant=True) != cls for g in changed):
            return False
        em.finish()
    except LoweringError:
        return False
    if len(em.order) != n_classes:  # a changed graph needed a class of its own
        return False
    root = next(c for c in em.order if c.name == cls)
    return {name for _, name in root.params} <= set(names)
