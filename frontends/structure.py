"""Repeated structure in a list of layers: the blocks a person would have written.

1. Cut points: a layer after which its output is the only live value. The layers between
   two cuts are a *segment* (a residual block, a transformer sub-layer); a single layer is a
   trivial one.
2. Units: a non-trivial segment takes the trivial segments after it while every segment of
   its shape is followed by the same one (ResNet's ``relu`` after the residual ``+``).
3. Runs: a sequence of units that repeats consecutively with equal numbers is one stack,
   ``Block(...) * n`` (GPT-2's attention + MLP pair, four times).
4. Types: units (and stack bodies) of the same shape are one ``block``; the numbers in
   which they differ become its parameters (``out``, ``stride``), written as ``C``,
   ``C * k`` or ``C // k`` where they follow the input's width. (``shortcut.py`` then merges
   two blocks that differ only by a projection on the shortcut.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .layers import Layer, default

ARG_NAMES = {"conv1d": ("out", "kernel"), "conv2d": ("out", "kernel"), "linear": ("out",),
             "maxpool2d": ("kernel",), "avgpool2d": ("kernel",), "maxpool1d": ("kernel",),
             "avgpool1d": ("kernel",), "self_attention": ("heads",), "flatten": ("start",)}


@dataclass
class Instance:
    layers: list[Layer]  # every layer of every copy, in order
    copies: int
    input: str
    output: str
    slots: list | None = None  # template index -> index in a copy (None: the copy lacks it)

    def per_copy(self, n: int) -> int:
        return n if self.slots is None else sum(1 for s in self.slots if s is not None)

    def layer(self, li: int, copy: int = 0) -> Layer | None:
        """The copy's layer at the template's index ``li`` (None where it has none)."""
        n = len(self.slots) if self.slots is not None else None
        slot = li if self.slots is None else self.slots[li]
        if slot is None:
            return None
        width = self.per_copy(n if n is not None else len(self.layers) // self.copies)
        return self.layers[copy * width + slot]


@dataclass
class BlockType:
    name: str
    template: list[Layer]  # the layers of one copy (the first instance's)
    instances: list[Instance]
    params: list[str] = field(default_factory=list)
    subst: dict = field(default_factory=dict)  # (layer index, value key) -> text in the body
    args: list[list] = field(default_factory=list)  # per instance: the values of ``params``
    uses_width: bool = False
    optional: tuple | None = None  # (ids of the template's optional shortcut layers, condition)
    optional_add: tuple | None = None  # (id of the template's optional residual `+`, condition)


def cut_points(layers: list[Layer], outputs: set[str]) -> list[int]:
    """Indices i such that after layer i, its output is the only value still to be read."""
    last = {}
    for i, lay in enumerate(layers):
        for v in lay.inputs:
            last[v] = i
    made_at = {lay.output: i for i, lay in enumerate(layers)}
    live: set[str] = set()
    cuts = []
    for i, lay in enumerate(layers):
        live = {v for v in live if last.get(v, -1) > i or v in outputs}
        for v in lay.inputs:  # graph inputs read later also stay live
            if v not in made_at and last.get(v, -1) > i:
                live.add(v)
        if last.get(lay.output, -1) > i or lay.output in outputs:
            live.add(lay.output)
        if live == {lay.output}:
            cuts.append(i)
    return cuts


def segments(layers: list[Layer], outputs: set[str]) -> list[list[Layer]]:
    cuts = cut_points(layers, outputs)
    out, start = [], 0
    for c in cuts:
        if c >= start:
            out.append(layers[start:c + 1])
            start = c + 1
    if start < len(layers):
        out.append(layers[start:])
    return out


def shape_of(seg: list[Layer]) -> tuple:
    """The structure of a run of layers, with inputs as positions inside it (or -1: outside)."""
    pos = {lay.output: i for i, lay in enumerate(seg)}
    return tuple((lay.structure(), tuple(pos.get(v, -1) for v in lay.inputs)) for lay in seg)


def numbers(seg: list[Layer]) -> tuple:
    return tuple(v for lay in seg for v in lay.values())


def units(segs: list[list[Layer]]) -> list[list[Layer]]:
    """Segments, each non-trivial one with the trivial ones that always follow its kind."""
    shapes = [shape_of(s) for s in segs]
    joined = [list(s) for s in segs]
    owner = list(range(len(segs)))  # which unit each segment belongs to
    kinds: dict = {}
    for i, s in enumerate(segs):
        if len(s) > 1:
            kinds.setdefault(shapes[i], []).append(i)
    for starts in kinds.values():
        if len(starts) < 2:
            continue
        step = 1
        while True:
            nxt = [i + step for i in starts]
            if any(j >= len(segs) or len(segs[j]) > 1 or owner[j] != j for j in nxt):
                break
            if len({shapes[j] for j in nxt}) != 1:
                break
            for i, j in zip(starts, nxt):
                joined[i] += segs[j]
                owner[j] = i
            step += 1
    return [joined[i] for i in range(len(segs)) if owner[i] == i]


def runs(us: list[list[Layer]]) -> list[tuple[int, int, int]]:
    """(start, period, count) of each stretch of units; count 1 for a unit on its own."""
    keys = [(shape_of(u), numbers(u)) for u in us]
    out, i = [], 0
    while i < len(us):
        best = (1, 1)
        for p in range(1, (len(us) - i) // 2 + 1):
            if not any(len(u) > 1 for u in us[i:i + p]):
                continue
            k = 1
            while keys[i + k * p:i + (k + 1) * p] == keys[i:i + p]:
                k += 1
            if k >= 2 and p * k > best[0] * best[1]:
                best = (p, k)
        out.append((i, *best))
        i += best[0] * best[1]
    return out


def find_blocks(layers: list[Layer], outputs: set[str], width_of) -> tuple[list, list[BlockType]]:
    """The model as items: a Layer (written inline) or (BlockType, instance index).
    ``width_of(value)``: the channel/feature size of a value, or None."""
    us = units(segments(layers, outputs))
    groups = []
    for start, p, k in runs(us):
        body = [lay for u in us[start:start + p] for lay in u]
        every = [lay for u in us[start:start + p * k] for lay in u]
        groups.append((body, every, k))
    by_shape: dict = {}
    for body, every, k in groups:
        if len(body) > 1:
            by_shape.setdefault(shape_of(body), []).append((body, every, k))
    types: dict = {}
    for shape, members in by_shape.items():
        if len(members) < 2 and members[0][2] < 2:
            continue
        inst = [Instance(every, k, body[0].inputs[0] if body[0].inputs else "", every[-1].output)
                for body, every, k in members]
        types[shape] = BlockType("", members[0][0], inst)
    items: list = []
    for body, every, k in groups:
        t = types.get(shape_of(body)) if len(body) > 1 else None
        if t is None:
            items += every
        else:
            idx = next(i for i, inst in enumerate(t.instances) if inst.layers is every)
            items.append((t, idx))
    blocks = list(types.values())
    for t in blocks:
        _parametrise(t, width_of)
    return items, blocks


def _parametrise(t: BlockType, width_of) -> bool:
    """Turn the numbers in which the instances differ into parameters (or ``C`` expressions).
    A layer some instances lack (an optional shortcut) must reuse what the others settle:
    False when it cannot."""
    t.params, t.subst, t.args, t.uses_width = [], {}, [[] for _ in t.instances], False
    cols: dict = {}
    for li in range(len(t.template)):
        present = [inst.layer(li) for inst in t.instances]
        keys = dict.fromkeys((kind, key) for lay in present if lay is not None for kind, key, _ in lay.values())
        for kind, key in keys:
            col = []
            for lay in present:
                if lay is None:
                    col.append(None)
                    continue
                got = {(k, q): v for k, q, v in lay.values()}
                col.append(got.get((kind, key), default(lay.op, key) if kind == "kw" else None))
            cols[(li, kind, key)] = col
    widths = [width_of(inst.input) for inst in t.instances]
    known = all(isinstance(w, int) for w in widths)
    named: dict = {}  # full column -> parameter
    partial = []
    for (li, kind, key), col in cols.items():
        if None in col:
            partial.append(((li, kind, key), col))
            continue
        if len(set(col)) == 1:
            continue
        expr = _width_expr(col, widths) if known else None
        if expr is not None:
            t.subst[(li, kind, key)] = expr
            t.uses_width = True
            continue
        if tuple(col) not in named:
            base = key if kind == "kw" else ARG_NAMES.get(t.template[li].op, ("value",) * 9)[key]
            name, k = base, 1
            while name in t.params or name in ("x", "N", "C", "H", "W", "T", "D", "skip", "y"):
                k += 1
                name = f"{base}{k}"
            named[tuple(col)] = name
            t.params.append(name)
            for i, v in enumerate(col):
                t.args[i].append(v)
        t.subst[(li, kind, key)] = named[tuple(col)]
    for where, col in partial:
        on = [i for i, v in enumerate(col) if v is not None]
        got = [col[i] for i in on]
        match = next((name for full, name in named.items() if [full[i] for i in on] == got), None)
        if match is None and known:
            match = _width_expr(got, [widths[i] for i in on])
            t.uses_width |= match is not None
        if match is None and len(set(got)) > 1:
            return False
        if match is not None:
            t.subst[where] = match
    return True


def _width_expr(col: list, widths: list[int]) -> str | None:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in col):
        return None
    if col == widths:
        return "C"
    if all(w and v % w == 0 for v, w in zip(col, widths)) and len({v // w for v, w in zip(col, widths)}) == 1:
        return f"C * {col[0] // widths[0]}"
    if all(v and w % v == 0 for v, w in zip(col, widths)) and len({w // v for v, w in zip(col, widths)}) == 1:
        return f"C // {widths[0] // col[0]}"
    return None


def name_blocks(blocks: list[BlockType]) -> None:
    taken: set[str] = set()
    for t in blocks:
        base = _source_name(t.instances[0].layers[: len(t.template)]) or "Block"
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}{k}"
        taken.add(name)
        t.name = name


def _source_name(layers: list[Layer]) -> str | None:
    """A block name from the ONNX node names of one instance: the innermost module path all
    its nodes share (``/layer1/layer1.0/conv1/Conv`` ... -> ``layer1.0`` -> ``Layer``)."""
    paths = [[p for p in lay.source.split("/") if p] for lay in layers if lay.source.startswith("/")]
    if len(paths) != len(layers) or not paths:
        return None
    common = paths[0][:-1]
    for p in paths[1:]:
        k = 0
        while k < min(len(common), len(p) - 1) and common[k] == p[k]:
            k += 1
        common = common[:k]
    for part in reversed(common):
        words = [w for w in re.split(r"[^A-Za-z]+|(?<=[a-z])(?=[A-Z])", part) if w]
        if words and len("".join(words)) >= 3:
            return "".join(w[:1].upper() + w[1:] for w in words)
    return None
