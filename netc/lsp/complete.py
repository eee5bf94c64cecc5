"""Completion: op and block names with their signatures, and keyword arguments.

Read from the text before the cursor, so that it works on half-written lines the parser
refuses: inside ``f(...)`` the keywords of ``f`` (an op's attributes, a block's parameters)
come first; after ``->`` what a stage can be (ops, blocks, cells, ``let`` layers); elsewhere
every name in scope as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netc.compiler import ast
from netc.compiler.parse import KEYWORDS
from netc.specs.catalogue import all_ops

from .names import LET, Index

_WORD_BEFORE = re.compile(r"([A-Za-z_]\w*)?$")
_INTERNAL = {"activation_slope"}  # set by the optimiser's fusions, not written by hand


@dataclass(frozen=True)
class Item:
    label: str
    kind: str  # "op", "block", "cell", "model", "layer", "value", "const", "keyword", "kwarg"
    detail: str
    doc: str = ""
    insert: str | None = None
    sort: str = "5"


def completions(text: str, offset: int, index: Index | None, key: str, module: ast.Module | None) -> list[Item]:
    before = text[:offset]
    prefix = _WORD_BEFORE.search(before).group(1) or ""
    head = before[: len(before) - len(prefix)]
    callee = _open_call(head)
    items: list[Item] = []
    if callee is not None and re.search(r"[(,]\s*$", head):
        items += _keywords(callee, index, key)
    after_arrow = re.search(r"->\s*$", head) is not None
    items += _ops()
    items += _decls(index, key, after_arrow)
    items += _locals(index, key, module, offset, text, after_arrow)
    if not after_arrow and callee is None:
        items += [Item(k, "keyword", "keyword", sort="9") for k in sorted(KEYWORDS)]
    out, seen = [], set()
    for it in items:
        if it.label.lower().startswith(prefix.lower()) and (it.label, it.kind) not in seen:
            seen.add((it.label, it.kind))
            out.append(it)
    return out


def _open_call(head: str) -> str | None:
    """The name before the innermost unclosed ``(`` on the statement before the cursor."""
    depth = 0
    i = len(head) - 1
    stop = max(0, len(head) - 4000)
    while i >= stop:
        ch = head[i]
        if ch in ")]":
            depth += 1
        elif ch in "([":
            if depth == 0:
                if ch == "[":
                    return None
                m = re.search(r"([A-Za-z_]\w*)\s*$", head[:i])
                return m.group(1) if m else None
            depth -= 1
        elif ch in "{}":
            return None
        i -= 1
    return None


def _ops() -> list[Item]:
    out = []
    for name, op in all_ops().items():
        doc = op.doc().split("\n\n")[0].replace("\n", " ")
        out.append(Item(name, "op", op.signature or name, doc, sort="2"))
    return out


def _decls(index: Index | None, key: str, after_arrow: bool) -> list[Item]:
    if index is None:
        return []
    from .hover import header, source_text

    out = []
    for name, decl in index.ws.namespaces.get(key, {}).items():
        if isinstance(decl, ast.FuncDecl):
            if after_arrow and decl.kind == "model":
                continue
            args = ", ".join(source_text(p.span) for p in decl.params if not p.is_tensor)
            out.append(Item(name, decl.kind, f"{name}({args})", header(decl), sort="1"))
        elif isinstance(decl, ast.ConstDecl) and not after_arrow:
            out.append(Item(name, "const", f"const {name} = {source_text(decl.value.span)}", sort="3"))
    return out


def _locals(index: Index | None, key: str, module, offset: int, text: str, after_arrow: bool) -> list[Item]:
    if index is None or module is None:
        return []
    func = _enclosing(module, offset, text)
    if func is None:
        return []
    out = []
    for name, occ in index.locals.get((key, id(func)), {}).items():
        if after_arrow and occ.what != LET:
            continue
        kind = "layer" if occ.what == LET else "value"
        out.append(Item(name, kind, f"{occ.what} of {func.kind} {func.name}", sort="0"))
    return out


def _enclosing(module: ast.Module, offset: int, text: str):
    line = text.count("\n", 0, offset) + 1
    for d in module.decls:
        if isinstance(d, ast.FuncDecl) and d.span.line <= line <= d.span.end_line:
            return d
    return None


def _keywords(callee: str, index: Index | None, key: str) -> list[Item]:
    from .hover import attr_text, source_text

    ops = all_ops()
    if callee in ops:
        op = ops[callee]
        hidden = _INTERNAL | ({op.tensor_kwargs_attr} if op.tensor_kwargs_attr else set())
        return [Item(f"{name}=", "kwarg", attr_text(op, name), f"attribute of {callee}", insert=f"{name}=", sort="0")
                for name in op.Attrs.model_fields if name not in hidden] + \
               [Item(f"{name}=", "kwarg", name, f"tensor argument of {callee}", insert=f"{name}=", sort="0")
                for name in op.tensor_kwargs]
    decl = index.ws.namespaces.get(key, {}).get(callee) if index is not None else None
    if isinstance(decl, ast.FuncDecl):
        return [Item(f"{p.name}=", "kwarg", source_text(p.span), f"parameter of {decl.kind} {decl.name}",
                     insert=f"{p.name}=", sort="0") for p in decl.params if not p.is_tensor]
    return []
