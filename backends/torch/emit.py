"""Graph IR to PyTorch source: one ``nn.Module`` class per model, one per block structure.

Each scope (model, block instance, cell) is first rendered to a *template*: its __init__ and
forward lines, where every size, flag or rate is a numbered slot. Instances of one block
whose templates are equal share a class; a slot whose value differs between them becomes a
constructor argument, named after the block parameter it equals (``out``, ``stride``) where
one does. The same spec always gives byte-identical source.
"""

from __future__ import annotations

import itertools
import re

from netc.compiler import records
from netc.compiler.ast import size_names
from netc.compiler.dims import Expr, FloorDiv, free_symbols, symbols
from netc.compiler.dims import code as dim_code
from netc.compiler.ir import Graph, Node, Ref
from netc.compiler.values import RESERVED
from netc.specs.catalogue import get, has_trait

from ..emit_kit import Names, Raw, file_name, identifier, literal
from . import ops as _ops  # noqa: F401  (fills LOWERINGS)
from .lower import Code, LoweringError, lower
from .ops import IN_PLACE, epilogue_module
from .prelude import PRELUDE, prelude_source
from .scopes import Scope, build_tree, group_members, is_chain, last_uses
from .sizes import evaluate
from .template import ChildArgs, ClassDef, EpilogueApply, EpilogueInit, Slot, Template
from .write import ClassWriter, usable_param

_HOLE = re.compile(r"\{(\w*)\}")


class Emitter:
    """Collects classes for the models of one spec and renders the file."""

    def __init__(self, spec_path: str):
        self.spec = file_name(spec_path)
        self.templates: dict[int, Template] = {}
        self.classes: dict[int, ClassDef] = {}  # id(scope) -> its class
        self.order: list[ClassDef] = []
        self.by_key: dict[tuple, ClassDef] = {}
        # class names: not a keyword, builtin or name the generated code uses (RESERVED), nor a
        # prelude piece
        self.names = Names({"Attention", "Module"} | set(PRELUDE) | RESERVED, sep="", start=2)
        self.taken: set[str] = self.names.taken  # (the same set)
        self.helpers: set[str] = set()
        self.cell_classes: dict[int, str] = {}
        self._consumed: dict[int, set] = {}
        self._raw: dict[int, tuple] = {}  # id(scope) -> raw_vector(scope)
        # model class -> (its parameters and their values, those that are constructor arguments);
        # the others are fixed at their values (emit_torch settles them: params.py)
        self.signatures: dict[str, tuple[dict, set]] = {}
        self.variant = False  # visiting a model elaborated with other parameters (params.py)
        # (block name, result position) that some instance applies an epilogue to (-O2, fused in
        # from the op after it): every instance of that block renders a slot for it (``expect``)
        self.epilogue_results: set[tuple[str, int]] = set()
        self.variant_scopes: set[int] = set()  # the scopes visited so: their shapes are not the spec's

    # -- scopes to templates -----------------------------------------------------------------
    def model(self, graph: Graph, kind: str = "root", variant: bool = False) -> str:
        """The class of a model (visited with ``variant``: the model elaborated with other
        parameters, whose scopes join the classes of the spec's own and only widen their
        arguments)."""
        if variant:
            self.variant = True
            try:
                return self.model(graph, kind)
            finally:
                self.variant = False
        self.expect(graph)
        root = build_tree(graph, graph.name)
        root.kind = kind
        if kind == "root":  # a model's parameters name its class's arguments, as a block's do
            root.env = dict(graph.params)
        self.visit(root)
        return self.classes[id(root)].name

    def expect(self, graph: Graph) -> None:
        """Note the block results that take an epilogue in ``graph`` or its cells: call it for
        every model of the file before visiting any, so that each class sees them all."""
        for b in graph.blocks.values():
            self.epilogue_results |= {(b.label, pos) for pos, _op, _slope in b.epilogue}
        for n in graph.nodes():
            if n.op == "scan":
                self.expect(n.attrs.cell.graph)

    def epilogue_flags(self, scope: Scope) -> list[bool]:
        """Per slot of ``scope`` (its own, then its children's arguments): whether it holds an
        epilogue (an activation module or None) rather than a size."""
        t = self.templates[id(scope)]
        out = [i in t.epilogues for i in range(len(t.values))]
        for child in t.children:
            flags = self.epilogue_flags(child)
            out += [flags[i] for i, _ in self.classes[id(child)].args()]
        return out

    def visit(self, scope: Scope) -> None:
        """Post-order: children get their classes before their parents."""
        for item in scope.items:
            if isinstance(item, Scope) and item.shares is None:  # a shared block's later use has no class
                if item.kind == "group":
                    for m in group_members(item):
                        if isinstance(m, Scope):
                            self.visit(m)
                else:
                    self.visit(item)
        t = ScopeRenderer(self, scope).render()
        self.templates[id(scope)] = t
        self.helpers |= t.helpers
        key = (scope.name, t.key(self.classes))
        # a cell class is built without arguments: one per set of sizes; a model's class is one
        # (the same model elaborated with other parameters joins it: params.py)
        if scope.kind not in ("block", "root"):
            key += (tuple((type(v).__name__, repr(v)) for v in self.raw_vector(scope)),)
        cls = self.by_key.get(key)
        if cls is None:
            cls = ClassDef(self.class_name(scope.name), self.doc(scope))
            self.by_key[key] = cls
            self.order.append(cls)
        cls.instances.append(scope)
        self.classes[id(scope)] = cls
        if self.variant:
            self.variant_scopes.add(id(scope))

    def consumed(self, graph: Graph) -> set[Ref]:
        """The outputs some node or the model reads (unpacked but unused ones get a ``_``)."""
        if id(graph) not in self._consumed:
            refs = {r for n in graph.nodes() for r in n.inputs} | {r for _, r in graph.outputs}
            self._consumed[id(graph)] = refs
        return self._consumed[id(graph)]

    def class_name(self, base: str) -> str:
        if base.startswith("__"):  # a dunder is Python's, and `__x` is mangled in a class body
            stripped = base.strip("_")
            base = stripped if stripped[:1].isalpha() else f"Class_{stripped}"
        return self.names.fresh(base)

    def doc(self, scope: Scope) -> str:
        kind = {"root": "Model", "block": "Block"}.get(scope.kind, "Cell")
        return f"{kind} `{scope.name}` of {self.spec}."

    def cell_class(self, graph: Graph) -> str:
        """The class of a cell's step (a scan's body)."""
        if id(graph) not in self.cell_classes:
            self.cell_classes[id(graph)] = self.model(graph, kind="cell")
        return self.cell_classes[id(graph)]

    # -- classes to source -------------------------------------------------------------------
    def finish(self) -> None:
        """Fix each class's constructor arguments: the slots whose values differ."""
        for cls in self.order:
            for s in cls.instances:
                cls.vectors[id(s)] = self.vector(s)
            vecs = list(cls.vectors.values())
            varying = [i for i in range(len(vecs[0])) if any(v[i] != vecs[0][i] for v in vecs)]
            cls.params, cls.derived = self.param_names(cls, varying)

    def vector(self, scope: Scope) -> list:
        t = self.templates[id(scope)]
        out = list(t.values)
        for child in t.children:
            cc = self.classes[id(child)]
            vec = cc.vectors[id(child)]
            out += [vec[i] for i, _ in cc.args()]
        return out

    def raw_vector(self, scope: Scope) -> tuple:
        """Every slot value of a scope and of its children, before classes are settled
        (kept per scope: its template, and so its vector, is final once it is visited)."""
        if id(scope) not in self._raw:
            t = self.templates[id(scope)]
            self._raw[id(scope)] = tuple(t.values) + tuple(v for c in t.children for v in self.raw_vector(c))
        return self._raw[id(scope)]

    def param_names(self, cls: ClassDef, varying: list[int]) -> tuple[list[tuple[int, str]], dict]:
        """The class's constructor arguments and derived sizes, from the slots whose values
        differ between instances. A slot is named after the block parameter or bound dim it
        equals in every instance: of several, the one its op names in its arguments
        (``conv2d(width, 3)``: width, not heads), else the first. A slot no name fits is
        computed from those arguments as the spec computes it where one of its op's size
        expressions gives its value in every instance (``padding=k // 2``); else it is an
        argument named after what it sizes. Slots named alike share the argument."""
        # not a keyword, builtin, class or nn.Module attribute, nor one of the class's own
        # attributes: a parameter the forward reads is stored as `self.<name>`
        t = self.templates[id(cls.instances[0])]
        own = {m.group(1) for line in t.init if (m := re.match(r"self\.(\w+) = ", str(line[0])))}
        used, chosen, named = self.taken | own, set(), {}
        mentions, exprs = self.slot_facts(cls.instances[0])
        env = cls.instances[0].env
        columns = {i: tuple(cls.vectors[id(s)][i] for s in cls.instances) for i in varying}
        for i in varying:
            cands = [k for k in env if not k.startswith("_") and (k not in used or k in chosen)  # (mangled)
                     and all(s.env.get(k) == v and not isinstance(v, Expr) for s, v in zip(cls.instances, columns[i]))]
            best = [c for c in cands if c in mentions[i]] or cands
            if best:
                named[i] = best[0]
                chosen.add(best[0])
                used.add(best[0])
        derived = {}
        known = set(chosen)
        if cls.instances[0].kind == "root":  # a model's class has all its parameters (settled: params.py)
            known |= {k for k, v in env.items() if usable_param(k, v, self.taken)}
        for i in varying:
            if i not in named:
                derived[i] = next((e for e in exprs[i] if size_names(e) <= known and all(
                    evaluate(e, s.env) == v for s, v in zip(cls.instances, columns[i]))), None)
                if derived[i] is None:
                    del derived[i]
        for i in varying:  # a size no op of its own computes, equal to one that is (linear(4 * d)'s output,
            if i not in named and i not in derived:  # the next layer's in_features): computed the same way
                derived_like = next((derived[j] for j in derived if columns[j] == columns[i]), None)
                if derived_like is not None:
                    derived[i] = derived_like
        labels, by_column, names = self.labels(cls.instances[0]), {}, []
        for i in varying:
            if i in derived:
                continue
            if i not in named:
                if columns[i] not in by_column:
                    by_column[columns[i]] = _ident(labels[i], used)
                    used.add(by_column[columns[i]])
                named[i] = by_column[columns[i]]
            names.append((i, named[i]))
        return names, derived

    def slot_facts(self, scope: Scope) -> tuple[list[frozenset], list[tuple]]:
        """Per slot of ``scope`` (its own, then its children's arguments): the block names its
        op's arguments mention, and the size expressions they are."""
        t = self.templates[id(scope)]
        child = [c.exprs for c in t.children for _ in self.classes[id(c)].args()]  # (Up(ngf * 4))
        return list(t.mentions) + [frozenset()] * len(child), list(t.exprs) + child

    def labels(self, scope: Scope) -> list[str]:
        t = self.templates[id(scope)]
        out = [label for label, _ in t.labels]
        for child in t.children:
            cc = self.classes[id(child)]
            out += [f"{child.local}_{name}" for _, name in cc.args()]
        return out

    def render(self, extra: list[str], command: str | None = None) -> str:
        self.finish()
        body = [ClassWriter(self, cls).source() for cls in self.order] + extra
        pre = prelude_source(self.helpers) if self.helpers else ""
        uses = "\n".join(body + [pre])
        imports = ["import math"] if "math." in uses else []
        imports += ["import torch"] if "torch." in uses else []
        imports += ["import torch.nn.functional as F"] if "F." in uses else []
        imports += ["from torch import nn"]
        command = command or f"netc compile {self.spec} --backend torch"
        head = [f"# Generated by netc from {self.spec}; do not edit ({command}).",
                f'"""PyTorch modules for {self.spec}."""', "", "\n".join(imports)]
        parts = ["\n".join(head)] + ([pre] if pre else []) + body
        return "\n\n\n".join(p.strip("\n") for p in parts) + "\n"


def _ident(label: str, used: set[str]) -> str:
    """A name for ``label`` not in ``used`` (it does not take it), without leading underscores."""
    return Names(used, start=2).fresh(identifier(label).strip("_") or "arg")


class ScopeRenderer:
    """Renders one scope's template: its modules and forward statements."""

    def __init__(self, em: Emitter, scope: Scope):
        self.em, self.s = em, scope
        self.t = Template()
        self.vars: dict[Ref, str] = {}
        self.names = Names({"self", "layer", "torch", "nn", "F", "math"} | set(PRELUDE) | em.taken)
        self.shape_of: dict[str, str] = {}  # symbol -> code
        self.atom_of: dict[FloorDiv, str] = {}  # floor division (an input's size H // 8) -> code
        self.built: set[str] = set()  # the layers whose module this scope has built
        self.holder: dict[str, Ref] = {}  # variable -> the value it holds now
        self.last: dict[Ref, int] = {}  # value -> the last item that reads it
        self.pos = 0  # the item being rendered
        self.epilogue_of: dict[str, int] = {}  # node id -> the result position whose epilogue it leaves out
        self.applies: dict[Ref, EpilogueApply] = {}  # result -> its epilogue, where it has a slot

    def render(self) -> Template:
        self.last = last_uses(self.s)
        for pname, ref in self.s.inputs:
            name = self.fresh(pname)
            self.vars[ref] = name
            self.holder[name] = ref
            self.t.args.append(name)
            for i, d in enumerate(self.s.graph.type_of(ref).shape):
                if isinstance(d, Expr) and len(symbols(d)) == 1 and str(d) in symbols(d):
                    self.shape_of.setdefault(str(d), f"{name}.shape[{i}]")
                elif isinstance(d, Expr) and len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1 \
                        and isinstance(d.terms[0][0][0], FloorDiv):  # a block input of size H // 8
                    self.atom_of.setdefault(d.terms[0][0][0], f"{name}.shape[{i}]")
        self.find_epilogues()
        for pos, item in enumerate(self.s.items):
            self.pos = pos
            if isinstance(item, Node):
                self.node(item)
            elif item.kind == "group":
                self.group(item)
            else:
                self.child(item)
        line: list = ["return "]
        for k, r in enumerate(self.s.outputs):
            line += ([", "] if k else []) + [self.applies.get(r) or self.ref(r)]
        self.t.forward.append((line, ""))
        return self.t

    # -- epilogues: an activation fused into a result from the op after the block ------------
    def find_epilogues(self) -> None:
        """The results of a block that some instance of it applies an epilogue to, computed
        by a node of the block's own: that node is written without it, and the result gets it
        from the class's constructor argument (``activation``), so that the instances with
        one and those without share the class."""
        if self.s.kind != "block":
            return
        own = {item.id for item in self.s.items if isinstance(item, Node)}
        for pos, (src, port) in enumerate(self.s.outputs):
            if (self.s.name, pos) in self.em.epilogue_results and src in own and port == 0 \
                    and self.s.outputs.count((src, port)) == 1:
                self.epilogue_of[src] = pos

    def without_epilogue(self, n: Node) -> Node:
        """Node ``n`` as the block computes it, less the activation its instance applies last
        (when it has one): a layer without ``activation``, a fused chain without its last step
        (a chain left with one step: that op itself, as the other instances have it)."""
        mine = [e for e in self.s.epilogue if e[0] == self.epilogue_of[n.id]]
        if not mine:
            return n
        if n.op != "fused_elementwise":
            default = type(n.attrs).model_fields["activation_slope"].default
            return records.replace(n, attrs=n.attrs.model_copy(update={"activation": None,
                                                                        "activation_slope": default}))
        steps = n.attrs.steps[:-1]
        if len(steps) > 1:
            return records.replace(n, attrs=n.attrs.model_copy(update={"steps": steps}))
        op, arg = steps[0]  # a unary op (leaky_relu's slope), or a binary one on a tensor (x1)
        fields = get(op).Attrs.model_fields
        attrs = get(op).Attrs(**({next(iter(fields)): arg} if isinstance(arg, float) else {}))
        return records.replace(n, op=op, attrs=attrs)

    def epilogue(self, n: Node) -> None:
        """The slot of the epilogue of the result ``n`` gives: its module (None: this instance
        has none), stored in ``__init__`` and applied at the return."""
        pos = self.epilogue_of[n.id]
        mine = [e for e in self.s.epilogue if e[0] == pos]
        bare = self.without_epilogue(n)
        inplace = has_trait(bare.op, "fresh_output") and getattr(bare.attrs, "activation", None) is None
        value = Raw(epilogue_module(mine[0][1], mine[0][2], inplace)) if mine else None
        taken = {self.s.rel(it.layer or it.id) if isinstance(it, Node) else it.local for it in self.s.items}
        attr = _ident("activation" if pos == 0 else f"activation_{pos}", taken)
        slot = self.slot(attr, value)
        self.t.epilogues.add(slot.index)
        self.t.init.append([EpilogueInit(slot, attr)])
        self.applies[(n.id, 0)] = EpilogueApply(slot, attr, self.vars[(n.id, 0)])

    # -- helpers ---------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        return self.names.fresh(base)

    def named(self, hint: str) -> str | None:
        """The variable the spec's name ``hint`` can take: the name itself when free, or when
        the value it holds is read by no later statement (``c = f * c + i * g``); else None
        (the caller takes a fresh one). A name input shapes are read from is never rebound."""
        return self.names.take(hint, lambda name: self.last.get(self.holder.get(name), -1) <= self.pos
                               and name in self.holder
                               and not any(code.startswith(name + ".") for code in self.shape_of.values()))

    def ref(self, r: Ref) -> str:
        n = self.s.graph.producer(r)
        if n.op == "constant":
            return literal(n.attrs.value)
        return self.vars[r]

    def slot(self, label: str, value, n: Node | None = None) -> Slot | str:
        """A hole for a size of the template; a symbolic size is code over the scope's input
        shapes, written into the forward as it is: it can be no constructor argument (the
        shapes exist only there), so instances whose code differs get classes of their own."""
        reshape = n is not None and n.op == "reshape"
        if isinstance(value, Expr):
            return self.dim_code(value, reshape)
        if isinstance(value, tuple) and any(isinstance(v, Expr) for v in value):
            return literal(tuple(Raw(self.dim_code(v, reshape)) if isinstance(v, Expr) else v for v in value))
        self.t.values.append(value)
        self.t.labels.append((label, value))
        self.t.mentions.append(n.mentions if n else frozenset())
        self.t.exprs.append(n.exprs if n else ())
        return Slot(len(self.t.values) - 1)

    def dim_code(self, d: Expr, may_infer: bool = False) -> str:
        """A size as code over the input shapes (``2 * x.shape[1]``, ``skip.shape[3] - x.shape[3]``),
        or, where ``may_infer`` (reshape infers one size), -1 where a symbol is no input's size."""
        if free_symbols(d, self.atom_of) - self.shape_of.keys():
            if may_infer:
                return "-1"
            raise LoweringError(f"the torch backend cannot compute the size {d} in block `{self.s.name}` from the "
                                f"sizes of its inputs; pass a tensor of that size into the block")
        return dim_code(d, self.shape_of.__getitem__, self.atom_of, mul=" * ")  # as ruff formats it

    def fill(self, code: Code, holes: dict, n: Node | None = None) -> list:
        """The parts of ``code`` with its holes filled; sizes become slots (of node ``n``)."""
        parts, k = [], 0
        pos = 0
        values = list(code.values)
        for m in _HOLE.finditer(code.template):
            parts.append(code.template[pos:m.start()])
            name = m.group(1)
            if name:
                parts.append(holes[name])
            else:
                label, value = values[k]
                k += 1
                parts.append(self.slot(label, value, n))
            pos = m.end()
        parts.append(code.template[pos:])
        return [p for p in parts if p != ""]

    def comment(self, n: Node) -> str:
        shape = ", ".join(t.shape_str() for t in n.types)
        return f"{shape}  {self.where(n.span)}".strip()

    def where(self, span) -> str:
        """``file.net:line`` of a span: the file it is in (a block may come from an import)."""
        if not span:
            return ""
        return f"{file_name(span.path) if span.source else self.em.spec}:{span.line}"

    # -- items -----------------------------------------------------------------------------
    def lowered(self, n: Node):
        xs = [self.s.graph.type_of(r) for r in n.inputs]
        low = lower(n, xs)
        if n.op in IN_PLACE and self.overwritable(n.inputs[0]):
            low = records.replace(low, expr=Code(IN_PLACE[n.op]))
        self.t.helpers |= set(low.helpers)
        return low

    def overwritable(self, r: Ref) -> bool:
        """Whether the one node reading ``r`` may write over it: ``r`` is the fresh output of
        an op whose gradient does not read it (fresh_output, without a fused activation), nothing
        else reads it, and it is not a result of the model."""
        g = self.s.graph
        p = g.producer(r)
        return (has_trait(p.op, "fresh_output") and getattr(p.attrs, "activation", None) is None
                and len(p.types) == 1 and len(g.g.out_edges(p.id)) == 1 and all(ref != r for _, ref in g.outputs))

    def holes(self, n: Node, module_attr: str, inputs: bool = True) -> dict:
        """The named holes of a node's code; ``inputs=False`` for its module's constructor,
        which reads no tensor (and may be written before the inputs exist: nn.Sequential)."""
        holes = {f"x{i}": self.ref(r) for i, r in enumerate(n.inputs)} if inputs else {}
        holes["m"] = f"self.{module_attr}"
        if n.op == "scan":
            holes["cell"] = self.em.cell_class(n.attrs.cell.graph)
        if n.op == "unembed":
            holes["layer"] = f"self.{self.s.rel(n.attrs.layer.scope)}"
        return holes

    def node(self, n: Node, attr: str | None = None, bare: bool = False) -> None:
        if n.op == "constant":  # its readers write the literal (``ref``); no local to leave unused
            return
        if n.id in self.epilogue_of and not bare:
            self.node(self.without_epilogue(n), attr, bare=True)
            self.epilogue(n)
            return
        owner = n.layer or n.id
        attr = attr or self.s.rel(owner)
        low = self.lowered(n)
        holes = self.holes(n, attr)
        if low.module is not None and attr not in self.built:  # a shared layer: its first use builds it
            self.built.add(attr)
            self.t.init.append([f"self.{attr} = "] + self.fill(low.module, holes, n))
            self.start_weights(n, f"self.{attr}")
        targets = self.targets(n, low.unpack)
        self.t.forward.append(([f"{targets} = "] + self.fill(low.expr, holes, n), self.comment(n)))

    def start_weights(self, n: Node, module: str) -> None:
        """One ``nn.init`` call per weight the spec says how to start (``weight_init=``,
        ``defaults``), right after the module is built: ``nn.init.normal_(self.fc.weight, std=0.02)``."""
        for pname, init in n.inits:
            self.t.init.append([init.torch(f"{module}.{pname}")])

    def targets(self, n: Node, unpack: str | None) -> str:
        base = self.s.rel(n.id).replace(".", "_")
        names = []
        for i in range(len(n.types)):
            suffix = get(n.op).output_suffix(i, len(n.types))
            unused = len(n.types) > 1 and (n.id, i) not in self.em.consumed(self.s.graph)
            hint = n.name_of(i)
            names.append((hint and not unused and self.named(hint)) or
                         self.fresh(("_" if unused else "") + (hint or base + suffix)))
            self.vars[(n.id, i)] = names[-1]
            self.holder[names[-1]] = (n.id, i)
        if unpack:
            return unpack.format(*names)
        return ", ".join(names)

    def child(self, c: Scope) -> None:
        if c.shares is not None:  # a block bound with `let`, applied again: its first instance's module
            self.call(c, f"self.{self.s.rel(c.shares)}", c.local)
            return
        cls = self.em.classes[id(c)]
        self.t.children.append(c)
        self.t.init.append([f"self.{c.local} = {cls.name}(", ChildArgs(c), ")"])
        self.call(c, f"self.{c.local}", c.local)

    def call(self, c: Scope, fn: str, base: str) -> None:
        args = ", ".join(self.ref(r) for _, r in c.inputs)
        names = [self.fresh(base if len(c.outputs) == 1 else f"{base}_{i}") for i in range(len(c.outputs))]
        for r, name in zip(c.outputs, names):
            self.vars[r] = name
        shapes = ", ".join(self.s.graph.type_of(r).shape_str() for r in c.outputs)
        comment = f"{shapes}  {self.where(c.span)}".strip()
        self.t.forward.append(([f"{', '.join(names)} = {fn}({args})"], comment))

    def group(self, g: Scope) -> None:
        members = group_members(g)
        if isinstance(members[0], Node):
            self.op_group(g, members)
        else:
            self.block_group(g, members)

    def op_group(self, g: Scope, members: list[Node]) -> None:
        lows = [self.lowered(n) for n in members]
        if any(n.layer and n.layer != n.id for n in members):  # `l * 3` of a `let` layer: one module, called n times
            for n in members:
                self.node(n)
            return
        if lows[0].module is None or not is_chain(members, self.s.graph):
            for n in members:
                self.node(n, attr=self.s.rel(n.id).replace(".", "_"))
            return
        # nn.Sequential only calls its modules: where an expression wraps one (a fused
        # activation, torch.relu(self.linear(x))), an nn.ModuleList with the same weight names
        # (linear.0.weight), each copy called in its own statement
        plain = all(low.expr.template == "{m}({x0})" for low in lows)
        line = [f"self.{g.local} = nn.{'Sequential(' if plain else 'ModuleList(['}"]
        for i, (n, low) in enumerate(zip(members, lows)):
            line += ([", "] if i else []) + self.fill(low.module, self.holes(n, g.local, inputs=False), n)
        self.t.init.append(line + [")" if plain else "])"])
        for i, n in enumerate(members):
            self.start_weights(n, f"self.{g.local}[{i}]")
        if not plain:
            for i, (n, low) in enumerate(zip(members, lows)):
                holes = self.holes(n, f"{g.local}[{i}]")
                self.t.forward.append(([f"{self.targets(n, low.unpack)} = "] + self.fill(low.expr, holes, n),
                                       self.comment(n)))
            return
        out = self.fresh(g.local)
        self.t.forward.append(([f"{out} = self.{g.local}({self.ref(members[0].inputs[0])})"],
                               self.comment(members[-1])))
        self.vars[(members[-1].id, 0)] = out

    def block_group(self, g: Scope, members: list[Scope]) -> None:
        """``Block(...) * n``: a Sequential when each copy feeds the next, else a ModuleList
        looped over when the copies share their other inputs, else called one by one."""
        chain = is_chain(members, self.s.graph)
        loop = not chain and self.loopable(members)
        same = self.identical(members)
        kind = "Sequential" if chain else "ModuleList"
        if same:
            m = members[0]
            self.t.children.append(m)
            count = self.slot(f"{g.local}_count", len(members))  # (an argument where instances differ)
            ctor = [f"{self.em.classes[id(m)].name}(", ChildArgs(m), ") for _ in range(", count, ")"]
            line = [f"self.{g.local} = nn.{kind}({'*' if chain else ''}["] + ctor + ["])"]
        else:
            line = [f"self.{g.local} = nn.{kind}({'' if chain else '['}"]
            for i, m in enumerate(members):
                self.t.children.append(m)
                line += ([", "] if i else []) + [f"{self.em.classes[id(m)].name}(", ChildArgs(m), ")"]
            line.append(")" if chain else "])")
        self.t.init.append(line)
        first, last = members[0], members[-1]
        if chain:
            stand_in = Scope(g.graph, g.path, "group", g.name, inputs=first.inputs, outputs=last.outputs,
                             span=first.span)
            self.call(stand_in, f"self.{g.local}", g.local)
        elif loop:
            var = self.fresh(g.local)
            others = ", ".join(self.ref(r) for _, r in first.inputs[1:])
            shape = self.s.graph.type_of(last.outputs[0]).shape_str()
            comment = f"{shape}  {self.where(first.span)}".strip()
            self.t.forward.append(([f"{var} = {self.ref(first.inputs[0][1])}"], ""))
            self.t.forward.append(([f"for layer in self.{g.local}:"], ""))
            self.t.forward.append(([f"    {var} = layer({var}, {others})"], comment))
            self.vars[last.outputs[0]] = var
        else:
            for i, m in enumerate(members):
                self.call(m, f"self.{g.local}[{i}]", f"{g.local}_{i}")

    def identical(self, members: list[Scope]) -> bool:
        """All copies are of one class, built with the same arguments."""
        classes = {self.em.classes[id(m)].name for m in members}
        return len(classes) == 1 and len({self.em.raw_vector(m) for m in members}) == 1

    def loopable(self, members: list[Scope]) -> bool:
        """Each copy takes the previous copy's output first and the same other inputs."""
        if any(len(m.outputs) != 1 or not m.inputs for m in members):
            return False
        rest = [tuple(r for _, r in m.inputs[1:]) for m in members]
        chained = all(m.inputs[0][1] == p.outputs[0] for p, m in itertools.pairwise(members))
        return chained and len(set(rest)) == 1 and self.identical(members)
