"""Channels-last memory layout for convolutions, where the measured cost model predicts a gain.

    x: float[N, 3, 224, 224]                   x1 = memory_format(x, format="channels_last", min_batch=7)
    c = conv2d(x, ...)                ==>      c = conv2d(x1, ...)
    ...                                        ...
    return y   (4-d, channels-last)            return memory_format(y, format="contiguous")

Convolution kernels (oneDNN on CPU, cuDNN on GPU) often run faster on tensors stored N, H,
W, C, and the ops between the convolutions of a CNN (batch norm, activations, pooling,
residual adds) keep the layout of their input. So a value entering a convolution in the
standard layout is converted once, where it is made (every reader then gets the converted
value), the layout flows on through the network, and 4-d results leave in the standard
layout. Values are unchanged: a layout is how a tensor is stored, not what it holds.

Often is not always: small batches and some kernels (DCGAN's 4×4 stride-2 convolutions at
batch 2) run slower channels-last. So the pass first predicts, with the cost model of
``_layout_costs`` (times measured per shape class, batch and thread count, checked in under
``costs/``), the model's convolution and pooling time in each layout plus the conversions, at each
measured batch. It rewrites only when channels-last is predicted to win by 1% or more: at
every batch (a fixed batch: at that batch), or from a batch on, which the conversions then
check at run time (``min_batch``: below it the value keeps its layout, and the conversion
back is a no-op). It decides so for each thread count the table has a column for; where the
decisions differ, the conversions also check ``torch.get_num_threads()`` at run time
(``threads``: one ``min_batch`` per range of thread counts, each taking the nearest column).
``--report`` gives each convolution's and pool's class and predicted ratios, the model's, per thread
count, the sizes it assumed for symbolic dims and the decision.

The torch module converts in inference only (``x if torch.is_grad_enabled() else
x.contiguous(memory_format=torch.channels_last)``: see the lowering of ``memory_format``);
the NumPy executor treats the op as the identity. Weights keep their names and layout.
"""

from __future__ import annotations

from itertools import pairwise

from netc.specs.catalogue import get, has_trait

from ..dims import Expr, subs, symbols
from ..ir import Graph, Node, Ref
from . import _layout_costs as costs
from ._fusion import fresh_id
from .base import PassContext, PassResult, each_node, register

Rule = tuple  # (min_batch, threads): the memory_format attributes of the conversions (see decide)


def _keeps_layout(op: str) -> bool:
    """Whether the op's kernels give its output the layout of its (4-d) input: the ops with
    the trait keeps_layout, and the elementwise ones."""
    return has_trait(op, "keeps_layout") or has_trait(op, "elementwise")


@register("use_channels_last", level=2,
          purpose="run convolutions on channels-last tensors (torch, inference) where the measured "
                  "cost model predicts a gain")
def use_channels_last(ctx: PassContext) -> PassResult:
    g, result = ctx.graph, PassResult()
    convs = [n for n in g.nodes() if has_trait(n.op, "channels_last")]
    if not convs:
        return result
    rule = decide(g, convs, result)
    if rule is None:
        return result
    last: dict[str, bool] = {}  # node id -> its (first) output is stored channels-last
    for n in each_node(g):
        if has_trait(n.op, "channels_last") and not last.get(n.inputs[0][0], False):
            last[_convert(g, n.inputs[0], result, rule)] = True
        last[n.id] = _flows(g, n, last)
    for i, (name, ref) in enumerate(list(g.outputs)):
        if g.type_of(ref).rank == 4 and last.get(ref[0], False):
            producer = g.producer(ref)
            node = _memory_format(g, ref, "contiguous", producer, in_model=True)
            g.outputs[i] = (name, (node.id, 0))
            result.rewrote(f"result `{name or producer.id}` back to the standard layout", producer.span)
    return result


def _flows(g: Graph, n: Node, last: dict[str, bool]) -> bool:
    return (has_trait(n.op, "channels_last")
            or (n.op == "memory_format" and n.attrs.format == "channels_last")
            or (_keeps_layout(n.op)
                and any(last.get(src, False) for src, _ in n.inputs if g.type_of((src, 0)).rank == 4)))


def _plan(g: Graph) -> tuple[list[Ref], list[Ref], list[Node]]:
    """What the rewrite would convert (the refs made channels-last, the results made
    standard again), and the pools the cost model weighs that would read a channels-last
    value, without rewriting."""
    last: dict[str, bool] = {}
    converted, pools = [], []
    for n in g.nodes():
        if has_trait(n.op, "channels_last") and not last.get(n.inputs[0][0], False):
            converted.append(n.inputs[0])
            last[n.inputs[0][0]] = True
        if has_trait(n.op, "layout_costed") and last.get(n.inputs[0][0], False):
            pools.append(n)
        last[n.id] = _flows(g, n, last)
    back = [ref for _, ref in g.outputs if g.type_of(ref).rank == 4 and last.get(ref[0], False)]
    return converted, back, pools


def _model(g: Graph, convs: list[Node], sizes: tuple[int, ...] = (costs.ASSUMED,)) -> tuple | str:
    """What the cost model weighs: (the convolutions and pools; for each of ``sizes`` that the
    symbolic sizes other than the batch take, the sites and the elements converted (without
    such sizes, for the last one only); batch symbol, batch, other symbolic sizes), or why the
    model cannot be predicted."""
    firsts = {str(g.type_of(n.inputs[0]).shape[0]) for n in convs}
    batch0 = g.type_of(convs[0].inputs[0]).shape[0]
    if len(firsts) > 1 or (isinstance(batch0, Expr) and symbols(batch0) != {str(batch0)}):
        return f"the convolutions' inputs do not share one batch size ({', '.join(sorted(firsts))})"
    batch_symbol = str(batch0) if isinstance(batch0, Expr) else None
    others = sorted({s for n in convs for t in (g.type_of(n.inputs[0]), n.type) for d in t.shape
                     for s in symbols(d)} - {batch_symbol})
    converted, back, pools = _plan(g)
    weighed = convs + pools
    at = {}
    for size in sizes if others else sizes[-1:]:
        env = dict.fromkeys(others, size)
        sites = [costs.site(n, g.type_of(n.inputs[0]), env) for n in weighed]
        unmeasured = sorted({s.cls for s in sites if any(s.cls not in c["classes"] for _, c in costs.columns())})
        if unmeasured:
            return (f"the cost table has no measurement for {', '.join(unmeasured)} "
                    "(benchmarks/bench_costs.py measures every class)")
        at[size] = sites, [subs(g.type_of(r).numel(), env) for r in converted + back]
    return weighed, at, batch_symbol, batch0, others


def predicted(g: Graph, threads: int, batch: int, size: int = costs.ASSUMED) -> float | None:
    """The model's predicted channels-last / standard time at ``batch`` on ``threads``
    threads (the nearest column), symbolic sizes other than the batch at ``size``, before
    the pass; None where it has nothing to predict (benchmarks/bench_layout.py sets it
    beside measured times)."""
    convs = [n for n in g.nodes() if has_trait(n.op, "channels_last")]
    model = _model(g, convs, (size,)) if convs else ""
    if isinstance(model, str):
        return None
    _, at, batch_symbol, batch0, _ = model
    sites, moved = at[size]
    cols = costs.columns()
    column = next(c for (t, c), (first, last) in zip(cols, costs.thread_ranges([t for t, _ in cols]))
                  if first <= threads and (last is None or threads <= last))
    return costs.predict(sites, moved, batch_symbol, batch if batch_symbol else int(batch0), column)[0]


def decide(g: Graph, convs: list[Node], result: PassResult) -> Rule | None:
    """For each thread count the table measured, the batch from which channels-last is
    predicted to win (1: always; 0: never); the rule for the conversions (:data:`Rule`), or
    None where no thread count converts. Notes why in ``result``."""
    span = convs[0].span
    model = _model(g, convs, costs.ASSUMED_SIZES)
    if isinstance(model, str):
        result.note(f"not applied: {model}", span)
        return None
    weighed, at, batch_symbol, batch0, others = model
    sites = at[costs.ASSUMED][0]  # (the per-site lines are at one size)
    cols = costs.columns()
    ranges = costs.thread_ranges([t for t, _ in cols])
    labels = [_threads(r, t) for r, (t, _) in zip(ranges, cols)]
    batches = [sorted(int(b) for b in c["convert_ns_per_element"]) for _, c in cols]
    for n, s in zip(weighed, sites):
        per = [[costs.predict([s], [], batch_symbol, b, c)[1][s.id] for b in bs] for bs, (_, c) in zip(batches, cols)]
        result.note(f"{n.op} `{n.id}` [{s.cls}]: channels-last / standard time, " + "; ".join(
            f"{label}: {'/'.join(f'{r:.2f}' for r in rs)} at batch {'/'.join(map(str, bs))}"
            for label, rs, bs in zip(labels, per, batches)), n.span)
    starts = []
    for label, bs, (t, c) in zip(labels, batches, cols):
        each = []
        for size, (at_size, moved) in at.items():
            start, why = _decide_column(at_size, moved, batch_symbol, batch0, bs, c)
            each.append(start)
            where = f" at {', '.join(f'{s}={size}' for s in others)}" if others else ""
            result.note(f"{label}{where}: {why}; table column {t}: {c.get('clock', '?')} clock, "
                        f"{c['measured'].split(':')[0]}", span)
        starts.append(0 if 0 in each else max(each))  # from the batch that wins at every size
    merged = [(r[0], m) for i, (r, m) in enumerate(zip(ranges, starts)) if i == 0 or m != starts[i - 1]]
    rule = None if all(m == 0 for m in starts) else (merged[0][1], ()) if len(merged) == 1 \
        else (tuple(m for _, m in merged), tuple(t for t, _ in merged))
    assumed = (f"; for {', '.join(others)} at each of {', '.join(map(str, at))} (the batch from which both "
               "win)") if others else ""
    result.note(f"{_says(rule, batch_symbol, batch0)}{assumed}", span)
    return rule


def _threads(r: tuple[int, int | None], column: int) -> str:
    """The run-time thread counts one column stands for: ``1 thread``, ``≥ 2 threads``."""
    first, last = r
    text = ("every thread count" if first == 1 and last is None else f"≥ {first} threads" if last is None
            else f"{first} thread{'s' if first > 1 else ''}" if first == last else f"{first}–{last} threads")
    return text if first == last == column else f"{text} (measured at {column})"


def _decide_column(sites, moved, batch_symbol, batch0, batches, column) -> tuple[int, str]:
    """The batch from which channels-last is predicted to win with one thread column (1:
    always; 0: never), and why, for the report."""
    if batch_symbol is None:
        r, _ = costs.predict(sites, moved, None, int(batch0), column)
        ok = r <= costs.MARGIN
        return (1 if ok else 0), (f"{'applied' if ok else 'not applied'}: predicted {r:.2f} of the standard "
                                  f"layout's time at its batch {batch0} (wins at ≤ {costs.MARGIN})")
    ratio = {b: costs.predict(sites, moved, batch_symbol, b, column)[0] for b in batches}
    shown = f"predicted channels-last / standard time by batch {batch_symbol} = " + \
        ", ".join(f"{b}: {ratio[b]:.2f}" for b in batches)
    start = costs.threshold(lambda b: costs.predict(sites, moved, batch_symbol, b, column)[0], batches)
    if start is None:
        return 0, f"not applied: {shown} (wins at ≤ {costs.MARGIN})"
    return start, f"{'applied at every batch' if start == 1 else f'applied for {batch_symbol} ≥ {start}'}: {shown}"


def _says(rule: Rule | None, batch_symbol: str | None, batch0) -> str:
    """The decision for the model, in words."""
    def one(m: int) -> str:
        return ("not applied" if m == 0 else f"applied at its batch {batch0}" if batch_symbol is None
                else "applied at every batch" if m == 1 else f"applied for {batch_symbol} ≥ {m}")
    if rule is None:
        return f"{'not applied at its batch ' + str(batch0) if batch_symbol is None else 'not applied'} " \
               "at any thread count"
    min_batch, threads = rule
    if not threads:
        return f"{one(min_batch)}{' (checked at run time)' if min_batch > 1 else ''} at every thread count"
    ranges = [(t, u - 1) for t, u in pairwise(threads)] + [(threads[-1], None)]
    return "depends on the thread count, checked at run time (torch.get_num_threads()): " + "; ".join(
        f"{_threads(r, r[0]).split(' (')[0]}: {one(m)}" for r, m in zip(ranges, min_batch))


def _convert(g, ref, result: PassResult, rule: Rule) -> str:
    """Convert ``ref`` to channels-last where it is made; every reader reads the new value."""
    producer = g.producer(ref)
    node = _memory_format(g, ref, "channels_last", producer, rule=rule)
    g.replace_uses(ref, (node.id, 0))  # not the new node's own input
    what = f"input `{producer.id}`" if producer.op == "input" else f"{producer.op} `{producer.id}`"
    min_batch, threads = rule
    when = (" (by thread count, checked at run time)" if threads
            else f" (from batch {min_batch} on)" if min_batch > 1 else "")
    result.rewrote(f"{what} converted to channels-last for the convolutions after it{when}", producer.span)
    return node.id


def _memory_format(g, ref, fmt: str, producer: Node, in_model: bool = False, rule: Rule = (1, ())) -> Node:
    """A memory_format node reading ``ref``, in ``producer``'s block (or, ``in_model``, in the
    model itself, where a model result is read: a block's internal value is not visible
    there), just after it."""
    attrs = get("memory_format").Attrs(format=fmt, min_batch=rule[0], threads=rule[1])
    if in_model and producer.block:
        nid, k = fmt, 0
        while nid in g or nid in g.blocks:
            k += 1
            nid = f"{fmt}_{k}"
        node = Node(nid, "memory_format", (ref,), attrs, (g.type_of(ref),), producer.span, "")
    else:
        node = Node(fresh_id(g, producer.id, fmt), "memory_format", (ref,), attrs, (g.type_of(ref),),
                    producer.span, producer.block)
    first = next((n for n in g.nodes() if ref in n.inputs), None)
    return g.insert_before(first.id, node) if first else g.add(node)
