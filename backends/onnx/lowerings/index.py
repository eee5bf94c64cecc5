"""Learned free tensors and indexing: ``parameter`` is its initialiser (named as the torch
state_dict names it); ``index`` (``x[:, 0]``, ``x[..., :k]``, ``x[:, None]``) is one ``Slice``
over the sliced and picked dims, ``Squeeze`` of the picked ones, ``Unsqueeze`` of the new ones."""

from __future__ import annotations

from netc.specs.ops.index import expand_ellipsis

from ..table import lowering

END = 2**63 - 1


@lowering("parameter")
def parameter(b, node, xs, a):
    return [b.param(node, "")]


@lowering("index")
def index(b, node, xs, a):
    x = xs[0]
    items = expand_ellipsis(a.items, b.types[x].rank)
    starts, ends, axes, steps, picked, new = [], [], [], [], [], []
    axis, out = 0, 0
    for item in items:
        if item == "new":
            new.append(out)
            out += 1
            continue
        if isinstance(item, int):
            starts.append(item)
            ends.append(item + 1 if item != -1 else END)
            axes.append(axis)
            steps.append(1)
            picked.append(axis)
        elif item != (None, None, None):
            start, stop, step = item
            starts.append(0 if start is None else start)
            ends.append(END if stop is None else stop)
            axes.append(axis)
            steps.append(1 if step is None else step)
            out += 1
        else:
            out += 1
        axis += 1
    if axes:
        x = b.add("Slice", [x, b.ints(starts, "starts"), b.ints(ends, "ends"), b.ints(axes, "axes"),
                            b.ints(steps, "steps")])
    if picked:
        x = b.add("Squeeze", [x, b.ints(picked, "axes")])
    if new:
        x = b.add("Unsqueeze", [x, b.ints(new, "axes")])
    return [x]
