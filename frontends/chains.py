"""A residual block and the same layers without the residual are one block with an optional
``+``, as a person writes MobileNetV2's inverted residual:

    return if C == out and stride == 1 then x + y else y

A block whose body is a chain from ``x`` to ``y`` and then ``x + y`` takes every run of the
model's inline layers with the chain's structure (each layer reading only the one before).
The condition is read off the instances as for shortcuts (``shortcut._condition``): it must
hold for every instance with the ``+`` and fail for every instance without, or nothing is
taken.
"""

from __future__ import annotations

from .layers import Layer
from .shortcut import _condition
from .structure import BlockType, Instance, _parametrise, shape_of


def absorb_chains(blocks: list[BlockType], items: list, width_of) -> list[BlockType]:
    out = list(blocks)
    for t in blocks:
        if t.optional or len(t.template) < 3:
            continue
        add, chain = t.template[-1], t.template[:-1]
        x = _instance_input(t)
        if not (add.binary and add.op == "add" and add.scalar is None and x in add.inputs
                and chain[-1].output in add.inputs and _is_chain(chain, x)):
            continue
        found = _windows(items, shape_of(chain), len(chain))
        if not found:
            continue
        n = len(chain)
        slots = list(range(n)) + [None]
        _parametrise(t, width_of)
        base, taken, merged = len(t.params), [], None
        for i in found:  # a run that needs more than two new parameters is another kind of block
            trial = BlockType("", t.template, list(t.instances) + [
                Instance(list(items[j:j + n]), 1, items[j].inputs[0], items[j + n - 1].output, slots)
                for j in taken + [i]])
            if _parametrise(trial, width_of) and len(trial.params) <= base + 2:
                taken.append(i)
                merged = trial
        found = taken
        if merged is None:
            continue
        cond = _condition(merged, len(t.instances), width_of)
        if cond is None:
            continue
        merged.optional_add = (id(add), cond)
        for k, it in enumerate(items):
            if isinstance(it, tuple) and it[0] is t:
                items[k] = (merged, it[1])
        for j, i in reversed(list(enumerate(found))):
            items[i:i + n] = [(merged, len(t.instances) + j)]
        _parametrise(merged, width_of)
        out = [merged if b is t else b for b in out]
    return out


def _instance_input(t: BlockType) -> str:
    return next(i for i in t.instances if i.slots is None).input


def _is_chain(layers: list[Layer], x: str) -> bool:
    prev = x
    for lay in layers:
        if len(lay.inputs) != 1 or lay.binary or lay.inputs[0] != prev:
            return False
        prev = lay.output
    return True


def _windows(items: list, shape: tuple, n: int) -> list[int]:
    """Starts of non-overlapping runs of ``n`` inline layers with ``shape`` whose inner
    values nothing else reads."""
    uses: dict[str, int] = {}
    for it in items:
        ins = it.inputs if isinstance(it, Layer) else [it[0].instances[it[1]].input]
        for v in ins:
            uses[v] = uses.get(v, 0) + 1
    found, i = [], 0
    while i + n <= len(items):
        window = items[i:i + n]
        if all(isinstance(w, Layer) for w in window) and _is_chain(window, window[0].inputs[0] if
                                                                   window[0].inputs else "") \
                and shape_of(window) == shape and all(uses.get(w.output, 0) == 1 for w in window[:-1]):
            found.append(i)
            i += n
        else:
            i += 1
    return found
