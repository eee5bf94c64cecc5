"""Data movement and reductions. Target shapes of ``reshape`` and ``flatten`` with symbolic
sizes are read from the input's runtime shape (``Shape``), so any batch size runs."""

from __future__ import annotations

from ..table import lowering


@lowering("memory_format")
def memory_format(b, node, xs, a):
    return [xs[0]]  # a layout is the torch backend's concern


@lowering("flatten", "reshape")
def reshape(b, node, xs, a):
    x = b.types[xs[0]]
    if node.op == "flatten" and node.type.rank == 2 and a.start % x.rank == 1 and a.end % x.rank == x.rank - 1:
        return [b.add("Flatten", xs, axis=1)]
    return [b.add("Reshape", [xs[0], b.shape_tensor(node.type.shape, [(xs[0], x.shape)])])]


@lowering("transpose", "permute")
def permute(b, node, xs, a):
    rank = b.types[xs[0]].rank
    if rank == 0:
        return [xs[0]]
    return [b.add("Transpose", xs, perm=[int(i) % rank for i in node_permutation(node, a, rank)])]


def node_permutation(node, a, rank: int) -> list[int]:
    from netc.specs.catalogue import get

    return get(node.op).permutation(a, rank)


@lowering("concat")
def concat(b, node, xs, a):
    return [b.add("Concat", xs, axis=a.dim)]


@lowering("split")
def split(b, node, xs, a):
    n = len(node.types)
    axis = a.dim % b.types[xs[0]].rank
    sizes = [t.shape[axis] for t in node.types]
    outs = b.add("Split", [xs[0], b.ints(sizes, "sizes")], outputs=n, axis=a.dim) if all(
        isinstance(s, int) for s in sizes) else b.add("Split", xs, outputs=n, axis=a.dim, num_outputs=n)
    return outs if n > 1 else [outs]


def _axes(a) -> list[int]:
    return list(a.dim) if isinstance(a.dim, (tuple, list)) else [a.dim]


@lowering("mean")
def mean(b, node, xs, a):
    return [b.add("ReduceMean", [xs[0], b.ints(_axes(a), "axes")], keepdims=int(a.keepdim))]


@lowering("sum")
def sum_(b, node, xs, a):
    x = xs[0]
    if b.types[x].dtype == "bool":
        x = b.add("Cast", [x], to=7)  # INT64: bools count as ints
    return [b.add("ReduceSum", [x, b.ints(_axes(a), "axes")], keepdims=int(a.keepdim))]


@lowering("positions")
def positions(b, node, xs, a):
    t = b.add("Squeeze", [b.dim(xs[0], 1)])
    return [b.add("Range", [b.const(0, "int64", "zero"), t, b.const(1, "int64", "one")])]
