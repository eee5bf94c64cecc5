"""Layers and blocks -> `.net` text, and the order in which the spec's layers take weights.

A value read once becomes part of an expression (``x -> conv2d(64, 3) -> relu``, an operand
``x + (x -> layernorm -> self_attention(2))``); a value read more than once, and each
result, gets a statement. The weighted layers are listed in the order their text appears,
which is the order netc creates them; ``spec.py`` matches the two.
"""

from __future__ import annotations

import keyword
import re

from .layers import BINARY, Layer
from .structure import BlockType

RESERVED = {"import", "const", "block", "model", "cell", "pair", "let", "param", "defaults", "return", "if",
            "then", "else", "and", "or", "not", "true", "false"}
LINE = 100


def ident(text: str, fallback: str = "x") -> str:
    """A valid, readable identifier from an ONNX name (``input.1`` -> ``input_1``)."""
    s = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    if not s:
        s = fallback
    if s[0].isdigit():
        s = f"{fallback}_{s}"
    return f"{s}_" if s in RESERVED or keyword.iskeyword(s) else s


def camel(text: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", text) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    return f"M{name}" if name[0].isdigit() else name


def literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        text = repr(v)
        return text if any(c in text for c in ".e") or "inf" in text else f"{text}.0"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "(" + ", ".join(literal(x) for x in v) + ")"
    return str(v)


def stage(lay: Layer, subst: dict | None = None, index: int = -1) -> str:
    """``conv2d(64, 3, stride=2)``; ``relu`` without arguments. Arguments a block turns into
    its parameters are written as those (``subst``)."""
    subst = subst or {}
    if lay.shared:
        return lay.shared
    if lay.shared_ref:
        return f"unembed({lay.shared_ref})"
    if lay.op == "__block__":
        block, args, copies = lay.args
        text = f"{block}({', '.join(literal(a) for a in args)})" if args else block
        return f"{text} * {copies}" if copies > 1 else text
    parts = [subst.get((index, "arg", i), literal(a)) for i, a in enumerate(lay.args)]
    parts += [f"{k}={subst.get((index, 'kw', k), literal(v))}" for k, v in lay.kwargs.items()]
    parts += [f"{k}={text}" for (i, kind, k), text in subst.items()
              if i == index and kind == "kw" and k not in lay.kwargs]
    return f"{lay.op}({', '.join(parts)})" if parts else lay.op


class Region:
    """Writes the statements of one body (a block's or the model's)."""

    def __init__(self, layers: list[Layer], names: dict[str, str], outputs: list[str],
                 subst: dict | None = None, expand=None, source_names: bool = False, optional=None,
                 optional_add=None):
        self.layers, self.names, self.outputs = layers, dict(names), outputs
        self.subst = subst or {}
        self.expand = expand or (lambda lay: [lay])
        self.index = {id(lay): i for i, lay in enumerate(layers)}
        self.producer = {lay.output: lay for lay in layers}
        self.uses: dict[str, int] = {}
        self.last: dict[str, int] = {}
        for i, lay in enumerate(layers):
            for v in lay.inputs:
                self.uses[v] = self.uses.get(v, 0) + 1
                self.last[v] = i
        self.order: list[Layer] = []  # layers as their text appears: the weight order
        self.used_names = set(self.names.values())
        self.source_names = source_names
        self.params: set[str] = set()
        self.force = self._operands_to_name()
        self.skip = None  # the optional shortcut's last layer, and its condition
        if optional:
            ids, cond = optional
            last = next(lay for lay in layers if id(lay) in ids and self.uses.get(lay.output) == 1
                        and not any(id(u) in ids for u in layers if lay.output in u.inputs))
            self.skip = (last, cond)
            self.force.add(last.output)
        self.optional_add = optional_add  # (id of a `+` written `if cond then x + y else y`, cond)
        if optional_add:
            add = next(lay for lay in layers if id(lay) == optional_add[0])
            self.force |= {v for v in add.inputs if v in self.producer}

    def _operands_to_name(self) -> set[str]:
        """Values that read better as statements of their own: a pipeline of 3 or more stages
        that is an operand (``x + y``, ``concat(a, y)``), or what is indexed (``y[:, 0]``)."""
        out = set()
        for lay in self.layers:
            if not (lay.binary or lay.op == "__index__" or len(lay.inputs) > 1):
                continue
            for v in lay.inputs:
                n, u = 0, v
                while u in self.producer and u not in self.names and self.uses.get(u, 0) == 1:
                    p = self.producer[u]
                    if p.binary or len(p.inputs) != 1:
                        n += 1
                        break
                    n += 1
                    u = p.inputs[0]
                if n >= (2 if lay.op == "__index__" else 3):
                    out.add(v)
        return out

    def expr(self, v: str) -> tuple[str, str]:
        """(text, kind): kind is "atom", "pipe" or "binary"."""
        if v in self.names:
            return self.names[v], "atom"
        lay = self.producer[v]
        i = self.index[id(lay)]
        if lay.binary:
            sym = BINARY[lay.op]
            if lay.scalar is not None:
                x = self.atom(self.expr(lay.inputs[0]))
                num = literal(lay.scalar) if lay.scalar >= 0 else f"({literal(lay.scalar)})"
                text = f"{num} {sym} {x}" if lay.scalar_left else f"{x} {sym} {num}"
            else:
                a = self.atom(self.expr(lay.inputs[0]))
                text = f"{a} {sym} {self.atom(self.expr(lay.inputs[1]))}"
                if self.optional_add and id(lay) == self.optional_add[0]:
                    made = next(v for v in lay.inputs if v in self.producer)
                    text = f"if {self.optional_add[1]} then {text} else {self.names[made]}"
            self.order += self.expand(lay)
            return text, "binary"
        if lay.op == "__index__":
            head = self.atom(self.expr(lay.inputs[0]))
            self.order += self.expand(lay)
            return f"{head}[{lay.args[0]}]", "atom"
        if len(lay.inputs) == 1:
            head, _ = self.expr(lay.inputs[0])
            self.order += self.expand(lay)
            return f"{head} -> {stage(lay, self.subst, i)}", "pipe"
        ins = [self.expr(v)[0] for v in lay.inputs]
        self.order += self.expand(lay)
        s = stage(lay, self.subst, i)
        head, _, rest = s.partition("(")
        return f"{head}({', '.join(ins)}{', ' + rest[:-1] if rest else ''})", "atom"

    @staticmethod
    def atom(e: tuple[str, str]) -> str:
        return e[0] if e[1] == "atom" else f"({e[0]})"

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used_names:
            k += 1
            name = f"{base}{k}"
        self.used_names.add(name)
        return name

    def statements(self) -> list[str]:
        lines = []
        for lay in self.layers:  # declarations first: learned tensors, shared layers
            if lay.op == "param":
                name, shape = lay.args
                self.names[lay.output] = lay.written = self.fresh(name)
                self.params.add(lay.output)
                self.order.append(lay)
                lines.append(f"param {self.names[lay.output]}: [{', '.join(map(str, shape))}] = zeros")
            elif lay.shared and lay.shared not in self.used_names:
                self.used_names.add(lay.shared)
                lines.append(f"let {lay.shared} = {lay.op}({', '.join(literal(a) for a in lay.args)})")
        stated = [lay for lay in self.layers if lay.op != "param"
                  and (self.uses.get(lay.output, 0) != 1 or lay.output in self.outputs or lay.output in self.force)]
        for lay in stated:
            text, _ = self.expr(lay.output)
            if lay.output in self.outputs and lay is stated[-1] and len(self.outputs) == 1:
                lines.append(f"return {text}")
                return lines
            if self.skip and lay is self.skip[0]:
                name = self.fresh("skip")
                text = f"if {self.skip[1]} then {self.names[self.layers_input]} else {text}"
            else:
                name = self._target(lay)
            self.names[lay.output] = name
            lines.append(f"{name} = {text}")
        rets = ", ".join(self.names[v] for v in self.outputs)
        lines.append(f"return {rets}")
        return lines

    def _target(self, lay: Layer) -> str:
        """Rebind the name of the value the statement starts from, when nothing reads that
        value later (``x = x + …``); else a fresh name."""
        root = lay
        while root.inputs and root.inputs[0] not in self.names and root.inputs[0] in self.producer:
            root = self.producer[root.inputs[0]]
        first = root.inputs[0] if root.inputs else None
        i = self.index[id(lay)]
        if first in self.names and self.last.get(first, -1) <= i and first not in self.outputs \
                and first not in self.params:
            return self.names[first]
        parts = [q for q in lay.source.split("/") if q]
        if self.source_names and lay.source.startswith("/") and len(parts) >= 2:
            return self.fresh(ident(parts[-2], "y"))
        return self.fresh("y")


def wrap(line: str, indent: str) -> list[str]:
    """Break a long statement before its ``->`` stages."""
    if len(indent) + len(line) <= LINE:
        return [indent + line]
    parts = line.split(" -> ")
    out, cur = [], parts[0]
    for p in parts[1:]:
        if len(indent) + len(cur) + 4 + len(p) > LINE and cur.strip():
            out.append(cur)
            cur = "    -> " + p
        else:
            cur += " -> " + p
    out.append(cur)
    return [indent + out[0]] + [indent + "    " + x.lstrip() if not x.startswith("    ->") else indent + x
                                for x in out[1:]]


def block_text(t: BlockType, rank: int) -> tuple[list[str], list[int]]:
    """The block's declaration, and the order (indices into its template) of its layers'
    text."""
    dims = {4: "[N, C, H, W]", 3: "[N, T, C]", 2: "[N, C]", 3.5: "[N, C, L]"}.get(rank, "")
    x = f"x: {dims}" if t.uses_width and dims else "x"
    params = ", ".join([x] + [f"{p}: {_kind(t.args[0][i])}" for i, p in enumerate(t.params)])
    inst = next(i for i in t.instances if i.slots is None)  # an instance the template is from
    r = Region(t.template, {inst.input: "x"}, [t.template[-1].output], t.subst, optional=t.optional,
               optional_add=t.optional_add)
    r.layers_input = inst.input
    body = r.statements()
    lines = [f"block {t.name}({params}) {{"]
    for s in body:
        lines += wrap(s, "    ")
    lines.append("}")
    pos = {id(lay): i for i, lay in enumerate(t.template)}
    return lines, [pos[id(lay)] for lay in r.order]


def _kind(v) -> str:
    if isinstance(v, float):
        return "float"
    if isinstance(v, tuple):
        return "tuple"  # (not written by the finder today: int pairs are parameters as ints)
    return "int"
