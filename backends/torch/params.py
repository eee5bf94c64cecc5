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
from .write import usable_param

_SETTLED: dict[int, tuple[dict, list[str]]] = {}  # id(variants) -> (variants, kept), for the variants cached


def settle(path: str, graph: Graph, variants: dict[str, Graph | None]) -> list[str]:
    """The parameters of ``graph`` its class can take as arguments, given the graph with each
    one changed (``variants``; None where no other value elaborates). All are tried together;
    each that does not fit (its graph needs a class of its own, or a size differs that no
    argument gives) is dropped, and the rest tried again. Remembered for the same ``variants``
    dict (``compiler.variants`` hands out the same one for the same files and options)."""
    done = _SETTLED.get(id(variants))
    if done is not None and done[0] is variants:
        return list(done[1])
    kept = _settle(path, graph, variants)
    if len(_SETTLED) > 64:
        _SETTLED.clear()
    _SETTLED[id(variants)] = (variants, kept)
    return list(kept)


def _settle(path: str, graph: Graph, variants: dict[str, Graph | None]) -> list[str]:
    taken = Emitter(path).taken
    kept = [k for k, g in variants.items() if g is not None and usable_param(k, graph.params.get(k), taken)]
    while kept:
        bad = _misfits(path, graph, {k: variants[k] for k in kept})
        if not bad:
            break
        kept = [k for k in kept if k not in bad]
    return kept


def _misfits(path: str, graph: Graph, changed: dict[str, Graph]) -> set[str]:
    """The parameters whose changed graph does not fit the class of ``graph``."""
    em = Emitter(path)
    try:
        cls = em.model(graph)
    except LoweringError:
        return set(changed)
    own = {id(s) for c in em.order for s in c.instances}
    bad, scopes = {k for k in changed if k in em.taken}, {}
    for k, g in changed.items():
        if k in bad:
            continue
        before = set(em.variant_scopes)
        try:
            if em.model(g, variant=True) != cls:
                bad.add(k)
        except Exception:  # noqa: BLE001 -- (a LoweringError, or any other): this parameter is fixed
            bad.add(k)
        scopes.update(dict.fromkeys(em.variant_scopes - before, k))
    if bad:
        return bad
    em.finish()
    for c in em.order:  # a class only changed graphs need
        if not any(id(s) in own for s in c.instances):
            bad |= {scopes[id(s)] for s in c.instances}
    root = next(c for c in em.order if c.name == cls)
    first = root.instances[0]
    for i, name in root.params:  # a size that differs and no argument gives
        if name not in changed:
            bad |= {scopes[id(s)] for s in root.instances[1:] if root.vectors[id(s)][i] != root.vectors[id(first)][i]}
    return bad
