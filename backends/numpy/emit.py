"""Graph IR to a standalone NumPy reference program (imports only numpy and math).

The program holds the sources of the kernels the model uses (copied from ``kernels/``),
``load_weights(path)``, one function per scan cell and ``forward(weights, <inputs>)``: one
statement per node, the output shapes and the ``.net`` line in a trailing comment::

    conv2d_ = conv2d(image, weights["conv2d.weight"], weights["conv2d.bias"], padding=1)  # [N, 32, 28, 28]  lenet.net:5

How a node calls its kernel follows from the kernel's signature (see ``kernels/__init__``):
tensor inputs first, then weights by name, then attributes by name as keywords (left out
when equal to the kernel's default). Symbolic sizes are read from the input shapes at run
time, so any batch size works. The same spec always gives byte-identical source.
"""

from __future__ import annotations

import functools
import inspect
import re

from netc.compiler.dims import Expr, symbols
from netc.compiler.dims import code as dim_code
from netc.compiler.ir import Graph, Node, Ref, weight_key
from netc.compiler.limits import gc_paused
from netc.specs.catalogue import Op, all_ops, get, has_trait

from ..emit_kit import Names, file_name, literal, stmt, tuple_code
from .kernels import FUSED_ACTIVATIONS, FUSED_STEPS, KERNELS, ORDER, closure, source

COMMENT_WIDTH = 110  # a statement with its trailing comment (the code itself: 88, as ruff formats it)
RESERVED = {"np", "math", "weights", "prefix", "load_weights"}  # besides Python's keywords and builtins

LOAD_WEIGHTS = '''\
def load_weights(path):
    """The weights of an .npz written by netc: a dict of name -> array."""
    with np.load(path) as f:
        return {name: f[name] for name in f.files}
'''


_signature = functools.cache(inspect.signature)  # a kernel's, read once per kernel, not once per node


class EmitError(ValueError):
    """A graph the NumPy emitter cannot write (a size it cannot compute at run time)."""


@gc_paused
def numpy_source(compiled, name: str | None = None) -> str:
    """The standalone NumPy program of one model, or of a pair (both models' forwards).

    ``compiled`` is a :class:`netc.compiler.pipeline.Compiled`; ``name`` defaults to the
    first model. A model's program has ``forward(weights, *inputs)``; a pair's has
    ``forward_<Model>`` for each model, and ``forward``, the first model's.
    """
    name = name or next(iter(compiled.graphs))
    if name in compiled.pairs:
        models = list(dict.fromkeys(m for _, m in compiled.pairs[name].roles))
    elif name in compiled.graphs:
        models = [name]
    else:
        raise KeyError(f"no model or pair named {name!r}")
    w = ProgramWriter(compiled.path, [compiled.graphs[m] for m in models])
    w.command = f"netc compile {w.spec} {compiled.command_args('numpy', [name])}"
    if len(models) == 1 and name not in compiled.pairs:
        w.function(compiled.graphs[name], "forward")
    else:
        for m in models:
            w.function(compiled.graphs[m], f"forward_{m}")
        w.alias("forward", f"forward_{models[0]}", models[0])
    return w.render(name, pair=name in compiled.pairs)


def _cells(graph: Graph) -> list[Graph]:
    """The cell graphs that scan nodes of ``graph`` run, nested ones first, each once."""
    out: list[Graph] = []
    for n in graph.nodes():
        if n.op == "scan":
            cg = n.attrs.cell.graph
            for c in _cells(cg) + [cg]:
                if all(c is not o for o in out):
                    out.append(c)
    return out


class ProgramWriter:
    """Collects the functions of one program and renders the file."""

    def __init__(self, spec_path: str, graphs: list[Graph]):
        self.spec = file_name(spec_path)
        self.command = f"netc compile {self.spec} --backend numpy"  # how the file is made (the header)
        self.ops: set[str] = set()
        self.cells: dict[int, str] = {}  # id(cell graph) -> its function's name
        self.names = Names(RESERVED | set(ORDER) | {"forward"} | {f"forward_{g.name}" for g in graphs}, start=2)
        self.functions: list[str] = []
        self.inputs: dict[str, list[str]] = {}  # model -> its forward's input parameters
        cells = {id(c): c for g in graphs for c in _cells(g)}
        for key, c in cells.items():  # every name first: a cell's function may call another's
            self.cells[key] = self.names.fresh(f"cell_{c.name}")
        for key, c in cells.items():
            self.function(c, self.cells[key], cell=True)

    def function(self, graph: Graph, name: str, cell: bool = False) -> None:
        self.functions.append(FunctionWriter(self, graph, name, cell).source())

    def alias(self, name: str, target: str, model: str) -> None:
        args = ", ".join(["weights"] + self.inputs[model])
        self.functions.append(f'def {name}({args}):\n    """The first model of the pair, `{model}`."""\n'
                              f"    return {target}({args})\n")

    def render(self, name: str, pair: bool) -> str:
        kernels = [source(f) for f in closure([KERNELS[op] for op in sorted(self.ops)])]
        parts = [s.rstrip("\n") for s in kernels + [LOAD_WEIGHTS] + self.functions]
        imports = (["import math", ""] if any(re.search(r"\bmath\.", p) for p in parts) else [])
        usage = "forward_<Model>(weights, ...)" if pair else "forward(weights, ...)"
        kind = "pair" if pair else "model"
        head = [f"# Generated by netc from {self.spec}; do not edit ({self.command}).",
                f'"""NumPy reference program for the {kind} `{name}` of {self.spec} (eval-mode semantics).',
                "",
                f"    weights = load_weights(path)  # an .npz of name -> array; then {usage}",
                '"""',
                "",
                *imports,
                "import numpy as np"]
        return "\n\n\n".join(["\n".join(head)] + parts) + "\n"


class FunctionWriter:
    """One function: a model's ``forward`` or a cell's step."""

    def __init__(self, prog: ProgramWriter, graph: Graph, name: str, cell: bool):
        self.prog, self.g, self.name, self.cell = prog, graph, name, cell
        # a clash gets a trailing underscore first (``relu_``), then a number (``relu_2``)
        self.names = Names(prog.names.taken, start=2, trailing=True)
        self.vars: dict[Ref, str] = {}
        self.sym_var: dict[str, str] = {}  # symbol -> local variable
        self.sym_src: dict[str, str] = {}  # symbol -> where its value comes from
        self.sym_used: set[str] = set()
        self.consumed = {r for n in graph.nodes() for r in n.inputs} | {r for _, r in graph.outputs}
        self.holder: dict[str, Ref] = {}  # variable -> the value it holds now
        self.last: dict[Ref, int] = {}  # value -> index of the last statement reading it
        self.pos = 0  # the statement being written

    def fresh(self, base: str) -> str:
        return self.names.fresh(base)

    def named(self, hint: str) -> str | None:
        """The variable the spec's name ``hint`` can take: the name itself when free, or when
        the value it holds is read by no later statement (``c = f * c + i * g``); else None."""
        return self.names.take(hint, lambda name: name in self.holder and self.last.get(self.holder[name], -1) <= self.pos)

    def source(self) -> str:
        params = []
        for n in self.g.input_nodes():
            var = self.fresh(n.id)
            self.vars[(n.id, 0)] = var
            self.holder[var] = (n.id, 0)
            params.append(var)
            for i, d in enumerate(n.type.shape):
                if isinstance(d, Expr) and str(d) in symbols(d) and str(d) not in self.sym_src:
                    self.sym_src[str(d)] = f"{var}.shape[{i}]"
                    self.sym_var[str(d)] = self.fresh(str(d))
        if not self.cell:
            self.prog.inputs[self.g.name] = params
        body: list[str] = []
        nodes = [n for n in self.g.nodes() if n.op not in ("input", "constant")]
        last = self.last = {r: i for i, n in enumerate(nodes) for r in n.inputs}  # the last reader of each value
        results = {r for _, r in self.g.outputs}
        for r in results:
            last[r] = len(nodes)
        for i, n in enumerate(nodes):
            self.pos = i
            body += self.statement(n)
            # free each array at its last use, as torch frees a tensor: a forward pass then
            # holds only the arrays still to be read, not every intermediate until it returns
            dead = [r for r in n.inputs if last.get(r) == i and r not in results
                    and self.g.producer(r).op != "input"]
            dead += [(n.id, k) for k in range(len(n.types)) if (n.id, k) not in self.consumed]
            # (constants have no variable; a name the statement took over holds its new value)
            names = list(dict.fromkeys(self.vars[r] for r in dead if r in self.vars and self.holder[self.vars[r]] == r))
            if names:
                body.append(f"    del {', '.join(names)}")
        outs = [self.ref(r) for _, r in self.g.outputs]
        body.append(f"    return {', '.join(outs)}")
        binds = [f"    {self.sym_var[s]} = {self.sym_src[s]}" for s in sorted(self.sym_used)]
        args = ["weights"] + (["prefix"] if self.cell else []) + params
        lines = [f"def {self.name}({', '.join(args)}):", f'    """{self.doc()}"""'] + binds + body
        return "\n".join(lines) + "\n"

    def doc(self) -> str:
        ins = ", ".join(f"{self.vars[(n.id, 0)]} {n.type}" for n in self.g.input_nodes())
        outs = ", ".join(str(t) for t in self.g.output_types())
        outs = f"({outs})" if len(self.g.outputs) > 1 else outs
        if self.cell:
            return f"One step of the cell `{self.g.name}`: {ins} -> {outs}; weights under `prefix`."
        return f"The model `{self.g.name}`: {ins} -> {outs}."

    # -- values ------------------------------------------------------------------------------
    def ref(self, r: Ref) -> str:
        n = self.g.producer(r)
        if n.op == "constant":
            return literal({"float": float, "int": int, "bool": bool}[n.attrs.dtype](n.attrs.value))
        return self.vars[r]

    def dim(self, d) -> str:
        """A size as code: an int, or an expression over symbols read from the input shapes."""
        if not isinstance(d, Expr):
            return str(d)
        if symbols(d) - self.sym_src.keys():
            raise EmitError(f"`{self.g.name}`: the size {d} cannot be computed from the input shapes")
        self.sym_used |= symbols(d)
        return dim_code(d, self.sym_var.__getitem__)

    def value(self, v) -> str:
        if isinstance(v, Expr):
            return self.dim(v)
        if isinstance(v, tuple):
            return tuple_code([self.value(x) for x in v])
        return literal(v)

    def shape_value(self, shape: tuple) -> str:
        """reshape's sizes; the one size that no input shape gives becomes -1 (NumPy infers it)."""
        unknown = [d for d in shape if isinstance(d, Expr) and symbols(d) - self.sym_src.keys()]
        if len(unknown) == 1 and -1 not in shape:
            return tuple_code(["-1" if d is unknown[0] else self.value(d) for d in shape])
        return self.value(shape)

    def weight(self, owner: str, name: str) -> str:
        key = literal(weight_key(owner, name))
        return f"weights[prefix + {key}]" if self.cell else f"weights[{key}]"

    def prefix(self, owner: str) -> str:
        key = literal(f"{owner}.")
        return f"prefix + {key}" if self.cell else key

    # -- statements ----------------------------------------------------------------------------
    def statement(self, n: Node) -> list[str]:
        fn = self.kernel(n, n.op, f"node `{n.id}`")
        args = self.arguments(n, fn)
        targets = self.targets(n)
        code = f"{targets} = {fn.__name__}({', '.join(args)})"
        where = f"{file_name(n.span.path)}:{n.span.line}" if n.span and n.span.path else ""
        comment = f"{', '.join(t.shape_str() for t in n.types)}  {where}".strip()
        return stmt("    ", code, comment, COMMENT_WIDTH)

    def kernel(self, n: Node, op: str, what: str):
        """The kernel of ``op``, which ``what`` (of node ``n``) needs; the program gets its source."""
        if op not in KERNELS:
            raise EmitError(f"`{self.g.name}`: the NumPy backend cannot run {what}: the op `{op}` has no kernel "
                            f"(add one with @kernel({op!r}) in backends/numpy/kernels/)")
        self.prog.ops.add(op)
        return KERNELS[op]

    def targets(self, n: Node) -> str:
        base = n.id
        names = []
        for i in range(len(n.types)):
            suffix = get(n.op).output_suffix(i, len(n.types))
            unused = len(n.types) > 1 and (n.id, i) not in self.consumed
            hint = n.name_of(i)
            names.append((hint and not unused and self.named(hint)) or
                         self.fresh(("_" if unused else "") + (hint or base + suffix)))
            self.vars[(n.id, i)] = names[-1]
            self.holder[names[-1]] = (n.id, i)
        op = all_ops()[n.op]
        if len(names) == 1 and op.pack.__func__ is not Op.pack.__func__:
            return f"({names[0]},)"  # a kernel that returns a tuple of one
        return ", ".join(names)

    def arguments(self, n: Node, fn) -> list[str]:
        """The call's arguments, from the kernel's signature (see kernels/__init__): tensors
        and weights by position, attributes by keyword; once one is left out (an optional
        tensor not given, an attribute at its default), the rest go by keyword too."""
        tensors = [self.ref(r) for r in n.inputs]
        out, keywords = [], False
        for p in _signature(fn).parameters.values():
            if p.kind is p.VAR_POSITIONAL:
                out, tensors = out + tensors, []
                continue
            code, is_attr = self.argument(n, p, tensors)
            if code is None:
                keywords = True
            elif is_attr or keywords or p.kind is p.KEYWORD_ONLY:
                keywords = True
                out.append(f"{p.name}={code}")
            else:
                out.append(code)
        if tensors:
            raise EmitError(f"the kernel {fn.__name__} takes fewer tensors than node `{n.id}` gives")
        return out

    def argument(self, n: Node, p: inspect.Parameter, tensors: list[str]) -> tuple[str | None, bool]:
        """The code for one kernel parameter (None: leave it out) and whether it is an attribute."""
        owner, params, op = n.layer or n.id, n.params, n.op
        if n.op == "unembed":  # the tied layer's weights
            owner, params, op = n.attrs.layer.scope, n.attrs.layer.params, n.attrs.layer.op
        # a parameter named like a weight the op may have (the catalogue's name with "." as "_")
        name = next((w for w in get(op).param_names if w.replace(".", "_") == p.name), None)
        if name is not None:
            return (self.weight(owner, name) if name in params else "None"), False
        if p.name == "own_weight":  # the node's one weight, named by the node (a param)
            return self.weight(owner, ""), False
        if p.name == "weights":
            return "weights", False
        if p.name == "prefix":
            return self.prefix(owner), False
        if n.op == "scan" and p.name == "cell":
            return self.prog.cells[id(n.attrs.cell.graph)], False
        attrs = dict(n.attrs) if n.attrs is not None else {}
        if n.op == "scan":
            attrs["states"], attrs["init"] = n.attrs.cell.states, n.attrs.cell.init
        if p.name in attrs:
            v = attrs[p.name]
            if p.default is not p.empty and type(v) is type(p.default) and v == p.default:
                return None, True
            if n.op == "fused_elementwise" and p.name == "steps":
                return tuple_code([tuple_code([self.step_op(n, s), self.value(a)]) for s, a in v]), True
            if p.name == "activation" and has_trait(n.op, "layer") and v not in FUSED_ACTIVATIONS:
                return self.fused_activation(n, v), True
            return (self.shape_value(v) if n.op == "reshape" else self.value(v)), True
        return (tensors.pop(0) if tensors else None), False

    def step_op(self, n: Node, op: str) -> str:
        """A fused step's op as code: its name where the kernel has a formula for it, else the
        op's own kernel (a function of the program)."""
        if op in FUSED_STEPS:
            return literal(op)
        return self.kernel(n, op, f"the step `{op}` of fused_elementwise `{n.id}`").__name__

    def fused_activation(self, n: Node, act: str) -> str:
        """A layer's fused activation that ``_activate`` has no formula for: its own kernel."""
        what = f"the activation `{act}` fused into {n.op} `{n.id}`"
        if get(act).Attrs.model_fields:
            raise EmitError(f"`{self.g.name}`: the NumPy backend cannot run {what}: _activate has no "
                            f"formula for it (add `{act}` to FUSED_ACTIVATIONS and _activate)")
        return self.kernel(n, act, what).__name__

