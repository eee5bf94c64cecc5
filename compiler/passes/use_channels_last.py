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
``costs/``), the model's convolution time in each layout plus the conversions, at each
measured batch. It rewrites only when channels-last is predicted to win by 1% or more: at
every batch (a fixed batch: at that batch), or from a batch on, which the conversions then
check at run time (``min_batch``: below it the value keeps its layout, and the conversion
back is a no-op). ``--report`` gives each convolution's class and predicted ratios, the
model's, the sizes it assumed for symbolic dims and the decision.

The torch module converts in inference only (``x if torch.is_grad_enabled() else
x.contiguous(memory_format=torch.channels_last)``: see the lowering of ``memory_format``);
the NumPy executor treats the op as the identity. Weights keep their names and layout.
"""

from __future__ import annotations

from netc.specs.catalogue import get, has_trait

from ..dims import Expr, subs, symbols
from ..ir import Graph, Node, Ref
from . import _layout_costs as costs
from ._fusion import fresh_id
from .base import PassContext, PassResult, each_node, register


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
    min_batch = decide(g, convs, result)
    if min_batch is None:
        return result
    last: dict[str, bool] = {}  # node id -> its (first) output is stored channels-last
    for n in each_node(g):
        if has_trait(n.op, "channels_last") and not last.get(n.inputs[0][0], False):
            last[_convert(g, n.inputs[0], result, min_batch)] = True
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


def _plan(g: Graph) -> tuple[list[Ref], list[Ref]]:
    """What the rewrite would convert (the refs made channels-last, the results made
    standard again), without rewriting."""
    last: dict[str, bool] = {}
    converted, back = [], []
    for n in g.nodes():
        if has_trait(n.op, "channels_last") and not last.get(n.inputs[0][0], False):
            converted.append(n.inputs[0])
            last[n.inputs[0][0]] = True
        last[n.id] = _flows(g, n, last)
    back = [ref for _, ref in g.outputs if g.type_of(ref).rank == 4 and last.get(ref[0], False)]
    return converted, back


def decide(g: Graph, convs: list[Node], result: PassResult) -> int | None:
    """The batch from which to convert (1: always), or None; notes why in ``result``."""
    span = convs[0].span
    firsts = {str(g.type_of(n.inputs[0]).shape[0]) for n in convs}
    batch0 = g.type_of(convs[0].inputs[0]).shape[0]
    if len(firsts) > 1 or (isinstance(batch0, Expr) and symbols(batch0) != {str(batch0)}):
        result.note(f"not applied: the convolutions' inputs do not share one batch size ({', '.join(sorted(firsts))})",
                    span)
        return None
    batch_symbol = str(batch0) if isinstance(batch0, Expr) else None
    others = sorted({s for n in convs for t in (g.type_of(n.inputs[0]), n.type) for d in t.shape
                     for s in symbols(d)} - {batch_symbol})
    env = {s: costs.ASSUMED for s in others}
    sites = [costs.site(n, g.type_of(n.inputs[0]), env) for n in convs]
    key, entry = costs.threads_entry()
    unmeasured = sorted({s.cls for s in sites} - set(entry["classes"]))
    if unmeasured:
        result.note(f"not applied: the cost table has no measurement for {', '.join(unmeasured)} "
                    "(benchmarks/bench_costs.py measures every class)", span)
        return None
    converted, back = _plan(g)
    moved = [subs(g.type_of(r).numel(), env) for r in converted + back]
    batches = sorted(int(b) for b in next(iter(entry["classes"].values())))
    ratio = {b: costs.predict(sites, moved, batch_symbol, b)[0] for b in batches}
    assumed = f"; assumed {', '.join(f'{s}={costs.ASSUMED}' for s in others)}" if others else ""
    source = f"table: {key} thread(s), {costs.table()['measured'].split(':')[0]}"
    for n, s in zip(convs, sites):
        per = [costs.predict([s], [], batch_symbol, b)[1][s.id] for b in batches]
        result.note(f"{n.op} `{n.id}` [{s.cls}]: channels-last / standard time "
                    f"{'/'.join(f'{r:.2f}' for r in per)} at batch {'/'.join(map(str, batches))}", n.span)
    shown = ", ".join(f"{b}: {ratio[b]:.2f}" for b in batches)
    if batch_symbol is None:
        r, _ = costs.predict(sites, moved, None, int(batch0))
        ok = r <= costs.MARGIN
        result.note(f"{'applied' if ok else 'not applied'}: the model's convolutions and conversions predicted at "
                    f"{r:.2f} of the standard layout's time at its batch {batch0} (wins at ≤ {costs.MARGIN}){assumed}; "
                    f"{source}", span)
        return 1 if ok else None
    start = costs.threshold(lambda b: costs.predict(sites, moved, batch_symbol, b)[0], batches)
    if start is None:
        result.note(f"not applied: predicted channels-last / standard time by batch {batch_symbol} = {shown} "
                    f"(wins at ≤ {costs.MARGIN}){assumed}; {source}", span)
    elif start == 1:
        result.note(f"applied at every batch: predicted channels-last / standard time by batch {batch_symbol} = "
                    f"{shown}{assumed}; {source}", span)
    else:
        result.note(f"applied for {batch_symbol} ≥ {start} (checked at run time): predicted channels-last / standard "
                    f"time by batch {batch_symbol} = {shown}{assumed}; {source}", span)
    return start


def _convert(g, ref, result: PassResult, min_batch: int) -> str:
    """Convert ``ref`` to channels-last where it is made; every reader reads the new value."""
    producer = g.producer(ref)
    node = _memory_format(g, ref, "channels_last", producer, min_batch=min_batch)
    g.replace_uses(ref, (node.id, 0))  # not the new node's own input
    what = f"input `{producer.id}`" if producer.op == "input" else f"{producer.op} `{producer.id}`"
    when = f" (from batch {min_batch} on)" if min_batch > 1 else ""
    result.rewrote(f"{what} converted to channels-last for the convolutions after it{when}", producer.span)
    return node.id


def _memory_format(g, ref, fmt: str, producer: Node, in_model: bool = False, min_batch: int = 1) -> Node:
    """A memory_format node reading ``ref``, in ``producer``'s block (or, ``in_model``, in the
    model itself, where a model result is read: a block's internal value is not visible
    there), just after it."""
    attrs = get("memory_format").Attrs(format=fmt, min_batch=min_batch)
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
