"""Hover text and inlay hints: what the compiler knows about the thing under the cursor.

A layer or expression shows its tensor type (symbolic dims as written: ``float[N, 128]``),
its parameters and MACs (the summary's row) and the op's signature and one-line doc from the
catalogue; a name shows what it was declared as and, for a tensor, its type. Where one piece
of text stands for several nodes (a block's body, applied more than once) each instance is
listed.
"""

from __future__ import annotations

from netc.compiler import ast
from netc.compiler.ir import BlockInstance, Graph, Node
from netc.compiler.summary import fmt_count
from netc.specs.catalogue import get as get_op

from .analysis import Analysis, Entry
from .names import DIM, KWARG, LET, LOCAL, PARAM, WEIGHT, Index, Occ

MAX_LISTED = 6  # instances listed one by one in a hover


def hover(a: Analysis, index: Index | None, line: int, column: int) -> tuple[str, tuple[int, int]] | None:
    """Markdown for the position (line, column from 1) and the character range it is about."""
    occ = index.at(a.key, line, column) if index is not None else None
    if occ is not None:
        text = _occ_hover(a, index, occ)
        if text:
            start, end = a.offsets(occ.span)
            if isinstance(occ.node, (ast.Stage, ast.Call)):
                start, end = a.offsets(occ.node.span)
            return text, (start, end)
    entries = a.at(a.offset((line, column)))
    if entries:
        return ir_hover(a, entries), (entries[0].start, entries[0].end)
    return None


def _occ_hover(a: Analysis, index: Index, o: Occ) -> str | None:
    if isinstance(o.node, (ast.Stage, ast.Call)) and o.what != KWARG:
        start, end = a.offsets(o.node.span)
        entries = a.with_span(start, end) if o.span.path == a.source.path else []
        target = index.resolve(a.key, o)
        if entries:
            text = ir_hover(a, entries)
            if isinstance(target, Occ) and target.what == LET:
                text += f"\n\nthe layer bound by `let {target.name}` ({target.span.line}:{target.span.column})"
            return text
        if target is None:
            return op_doc(o.name)
        return _target_hover(a, o.name, target)
    if o.what == KWARG:
        return _kwarg_hover(index.resolve(a.key, o), o)
    target = index.resolve(a.key, o)
    if target is None:
        return None
    return _target_hover(a, o.name, target)


def _target_hover(a: Analysis, name: str, target) -> str | None:
    if isinstance(target, Occ):
        return _local_hover(a, target)
    if isinstance(target, ast.FuncDecl):
        return decl_doc(a, target)
    if isinstance(target, ast.ConstDecl):
        return f"```net\nconst {target.name} = {source_text(target.value.span)}\n```"
    if isinstance(target, ast.PairDecl):
        roles = ", ".join(f"{r.role}: {r.model}" for r in target.roles)
        return f"```net\npair {target.name}({roles})\n```"
    return None


def _kwarg_hover(target, o: Occ) -> str | None:
    if isinstance(target, tuple):
        decl, p = target
        return f"`{source_text(p.span)}`: parameter of {decl.kind} `{decl.name}`"
    op = get_op(o.callee)
    if op is None or o.name not in op.Attrs.model_fields:
        return None
    return f"`{attr_text(op, o.name)}`: attribute of `{op.name}`\n\n`{op.signature or op.name}`"


def attr_text(op, name: str) -> str:
    from pydantic_core import PydanticUndefined

    from netc.specs.opsdoc import _type_name

    f = op.Attrs.model_fields[name]
    if f.default is PydanticUndefined:
        return f"{name}: {_type_name(f.annotation)}"
    default = f'"{f.default}"' if isinstance(f.default, str) else {True: "true", False: "false", None: "none"}.get(
        f.default, f.default) if isinstance(f.default, (bool, type(None))) else f.default
    return f"{name}: {_type_name(f.annotation)} = {default}"


def _local_hover(a: Analysis, d: Occ) -> str:
    func = d.func
    where = f"{func.kind} `{func.name}`" if func is not None else "the spec"
    if d.what == PARAM:
        head = f"```net\n{source_text(d.node.span)}\n```\nparameter of {where}"
        if d.node.is_tensor:
            return head + _types_block(_param_types(a, func, d.name))
        return head + _values_block(_arg_values(a, func, d.name))
    if d.what == DIM:
        return f"dim `{d.name}` of {where}" + _values_block(_arg_values(a, func, d.name, env=True))
    if d.what == LET:
        text = f"```net\nlet {d.name} = {source_text(d.node.value.span)}\n```\na layer of {where}"
        if isinstance(d.node.value, ast.Call) and get_op(d.node.value.func) is not None:
            text += "\n\n---\n" + op_doc(d.node.value.func)
        return text
    if d.what == WEIGHT:
        return f"```net\n{source_text(d.node.span)}\n```\na learned tensor of {where}"
    if d.what == LOCAL:
        types = _named_types(a, func, d.name)
        if types:
            return f"`{d.name}`: value in {where}" + _types_block(types)
        return f"```net\n{source_text(d.node.span)}\n```"
    return f"`{d.name}`"


def source_text(span) -> str:
    src = span.source
    starts = src.line_starts
    start = starts[span.line - 1] + span.column - 1
    end = starts[min(span.end_line, len(starts)) - 1] + span.end_column - 1
    return " ".join(src.text[start:end].split())


def decl_doc(a: Analysis, decl: ast.FuncDecl) -> str:
    text = f"```net\n{header(decl)}\n```"
    if decl.kind == "model" and decl.name in a.graphs:
        g = a.graphs[decl.name]
        params = sum(p.numel for p in g.weights().values() if not p.buffer)
        ins = ", ".join(f"{n.id}: {n.type}" for n in g.input_nodes())
        outs = ", ".join(str(t) for t in g.output_types())
        text += f"\n({ins}) → {outs}  \nparams {params:,} · MACs {fmt_count(g.total_macs())}"
    return text


def header(decl: ast.FuncDecl) -> str:
    """A block's, model's or cell's declaration up to its body, on one line."""
    src, span = decl.span.source, decl.span
    start = src.line_starts[span.line - 1] + span.column - 1
    brace = src.text.find("{", start)
    return " ".join(src.text[start: brace if brace >= 0 else start + 200].split())


def op_doc(name: str) -> str | None:
    op = get_op(name)
    if op is None:
        return None
    doc = op.doc().split("\n\n")[0].replace("\n", " ")
    return f"`{op.signature or op.name}`  \n{doc}"


# -- IR ----------------------------------------------------------------------------------

def pick(entries: list[Entry]) -> list[Entry]:
    """The entries a hover describes: a stack rather than its copies, and per block instance
    the last node a piece of text made (the value it computes)."""
    blocks = [e for e in entries if e.is_block]
    paths = {(id(e.graph), e.item.path) for e in blocks}
    out = [e for e in blocks if (id(e.graph), e.item.parent) not in paths]
    last: dict[tuple[int, str], Entry] = {}
    for e in entries:
        if not e.is_block:
            last[(id(e.graph), e.item.block)] = e  # entries keep graph order per span
    if not out:
        out = list(last.values())
    return out


def entry_type(e: Entry) -> str:
    item, g = e.item, e.graph
    if isinstance(item, Node):
        return ", ".join(str(t) for t in item.types)
    while not item.outputs and item.kind == "stack" and item.count:
        last = g.blocks.get(f"{item.path}.{item.count - 1}")  # a stack gives what its last copy gives
        if last is None:
            break
        item = last
    return ", ".join(str(g.type_of(r)) for r in item.outputs)


def _facts(a: Analysis, e: Entry) -> str:
    key = e.item.path if e.is_block else e.item.id
    row = a.rows.get(e.graph.name, {}).get(key)
    parts = []
    if row is not None:
        if isinstance(e.item, Node) and e.item.layer and e.item.layer != e.item.id:
            parts.append(f"shares the weights of `{e.item.layer}`")
        else:
            parts.append(f"params {row.params:,}")
        parts.append(f"MACs {fmt_count(row.macs)}")
    return " · ".join(parts)


def _scope(e: Entry) -> str:
    key = e.item.path if e.is_block else e.item.id
    return f"`{e.graph.name}.{key}`"


def ir_hover(a: Analysis, entries: list[Entry]) -> str:
    items = pick(entries)
    first = items[0].item
    if isinstance(first, BlockInstance):
        title = f"**{first.label}**"
    else:
        title = f"**{first.op}**"
    facts = [(entry_type(e), _facts(a, e)) for e in items]
    lines = [title]
    if len(set(facts)) == 1:
        ty, f = facts[0]
        lines[0] += f" → `{ty}`"
        if f:
            lines.append(f)
        if len(items) > 1:
            lines.append(f"(the same in all {len(items)} instances)")
    else:
        for e, (ty, f) in list(zip(items, facts))[:MAX_LISTED]:
            lines.append(f"- {_scope(e)}: `{ty}`" + (f" · {f}" if f else ""))
        if len(items) > MAX_LISTED:
            lines.append(f"- … and {len(items) - MAX_LISTED} more")
    text = "  \n".join(lines) if len(set(facts)) == 1 else "\n".join(lines)
    if isinstance(first, Node):
        doc = op_doc(first.op)
        if doc:
            text += "\n\n---\n" + doc
    else:
        decl = _block_decl(a, first.name)
        if decl is not None:
            text += f"\n\n---\n```net\n{header(decl)}\n```"
    return text


def _block_decl(a: Analysis, name: str):
    ws = a.workspace
    if ws is None:
        return None
    decl = ws.namespaces.get(a.key, {}).get(name)
    return decl if isinstance(decl, ast.FuncDecl) else None


def _instances(a: Analysis, func: ast.FuncDecl) -> list[tuple[Graph, BlockInstance]]:
    return [(g, b) for g in a.graphs.values() for b in g.blocks.values()
            if b.kind == "block" and b.name == func.name]


def _param_types(a: Analysis, func, name: str) -> list[tuple[str, str]]:
    if func.kind == "model":
        g = a.graphs.get(func.name)
        if g is not None and name in g:
            return [(func.name, str(g.node(name).type))]
        return []
    out = []
    for g, b in _instances(a, func):
        ref = dict(b.inputs).get(name)
        if ref is not None:
            out.append((f"{g.name}.{b.path}", str(g.type_of(ref))))
    return out


def _arg_values(a: Analysis, func, name: str, env: bool = False) -> list[tuple[str, str]]:
    if func is None or func.kind == "model":
        return []
    out = []
    for g, b in _instances(a, func):
        values = b.env if env else b.args
        if name in values:
            out.append((f"{g.name}.{b.path}", str(values[name])))
    return out


def _named_types(a: Analysis, func, name: str) -> list[tuple[str, str]]:
    if func is None:
        return []
    out = []
    path = func.span.path
    for g in a.graphs.values():
        for n in g.nodes():
            if name in n.names and n.span is not None and n.span.path == path and _inside(n.span, func.span):
                i = n.names.index(name)
                out.append((f"{g.name}.{n.id}", str(n.types[i])))
    return out


def _inside(s, outer) -> bool:
    return (outer.line, outer.column) <= (s.line, s.column) and (s.end_line, s.end_column) <= (
        outer.end_line, outer.end_column)


def _types_block(types: list[tuple[str, str]]) -> str:
    if not types:
        return ""
    distinct = list(dict.fromkeys(t for _, t in types))
    if len(distinct) == 1:
        return f"\n\n`{distinct[0]}`" + (f" (in all {len(types)} instances)" if len(types) > 1 else "")
    lines = [f"- `{where}`: `{t}`" for where, t in types[:MAX_LISTED]]
    if len(types) > MAX_LISTED:
        lines.append(f"- … and {len(types) - MAX_LISTED} more")
    return "\n\n" + "\n".join(lines)


def _values_block(values: list[tuple[str, str]]) -> str:
    if not values:
        return ""
    distinct = list(dict.fromkeys(v for _, v in values))
    if len(distinct) == 1:
        return f"\n\n= `{distinct[0]}`" + (f" (in all {len(values)} instances)" if len(values) > 1 else "")
    lines = [f"- `{where}`: `{v}`" for where, v in values[:MAX_LISTED]]
    if len(values) > MAX_LISTED:
        lines.append(f"- … and {len(values) - MAX_LISTED} more")
    return "\n\n" + "\n".join(lines)


# -- inlay hints -------------------------------------------------------------------------

def stage_types(a: Analysis) -> list[tuple[int, str]]:
    """(offset just after a pipeline stage, the type it gives) for every stage of the document
    whose type is the same in every instance."""
    if a.module is None:
        return []
    out = []
    exprs = []
    for d in a.module.decls:
        if isinstance(d, ast.FuncDecl):
            for stmt in d.body:
                if isinstance(stmt, (ast.Assign, ast.Let)):
                    exprs.append(stmt.value)
                elif isinstance(stmt, ast.Return):
                    exprs.extend(stmt.values)
    for e in ast.walk(exprs):
        if isinstance(e, ast.Pipe):
            start, end = a.offsets(e.stage.span)
            entries = a.with_span(start, end)
            if entries:
                types = {entry_type(x) for x in pick(entries)}
                if len(types) == 1:
                    out.append((end, types.pop()))
    out.sort()
    return out
