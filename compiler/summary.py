"""Per-layer summaries, like Keras' ``model.summary()`` or torchinfo.

Rows follow the graph in order; each block instance gets a row with its totals, and its
nodes are indented under it. ``depth`` folds blocks nested deeper than ``depth`` levels into
their row. MACs stay symbolic where the input sizes are (``1,816,582,144·N``).
"""

from __future__ import annotations

import html

from .dims import Dim, Expr
from .ir import Graph
from .records import Record


class Row(Record, frozen=False):
    name: str  # scope path (node id or block instance)
    op: str  # op name, or the block's name
    shape: str  # output shape(s)
    params: int
    macs: Dim
    depth: int  # nesting level, 0 = top
    kind: str  # "input", "op" or "block"
    value: str | None = None  # the name the spec gave the value(s) it computes (`c = ...`)

    def as_json(self) -> dict:
        """The row as ``summary --json`` writes it (schema ``netc.summary/1``)."""
        from .summary_json import row_json

        return row_json(self)


class Summary(Record, frozen=False):
    model: str
    rows: list[Row]
    params: int  # trainable parameters
    buffers: int  # non-trainable state (batch-norm running statistics)
    macs: Dim
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str | None, str]]

    def as_json(self) -> dict:
        """The model as ``summary --json`` writes it (schema ``netc.summary/1``, docs/json.md)."""
        from .summary_json import model_json

        return model_json(self)

    def __str__(self) -> str:
        """The table ``netc summary`` prints."""
        return render_table(self)

    def __repr__(self) -> str:
        return f"<Summary {self.model}: {len(self.rows)} rows, {self.params:,} params, MACs {fmt_count(self.macs)}>"

    def _repr_html_(self) -> str:
        """The table as HTML, for notebooks."""
        return render_html(self)


def summarize(graph: Graph, depth: int | None = None, rows: bool = True) -> Summary:
    """The model's rows and totals; ``rows=False``: the totals only (what ``netc check`` prints)."""
    weights = graph.weights()
    seen: set[str] = set()
    table: list[Row] = []
    totals = _block_totals(graph) if rows else {}
    for n in graph.nodes() if rows else ():
        if n.op == "constant":
            continue
        chain = graph.nesting(n)
        for k, b in enumerate(chain):  # open block rows on first sight
            if b.path not in seen:
                seen.add(b.path)
                if depth is None or k < depth:
                    p, m, shape = totals[b.path]
                    table.append(Row(b.path, b.label, shape, p, m, k, "block"))
        level = len(chain)
        if depth is not None and level >= depth:
            continue
        own = 0 if n.layer and n.layer != n.id else sum(p.numel for p in n.params.values() if not p.buffer)
        shape = ", ".join(t.shape_str() for t in n.types)
        table.append(Row(n.id, op_text(n), shape, own, n.macs, level, "input" if n.op == "input" else "op",
                        ", ".join(v for v in n.names if v) or None))
    return Summary(
        graph.name, table,
        params=sum(p.numel for p in weights.values() if not p.buffer),
        buffers=sum(p.numel for p in weights.values() if p.buffer),
        macs=graph.total_macs(),
        inputs=[(n.id, str(n.type)) for n in graph.input_nodes()],
        outputs=[(name, str(graph.type_of(ref))) for name, ref in graph.outputs],
    )


def op_text(n) -> str:
    """The op as a row shows it; a fused chain with its steps: ``fused_elementwise(mul+add+sigmoid)``;
    a layer with a fused activation: ``conv2d+relu``."""
    if n.op == "fused_elementwise":
        from netc.specs.catalogue import get

        return f"{n.op}({get(n.op).chain(n.attrs)})"
    activation = getattr(n.attrs, "activation", None)
    return f"{n.op}+{activation}" if activation else n.op


def _block_totals(graph: Graph) -> dict[str, tuple[int, Dim, str]]:
    out: dict[str, list] = {path: [0, 0, ""] for path in graph.blocks}
    counted: set[str] = set()
    for n in graph.nodes():
        key = n.layer or n.id
        params = 0
        if key not in counted:
            counted.add(key)
            params = sum(p.numel for p in n.params.values() if not p.buffer)
        shape = ", ".join(t.shape_str() for t in n.types)
        for b in graph.nesting(n):
            acc = out[b.path]
            acc[0] += params
            acc[1] = acc[1] + n.macs
            acc[2] = shape
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def fmt_count(d: Dim) -> str:
    """12,345 or 1,816,582,144·N (thousands separators, · for products with symbols)."""
    if isinstance(d, int):
        return f"{d:,}"
    if not isinstance(d, Expr):
        raise TypeError(f"not a count: {d!r}")
    parts = []
    for i, (m, c) in enumerate(d.terms):
        body = "·".join(str(a) if isinstance(a, str) else f"({a})" for a in m)
        mag = abs(c)
        text = f"{mag:,}" if not body else (body if mag == 1 else f"{mag:,}·{body}")
        parts.append(("-" if c < 0 else "") + text if i == 0 else (" - " if c < 0 else " + ") + text)
    return "".join(parts)


def render_table(s: Summary, color: bool = False) -> str:
    def bold(x):
        return f"\033[1m{x}\033[0m" if color else x

    def dim(x):
        return f"\033[2m{x}\033[0m" if color else x

    header = ("Layer (scope)", "Op", "Output shape", "Params", "MACs")
    body = [("  " * r.depth + r.name, r.op, r.shape, f"{r.params:,}" if r.params else "-",
             fmt_count(r.macs) if r.macs != 0 else "-") for r in s.rows]
    widths = [max(len(x[i]) for x in [header] + body) for i in range(5)]

    def line(cells):
        left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3])]
        right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:])]
        return "  ".join(left + right).rstrip()

    rule = "─" * len(line(header))
    out = [bold(f"Model: {s.model}"), rule, bold(line(header)), rule]
    for r, cells in zip(s.rows, body):
        text = line(cells)
        out.append(bold(text) if r.kind == "block" else dim(text) if r.kind == "input" else text)
    out += [rule,
            f"Total params: {s.params:,}",
            f"Non-trainable state (buffers): {s.buffers:,}",
            f"Total MACs: {fmt_count(s.macs)}",
            f"Inputs: {', '.join(f'{n}: {t}' for n, t in s.inputs)}",
            f"Outputs: {', '.join((f'{n}: ' if n else '') + t for n, t in s.outputs)}",
            rule]
    return "\n".join(out)


def render_html(s: Summary) -> str:
    """The summary table as an HTML ``<table>``: the rows of :func:`render_table` (a block's
    row bold, its nodes indented under it), the totals in the footer."""
    esc = html.escape
    out = [f"<table><caption><b>Model: {esc(s.model)}</b></caption>",
           "<thead><tr><th>Layer (scope)</th><th>Op</th><th>Output shape</th><th>Params</th><th>MACs</th></tr></thead>",
           "<tbody>"]
    for r in s.rows:
        cells = [esc(r.name), esc(r.op), esc(r.shape)]
        if r.kind == "block":
            cells = [f"<b>{c}</b>" for c in cells]
        pad = f' style="padding-left: {1.5 * r.depth + 0.5}em"' if r.depth else ""
        out.append(f"<tr><td{pad}>{cells[0]}</td><td>{cells[1]}</td><td>{cells[2]}</td>"
                   f'<td style="text-align: right">{f"{r.params:,}" if r.params else "-"}</td>'
                   f'<td style="text-align: right">{esc(fmt_count(r.macs)) if r.macs != 0 else "-"}</td></tr>')
    out.append("</tbody><tfoot>")
    for label, value in (("Total params", f"{s.params:,}"), ("Non-trainable state (buffers)", f"{s.buffers:,}"),
                         ("Total MACs", fmt_count(s.macs)),
                         ("Inputs", ", ".join(f"{n}: {t}" for n, t in s.inputs)),
                         ("Outputs", ", ".join((f"{n}: " if n else "") + t for n, t in s.outputs))):
        out.append(f'<tr><td colspan="3">{esc(label)}</td><td colspan="2" style="text-align: right">'
                   f"{esc(value)}</td></tr>")
    out.append("</tfoot></table>")
    return "\n".join(out)
