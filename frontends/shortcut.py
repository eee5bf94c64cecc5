"""Two blocks that differ only by a projection on the shortcut are one block with a
conditional shortcut, as a person writes ResNet's basic block:

    skip = if stride == 1 and C == out then x else x -> conv2d(out, 1, stride=stride) -> batchnorm

Block B (with the projection) and block A (without) merge when removing B's chain from its
input ``x`` to an operand of its residual ``+`` leaves A's structure with ``x`` in that
place. The condition is read off the instances: a parameter that is 1 in every instance
without the projection (``stride == 1``), a width that equals the input's there
(``C == out``); it must hold for every A instance and fail for every B instance, and the
projection's numbers must follow from the parameters, or the two stay separate blocks.
"""

from __future__ import annotations

import copy

from .layers import Layer
from .structure import BlockType, Instance, _parametrise, shape_of


def merge_shortcuts(blocks: list[BlockType], items: list, width_of) -> list[BlockType]:
    out = list(blocks)
    for b in blocks:
        if not any(t is b for t in out):
            continue
        for chain, reduced, a in ((c, r, a) for c, r in _optional_chains(b) for a in out):
            if a is b or len(a.template) != len(b.template) - len(chain) or shape_of(a.template) != reduced:
                continue
            merged = _merge(a, b, chain, width_of)
            if merged is None:
                continue
            for k, it in enumerate(items):  # the model's uses now name the merged block
                if isinstance(it, tuple) and (it[0] is a or it[0] is b):
                    items[k] = (merged, it[1] if it[0] is a else len(a.instances) + it[1])
            out = [merged if t is b else t for t in out if t is not a]
            break
    return out


def _optional_chains(b: BlockType):
    """Each (ids of a chain's layers, the template's shape without it)."""
    t, x = b.template, b.instances[0].input
    pos = {lay.output: i for i, lay in enumerate(t)}
    users: dict[str, int] = {}
    for lay in t:
        for v in lay.inputs:
            users[v] = users.get(v, 0) + 1
    for add in t:
        if not add.binary or add.scalar is not None:
            continue
        for side, q in enumerate(add.inputs):
            chain, v = [], q
            while v in pos and users.get(v) == 1:
                lay = t[pos[v]]
                if len(lay.inputs) != 1 or lay.binary:
                    break
                chain.append(lay)
                v = lay.inputs[0]
            if not chain or v != x:
                continue
            ids = {id(lay) for lay in chain}
            rest = []
            for lay in t:
                if id(lay) in ids:
                    continue
                if lay is add:
                    lay = copy.copy(lay)
                    lay.inputs = [x if i == side else w for i, w in enumerate(add.inputs)]
                rest.append(lay)
            yield ids, shape_of(rest)


def _merge(a: BlockType, b: BlockType, chain: set, width_of) -> BlockType | None:
    keep = [i for i, lay in enumerate(b.template) if id(lay) not in chain]
    slots = [None] * len(b.template)
    for k, i in enumerate(keep):
        slots[i] = k
    lacking = [Instance(inst.layers, inst.copies, inst.input, inst.output, list(slots)) for inst in a.instances]
    merged = BlockType("", b.template, lacking + list(b.instances))
    if not _parametrise(merged, width_of):
        return None
    cond = _condition(merged, len(lacking), width_of)
    if cond is None:
        return None
    merged.optional = (chain, cond)
    return merged


def _condition(t: BlockType, lacking: int, width_of) -> str | None:
    widths = [width_of(inst.input) for inst in t.instances]
    parts, tests = [], []
    for j, p in enumerate(t.params):
        values = [args[j] for args in t.args]
        if all(v == 1 for v in values[:lacking]):
            parts.append(f"{p} == 1")
            tests.append(lambda i, j=j: t.args[i][j] == 1)
        elif t.uses_width is not None and all(v == w for v, w in zip(values[:lacking], widths)):
            parts.append(f"C == {p}")
            tests.append(lambda i, j=j: t.args[i][j] == widths[i])
    if not parts:
        return None
    for i in range(len(t.instances)):
        if all(f(i) for f in tests) != (i < lacking):
            return None
    if any("C ==" in q for q in parts):
        t.uses_width = True
    return " and ".join(parts)


def skip_layers(t: BlockType) -> list[Layer]:
    return [lay for lay in t.template if t.optional and id(lay) in t.optional[0]]
