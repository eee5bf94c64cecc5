"""Classes to text, laid out the way ``ruff format`` lays them out (``emit_kit.stmt``)."""

from __future__ import annotations

import numbers

from netc.compiler.ast import size_names

from ..emit_kit import literal, stmt
from . import sizes
from .template import ChildArgs, ClassDef, EpilogueApply, EpilogueInit, Slot


def usable_param(name: str, value, taken: set[str]) -> bool:
    """Whether a model parameter can be a constructor argument: a number or bool (no spec
    string reaches the file) under a name nothing in the file reserves."""
    return (name.isidentifier() and not name.startswith("_") and name not in taken and name != "self"
            and isinstance(value, numbers.Real))


class ClassWriter:
    def __init__(self, em, cls: ClassDef):
        """``em``: the Emitter, whose templates and classes are settled."""
        self.em, self.cls = em, cls
        self.first = cls.instances[0]
        self.t = em.templates[id(self.first)]
        self.params = dict(cls.params)
        self.vec = cls.vectors[id(self.first)]
        self.flags = em.epilogue_flags(self.first)  # per slot: an epilogue (a keyword argument, default None)
        # id(child) -> the first slot of its constructor arguments: they follow the class's
        # own slots, each child's after those of the children before it
        self.offsets: dict[int, int] = {}
        offset = len(self.t.values)
        for c in self.t.children:
            self.offsets.setdefault(id(c), offset)
            offset += len(em.classes[id(c)].args())

    def source(self) -> str:
        names = list(dict.fromkeys(n for _, n in self.cls.params))
        epilogues = {n for i, n in self.cls.params if self.flags[i]}
        signature, guards = [n for n in names if n not in epilogues] + [f"{n}=None" for n in names if n in epilogues], []
        if self.first.kind == "root":
            signature, guards = self.model_signature(names)
        out = [f"class {self.cls.name}(nn.Module):", f'    """{self.cls.doc}"""', ""]
        out += stmt("    ", f"def __init__({', '.join(['self'] + signature)}):")
        out += guards
        out += stmt("        ", "super().__init__()")
        used = self.forward_params()
        derived_names = {n for e in self.cls.derived.values() for n in size_names(e)}
        for name in names + sorted(derived_names - set(names)):
            if name in used:
                out += stmt("        ", f"self.{name} = {name}")
        for line in self.t.init:
            text = self.text(line, forward=False)
            if text:  # (an epilogue no instance has)
                out += stmt("        ", text)
        out.append("")
        out += stmt("    ", f"def forward({', '.join(['self'] + self.t.args)}):")
        for k, (line, comment) in enumerate(self.t.forward):
            out += stmt("        ", self.text(line, forward=True), self.comment(k, comment))
        return "\n".join(out)

    def model_signature(self, names: list[str]) -> tuple[list[str], list[str]]:
        """A model class's parameters with the spec's values as defaults (``classes=1000``), and
        a check for each one that is fixed: another value would need the model elaborated
        again, so the class refuses it. A string or tuple parameter, and one whose name Python
        or the file reserves, is left out."""
        values, free = self.em.signatures.get(self.cls.name, ({}, set()))
        if set(names) - (free & values.keys()):
            raise AssertionError(f"model class {self.cls.name}: arguments {names} are not its parameters")
        usable = [k for k in values if usable_param(k, values[k], self.em.taken)]
        guards = []
        for k in usable:
            if k not in free and values[k] == values[k]:  # (a NaN: no value to compare with)
                why = (f"{self.cls.name}: a `{k}` other than {literal(values[k])} changes more than layer sizes; "
                       f"compile the spec again with -D {k}=...")
                guards += stmt("        ", f"if {k} != {literal(values[k])}:")
                guards += stmt("            ", f"raise ValueError({literal(why)})")
        return [f"{k}={literal(values[k])}" for k in usable], guards

    def forward_params(self) -> set[str]:
        """The arguments the forward reads (stored as ``self.<name>``): directly, or in a size
        derived from them."""
        slots = [p.index for line, _ in self.t.forward for p in line if isinstance(p, Slot)]
        return ({self.params[i] for i in slots if i in self.params}
                | {name for i in slots if i in self.cls.derived for name in size_names(self.cls.derived[i])})

    def comment(self, k: int, comment: str) -> str:
        """Shapes only where every instance of the class has the same ones."""
        others = [self.em.templates[id(s)].forward[k][1] for s in self.cls.instances
                  if id(s) not in self.em.variant_scopes]
        if all(c == comment for c in others):
            return comment
        return comment.split("  ")[-1] if "  " in comment else ""

    def value(self, index: int, forward: bool) -> str:
        if index in self.params:
            return ("self." if forward else "") + self.params[index]
        if index in self.cls.derived:
            return sizes.code(self.cls.derived[index], lambda name: ("self." if forward else "") + name)
        return literal(self.vec[index])

    def text(self, parts: list, forward: bool) -> str:
        out = []
        for p in parts:
            if isinstance(p, Slot):
                out.append(self.value(p.index, forward))
            elif isinstance(p, ChildArgs):
                out.append(self.child_args(p.scope, forward))
            elif isinstance(p, EpilogueInit):
                out.append(self.epilogue_init(p))
            elif isinstance(p, EpilogueApply):
                i = p.slot.index
                out.append(f"self.{p.attr}({p.var})" if i in self.params or self.vec[i] is not None else p.var)
            else:
                out.append(p)
        return "".join(out)

    def epilogue_init(self, p: EpilogueInit) -> str:
        """The module applying an epilogue: the argument's (``nn.Identity()`` where it is None),
        the one every instance has, or none."""
        i = p.slot.index
        if i in self.params:
            name = self.params[i]
            return f"self.{p.attr} = nn.Identity() if {name} is None else {name}"
        return f"self.{p.attr} = {literal(self.vec[i])}" if self.vec[i] is not None else ""

    def child_args(self, child, forward: bool) -> str:
        """A child's constructor arguments: sizes by position, then its epilogues by keyword
        (left out where None)."""
        cc = self.em.classes[id(child)]
        flags = self.em.epilogue_flags(child)
        sizes, keywords = [], []
        for i, (j, name) in zip(self.child_slots(child), cc.args()):
            if not flags[j]:
                sizes.append(self.value(i, forward))
            elif i in self.params or self.vec[i] is not None:
                keywords.append(f"{name}={self.value(i, forward)}")
        return ", ".join(sizes + keywords)

    def child_slots(self, child) -> list[int]:
        if id(child) not in self.offsets:
            raise AssertionError("unknown child")
        start = self.offsets[id(child)]
        return list(range(start, start + len(self.em.classes[id(child)].args())))

