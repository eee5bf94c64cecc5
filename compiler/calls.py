"""Applying things: built-in ops, blocks (inlined in their own scope), shared layers,
repetition (``Block(args) * n``) and ``scan`` over user-written cells."""

from __future__ import annotations

import types
import typing

from netc.specs import catalogue
from netc.specs.init import INITIALISERS, LAYER_ARGS
from pydantic_core import ValidationError

from . import ast, records
from .dims import DimError, Expr, is_dim
from .ir import BlockInstance, Graph, Node
from .limits import MAX_BLOCK_DEPTH as MAX_DEPTH
from .limits import MAX_INT, MAX_NODES, MAX_OUTPUTS, MAX_RANK, MAX_REPEAT
from .shapes import infer_op, match
from .source import Span
from .types import ShapeError, TensorType
from .values import POISON, DeclRef, Frame, Layer, Tensor, has_poison, kind_of, snake


class Calls:
    """Mixin of the Elaborator: everything that turns a call into nodes."""

    def eval_args(self, args: tuple[ast.Arg, ...], frame: Frame):
        pos, kw = [], {}
        for a in args:
            v = self.init_value(a.value, frame, f"`{a.name}`") if a.name in LAYER_ARGS else self.ev(a.value, frame)
            if a.name is None:
                if kw:
                    self.error("positional argument after a keyword argument", a.span, frame)
                    return POISON, {}
                pos.append((v, a.span))
            elif a.name in kw:
                self.error(f"argument `{a.name}` is given twice", a.span, frame)
                return POISON, {}
            else:
                kw[a.name] = (v, a.span)
        if has_poison(tuple(v for v, _ in pos)) or has_poison(tuple(v for v, _ in kw.values())):
            return POISON, {}
        return pos, kw

    def call(self, func: str, args, span: Span, frame: Frame, piped=None, repeat=None):
        if piped is POISON:
            return POISON
        pos, kw = self.eval_args(args, frame)
        if pos is POISON:
            return POISON
        n = 1
        if repeat is not None:
            n = self.ev(repeat, frame)
            if n is POISON:
                return POISON
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_REPEAT:
                got = kind_of(n) + (f" {n}" if isinstance(n, float) else "")
                return self.error(f"a repetition count must be an int from 1 to {MAX_REPEAT}; got "
                                  f"{n if isinstance(n, int) and not isinstance(n, bool) else got}",
                                  repeat.span, frame)
        frame.arguments = tuple(a.value for a in args)
        try:
            return self.apply_n(func, n, repeat, piped, pos, kw, span, frame)
        finally:
            frame.arguments = ()

    def apply_n(self, func: str, n: int, repeat, piped, pos, kw, span: Span, frame: Frame):
        """``func`` applied once, or ``n`` times in a stack (``func(...) * n``)."""
        if n == 1 and repeat is None:
            return self.apply(func, piped, pos, kw, span, frame, None)
        shared = frame.env.get(func)
        if isinstance(shared, Layer) and shared.decl is not None:  # `tower * 3`: one block applied 3 times
            value = piped
            for _ in range(n):
                value = self.apply(func, value, pos, kw, span, frame, None)
            return value
        if not isinstance(piped, Tensor):
            return self.error("a repeated stage `* n` needs one tensor flowing into it", span, frame)
        group = frame.fresh(self.base_name(func, frame))
        stack = frame.graph.set_block(BlockInstance(frame.node_id(group), func, "stack", frame.block, span=span,
                                                    count=n))
        value = piped
        for i in range(n):
            value = self.apply(func, value, pos, kw, span, frame, f"{group}.{i}", (stack.path, i))
            if value is POISON:
                return POISON
            if not isinstance(value, Tensor):
                return self.error(f"a repeated stage must give one tensor; `{func}` gives {kind_of(value)}",
                                  span, frame)
        return value

    def base_name(self, func: str, frame: Frame) -> str:
        decl = self.namespace(frame).get(func)
        return snake(func) if isinstance(decl, ast.FuncDecl) else func

    def apply(self, func: str, piped, pos, kw, span: Span, frame: Frame, local: str | None, copy=None):
        """Apply ``func``; ``copy`` is ``(stack path, index)`` when this is one copy of ``F * n``."""
        local_value = frame.env.get(func)
        if isinstance(local_value, Layer) and local_value.decl is not None:
            return self.apply_shared_block(local_value, piped, pos, kw, span, frame)
        if isinstance(local_value, Layer):
            return self.apply_layer(local_value, piped, pos, kw, span, frame, local, copy)
        if local_value is POISON:
            return POISON
        if local_value is not None:
            return self.error(f"`{func}` is {kind_of(local_value)}, not an op or block", span, frame)
        decl = self.namespace(frame).get(func)
        if decl is not None and not isinstance(decl, ast.FuncDecl):
            if isinstance(decl, ast.ConstDecl) and self.const(decl, span, frame) is POISON:
                return POISON  # the const's own error is reported
            return self.error(f"`{func}` is a {'const' if isinstance(decl, ast.ConstDecl) else 'pair'}, "
                              "not an op or block", span, frame)
        if decl is None and func in INITIALISERS and catalogue.get(func) is None and piped is None:
            return self.initialiser(func, pos, kw, span, frame)  # normal(0.02): a value
        if decl is None and _scalar_fn(func) and piped is None and len(pos) == 1 and not kw \
                and not isinstance(pos[0][0], Tensor):
            return self.static_math(func, pos[0], span, frame)  # sqrt(64): compile-time arithmetic
        if frame.graph is None:  # evaluating a const
            return self.error(f"a const is a compile-time value; `{func}` cannot be used in one", span, frame,
                              hint="build layers inside a block or model; to share one layer, bind it there with "
                                   "`let`, like `let emb = embedding(V, D)`")
        if self.diags.budget.nodes > MAX_NODES:
            return self.error(f"the spec's models have more than {MAX_NODES} nodes together (the limit)", span, frame,
                              hint="the limit counts every model and cell of one compilation")
        if isinstance(decl, ast.FuncDecl):
            return self.call_block(decl, piped, pos, kw, span, frame, local, copy)
        op = catalogue.get(func)
        if op is None:
            return self.error(f"unknown op or block `{func}`", span, frame, hint=self.did_you_mean(func, frame))
        return self.call_op(op, piped, pos, kw, span, frame, local, copy=copy)

    def add_node(self, graph, node):
        """``graph.add(node)``, counted in the compilation's node budget (MAX_NODES: all models
        and cells together, so that 16 models cannot take 16 times the limit)."""
        self.diags.budget.nodes += 1
        return graph.add(node)

    def static_math(self, func, arg, span, frame):
        v, vspan = arg
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return self.error(f"{func} needs a number or a tensor; got {kind_of(v)}", vspan, frame)
        try:
            return _scalar_fn(func)(v)
        except (ValueError, OverflowError):
            return self.error(f"{func}({v}) is undefined", span, frame)

    # -- built-in ops ------------------------------------------------------------------------
    def call_op(self, op, piped, pos, kw, span: Span, frame: Frame, local=None, layer: str | None = None,
                copy=None):
        tensors = [(piped, span)] if piped is not None else []
        rest = list(pos)
        while rest and isinstance(rest[0][0], Tensor):
            tensors.append(rest.pop(0))
        for v, s in rest:
            if isinstance(v, Tensor) or (isinstance(v, tuple) and any(isinstance(x, Tensor) for x in v)):
                return self.error(f"{op.name} got an unexpected tensor argument", s, frame,
                                  hint=f"signature: {op.signature}" if op.signature else None)
        if isinstance(piped, tuple):
            first = piped[0] if piped and isinstance(piped[0], Tensor) else None
            notes = [(f"the tuple comes from {frame.graph.producer(first.ref).op}",
                      frame.graph.producer(first.ref).span)] if first else []
            return self.error(f"{op.name} needs a tensor; got a tuple of {len(piped)} values", span, frame, notes,
                              hint="unpack it first: `seq, state = ...`")
        if piped is not None and not isinstance(piped, Tensor):
            got = kind_of(piped) + (f" {_show(piped)}" if isinstance(piped, (int, float, str)) else "")
            return self.error(f"{op.name} needs a tensor input; got {got}", span, frame)
        lo, hi = op.arity
        if not lo <= len(tensors) <= (hi if hi is not None else len(tensors)):
            return self.arity_error(op, len(tensors), span, frame)
        explicit = {k: kw[k] for k in LAYER_ARGS if k in kw and k not in op.Attrs.model_fields}
        kw = {k: v for k, v in kw.items() if k not in explicit}
        given = list(op.tensor_kwargs[:len(tensors) - lo])  # optional tensors given by position
        for name in op.tensor_kwargs:
            if name in kw:
                if name in given:
                    return self.error(f"{op.name} argument `{name}` is given twice", kw[name][1], frame)
                extra = self.tensor_kwarg(op, name, kw[name], frame)
                if extra is POISON:
                    return POISON
                tensors += extra
                given.append(name)
        plain = {k: v for k, v in kw.items() if k not in op.tensor_kwargs}
        if op.tensor_kwargs_attr:
            if op.tensor_kwargs_attr in plain:
                return self.error(f"{op.name} has no argument `{op.tensor_kwargs_attr}`",
                                  plain[op.tensor_kwargs_attr][1], frame,
                                  hint=f"signature: {op.signature}")
            plain[op.tensor_kwargs_attr] = (tuple(given), span)
        fixed = {}
        if op.name == "scan":  # scan(Cell, hidden=H, memory=enc): the cell's fixed inputs, by name
            fixed = {k: v for k, v in plain.items() if k not in op.Attrs.model_fields}
            plain = {k: v for k, v in plain.items() if k not in fixed}
        attrs = self.make_attrs(op, rest, plain, tensors, span, frame, fixed)
        if attrs is POISON:
            return POISON
        xs = [t.type for t, _ in tensors]
        try:
            inf = infer_op(op, xs, attrs)
            _check_bounds(inf.types)
        except (ShapeError, DimError) as e:
            notes = [self.origin(t, frame.graph) for t, _ in tensors]
            return self.error(f"{_who(op)} {e}", span, frame, notes, getattr(e, "hint", None))
        inits = self.layer_inits(op, explicit, inf.params, span, frame)
        if inits is POISON:
            return POISON
        if local is None:
            weighted = "has_weights" in op.traits and layer is None
            local = frame.fresh(frame.preferred if weighted and frame.preferred else op.name)
            if weighted:
                frame.preferred = None
        node = Node(frame.node_id(local), op.name, tuple(t.ref for t, _ in tensors), attrs, inf.types, span,
                    copy[0] if copy else frame.block, inf.params, layer, inf.macs, copy[1] if copy else None,
                    inits=inits, **size_provenance(frame))
        self.add_node(frame.graph, node)
        return op.pack(tuple(Tensor((node.id, i), t) for i, t in enumerate(inf.types)))

    def arity_error(self, op, n, span, frame):
        lo, hi = op.arity
        want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
        hint = None
        if n == 0:
            hint = f"apply it to a tensor: `x -> {op.name}`"
        return self.error(f"{op.name} takes {want} tensor input{'s' * (want != '1')}; got {n}", span, frame,
                          hint=hint)

    def tensor_kwarg(self, op, name, arg, frame):
        v, s = arg
        items = v if isinstance(v, tuple) else (v,)
        if not items or not all(isinstance(x, Tensor) for x in items):
            return self.error(f"{op.name} argument `{name}` must be a tensor or a tuple of tensors; "
                              f"got {kind_of(v)}", s, frame)
        return [(x, s) for x in items]

    def make_attrs(self, op, rest, kw, tensors, span, frame, fixed=None):
        fields = list(op.Attrs.model_fields)
        data, spans = {}, {}
        if op.varargs:
            data[op.varargs] = tuple(v for v, _ in rest)
            spans[op.varargs] = rest[0][1] if rest else span
            rest = []
        if len(rest) > len(fields):
            return self.error(f"{op.name} takes at most {len(fields)} argument{'s' * (len(fields) != 1)} "
                              f"besides its input; got {len(rest)}", rest[len(fields)][1], frame,
                              hint=f"signature: {op.signature}" if op.signature else None)
        for f, (v, s) in zip(fields, rest):
            data[f], spans[f] = v, s
        for k, (v, s) in kw.items():
            if k in data:
                return self.error(f"{op.name} argument `{k}` is given twice", s, frame)
            data[k], spans[k] = v, s
        for k, v in data.items():
            data[k] = self.attr_value(op, k, v, tensors, data, spans.get(k, span), frame, fixed)
            if data[k] is POISON:
                return POISON
        try:
            return op.Attrs(**data)
        except ValidationError as e:
            return self.attrs_error(op, e, data, spans, span, frame)

    def attr_value(self, op, name, v, tensors, data, span, frame, fixed=None):
        if isinstance(v, Layer):
            if v.params is None:
                return self.error(f"the layer `{v.var}` is used by {op.name} before it is applied", span, frame)
            return catalogue.LayerRef(v.scope, v.op.name, v.params)
        if isinstance(v, DeclRef):
            if op.name != "scan" or v.decl.kind != "cell":
                return self.error(f"{op.name} argument `{name}` cannot be the {v.decl.kind} `{v.decl.name}`",
                                  span, frame)
            return self.cell_body(v.decl, tensors, data.get("hidden"), span, frame, fixed or {})
        return v

    def attrs_error(self, op, e: ValidationError, data, spans, span, frame):
        reported = set()
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            if field in reported:
                continue  # a union field fails once per alternative: one error says it
            reported.add(field)
            at = spans.get(field, span)
            value = data.get(field)
            sig = f"signature: {op.signature}" if op.signature else None
            if err["type"] == "extra_forbidden":
                import difflib  # (an error's hint: not loaded on the path of a spec that checks)

                close = difflib.get_close_matches(field, list(op.Attrs.model_fields), n=1, cutoff=0.6)
                self.error(f"{op.name} has no argument `{field}`", at, frame,
                           hint=f"did you mean `{close[0]}`?" if close else sig)
            elif err["type"] == "missing":
                self.error(f"{op.name} needs the argument `{field}`", span, frame, hint=sig)
            elif isinstance(value, Expr):
                self.error(f"{op.name} argument `{field}` must be a concrete integer; got the symbolic size "
                           f"{value}", at, frame, hint="give that dimension a concrete size in the input type")
            elif err["type"] not in ("value_error", "assertion_error") and field in op.Attrs.model_fields:
                want = _type_words(op.Attrs.model_fields[field].annotation)
                self.error(f"{op.name} argument `{field}` must be {want}; got {_show(value)}", at, frame)
            else:
                msg = err["msg"][0].lower() + err["msg"][1:]
                msg = msg.removeprefix("value error, ").removeprefix("assertion failed, ")
                self.error(f"{op.name} argument `{field}`: {msg}; got {_show(value)}", at, frame)
        return POISON

    # -- shared layers -----------------------------------------------------------------------
    def apply_layer(self, layer: Layer, piped, pos, kw, span, frame, local, copy=None):
        if pos or kw:
            return self.error(f"the shared layer `{layer.var}` takes no arguments here; they were given "
                              "at its `let`", span, frame)
        if local is None:
            local = layer.scope.rsplit(".", 1)[-1] if layer.uses == 0 else frame.fresh(layer.var)
        n_before = len(frame.graph)
        out = self.call_op(layer.op, piped, layer.pos, layer.kw, span, frame, local, layer=layer.scope, copy=copy)
        if out is POISON or len(frame.graph) == n_before:
            return out
        node = frame.graph.last()  # the node call_op just added
        if layer.params is None:
            layer.params = node.params
        elif node.params != layer.params:
            shapes = ", ".join(f"{k} {list(p.shape)}" for k, p in node.params.items())
            return self.error(f"the shared layer `{layer.var}` would need other weights here ({shapes})",
                              span, frame, [("its weights were fixed by its first use", layer.span)])
        layer.uses += 1
        return out

    # -- blocks ------------------------------------------------------------------------------
    def call_block(self, decl: ast.FuncDecl, piped, pos, kw, span, frame: Frame, local, copy=None):
        self.applied.add(id(decl))
        if decl in frame.stack:
            chain = [d.name for d in frame.stack[frame.stack.index(decl):]] + [decl.name]
            return self.error(f"`{decl.name}` is recursive: {' -> '.join(chain)}", span, frame,
                              [(f"`{decl.name}` is declared", decl.name_span)],
                              hint="blocks are inlined, so a block cannot use itself; to stack copies of a "
                                   "block write `Block(...) * n`")
        if len(frame.stack) >= MAX_DEPTH:
            return self.error(f"blocks nest deeper than {MAX_DEPTH} levels", span, frame)
        if self.duplicate_params(decl, Frame(None, frame.home, ())):
            return POISON
        args = ([(piped, span)] if piped is not None else []) + list(pos)
        if len(args) > len(decl.params):
            return self.error(f"`{decl.name}` takes {len(decl.params)} argument(s); got {len(args)}", span,
                              frame, [(f"`{decl.name}` is declared", decl.name_span)])
        bound = {p.name: a for p, a in zip(decl.params, args)}
        names = [p.name for p in decl.params]
        inits = {k: kw[k][0] for k in LAYER_ARGS if k in kw and k not in names}  # the instance's defaults
        for k, a in kw.items():
            if k in inits:
                continue
            if k not in names:
                close = self.close_name(k, names + list(LAYER_ARGS))
                shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
                return self.error(f"`{decl.name}` has no parameter `{k}`", a[1], frame,
                                  hint=f"did you mean `{close}`?" if close else f"parameters: {shown}")
            if k in bound:
                return self.error(f"`{decl.name}` parameter `{k}` is given twice", a[1], frame)
            bound[k] = a
        if local is None:
            local = frame.fresh(frame.preferred or snake(decl.name))
            frame.preferred = None
        path = frame.node_id(local)
        child = Frame(frame.graph, self.ws.home[id(decl)], tuple(path.split(".")),
                      stack=frame.stack + (decl,), where=[(decl.name, span)], block=path,
                      inits=frame.inits | inits, given_inits=frozenset(inits))
        inst = frame.graph.set_block(BlockInstance(path, decl.name, "block", copy[0] if copy else frame.block,
                                                   span=span, index=copy[1] if copy else None,
                                                   exprs=size_provenance(frame)["exprs"]))
        for p in decl.params:
            if self.bind_param(decl, p, bound.get(p.name), span, child, frame) is POISON:
                return POISON
        inputs = tuple((p.name, child.env[p.name].ref) for p in decl.params if p.is_tensor)
        args = {p.name: child.env[p.name] for p in decl.params if not p.is_tensor}
        value = self.body(decl, child)
        outputs = self.check_results(decl, value, child, decl.name_span)
        if outputs is None:
            return POISON
        env = {k: child.env[k] for k in [*args, *child.env] if is_dim(child.env[k])}
        frame.graph.set_block(records.replace(inst, args=args, env=env, inputs=inputs,
                                              outputs=tuple(t.ref for _, t in outputs)))
        return value

    def bind_param(self, decl, p: ast.Param, arg, span, child: Frame, frame: Frame, origin=None, hint=None):
        """Bind ``p`` in ``child`` to ``arg`` (a (value, span) pair, None for its default),
        checked against its type. ``origin`` replaces the note on where a mismatched tensor
        comes from (a scan cell's inputs are made in the cell's graph), ``hint`` adds one."""
        if arg is None:
            if p.default is None:
                what = "tensor input" if p.is_tensor else "argument"
                return self.error(f"`{decl.name}` needs the {what} `{p.name}`", span, frame,
                                  [(f"`{decl.name}` is declared", decl.name_span)])
            value, vspan = self.ev(p.default, child), p.default.span
        else:
            value, vspan = arg
        if value is POISON:
            return POISON
        if p.is_tensor:
            if not isinstance(value, Tensor):
                return self.error(f"`{decl.name}` parameter `{p.name}` is a tensor; got {kind_of(value)}",
                                  vspan, frame)
            if isinstance(p.type, ast.TensorTypeExpr):
                msg = match(p.type, value.type, child.env, lambda e: self.ev_dim(e, child), self.is_const_name(child))
                if msg:
                    return self.error(f"`{decl.name}` input `{p.name}` must be {ast.pattern_str(p.type)}: {msg}",
                                      vspan, frame,
                                      [origin or self.origin(value, child.graph),
                                       (f"`{p.name}` is declared", p.span)], hint)
        else:
            if isinstance(value, Tensor):
                return self.error(f"`{decl.name}` parameter `{p.name}` is a compile-time value; got a tensor",
                                  vspan, frame)
            value = self.check_scalar(p, value, vspan, frame)
        child.env[p.name] = value
        child.used_names[p.name] = 1
        return value

    # -- cells and scan ----------------------------------------------------------------------
    def cell_body(self, decl: ast.FuncDecl, tensors, hidden, span, frame: Frame, fixed: dict):
        """Elaborate ``decl`` as the step of ``scan``: its first tensor parameter is one step of
        the sequence ``tensors[0]``, those named in ``fixed`` are the tensors given by name
        (appended to ``tensors``, the scan node's inputs), the others are states [N, hidden]."""
        self.applied.add(id(decl))
        if not tensors or hidden is None:
            return self.error("scan needs an input sequence and `hidden=`", span, frame)
        seq = tensors[0][0]
        if seq.type.rank != 3:
            return self.error(f"scan needs a 3-d input [N, T, I]; got {seq.type}", span, frame,
                              [self.origin(seq, frame.graph)])
        if len(tensors) > 1:
            return self.error(f"scan takes one input sequence; got {len(tensors)} tensors before the cell", span,
                              frame, hint="pass a cell input that stays fixed over the steps by its name: "
                                          f"`scan({decl.name}, hidden=..., memory=...)`")
        if self.duplicate_params(decl, Frame(None, frame.home, ())):
            return POISON
        tparams = [p for p in decl.params if p.is_tensor]
        fixed = dict(fixed)
        init = fixed.pop("init", None) if "init" not in [p.name for p in tparams] else None
        if self.check_fixed(decl, tparams, fixed, frame) is POISON:
            return POISON
        states = [p for p in tparams[1:] if p.name not in fixed]
        if not states or not is_dim(hidden):
            return self.error(f"cell `{decl.name}` needs an input and at least one state, like "
                              "`cell C(x: [N, I], h: [N, H])`", decl.name_span, frame)
        init = self.scan_init(decl, init, states, TensorType("float", (seq.type.shape[0], hidden)), frame)
        if init is POISON:
            return POISON
        graph = Graph(decl.name)
        child = Frame(graph, self.ws.home[id(decl)], (), stack=frame.stack + (decl,), where=[(decl.name, span)],
                      inits=dict(frame.inits))
        n, x = seq.type.shape[0], tparams[0]
        state_type = TensorType("float", (n, hidden))
        fixed_params = [p for p in tparams if p.name in fixed]
        step = TensorType(seq.type.dtype, (n, seq.type.shape[2]))
        seen = self.origin(seq, frame.graph)
        given = {x.name: (step, span, (f"the step input is {step}, one step of the sequence: "
                                       + seen[0], seen[1]))}
        for p in states:
            note = f"`{p.name}` is taken as a state: zeros {state_type} (from hidden={hidden}) given by scan"
            given[p.name] = (state_type, span, (note, span))
        for p in fixed_params:
            given[p.name] = (fixed[p.name][0].type, fixed[p.name][1], self.origin(fixed[p.name][0], frame.graph))
        refs = {}  # the step input, the fixed inputs, the states: the order the backends call the cell in
        for p in [x, *fixed_params, *states]:
            refs[p.name] = self.add_node(graph, Node(p.name, "input", (), None, (given[p.name][0],), p.span)).id
            child.used_names[p.name] = 1
        for p in [x, *states, *fixed_params]:  # states first: `hidden=` fixes H before a fixed input is checked
            t, at, origin = given[p.name]
            hint = (f"a cell input that is not a state but stays fixed over the steps is passed to scan by name: "
                    f"`scan({decl.name}, hidden={hidden}, {p.name}=...)`") if p in states else None
            if self.bind_param(decl, p, (Tensor((refs[p.name], 0), t), at), span, child, frame, origin,
                               hint) is POISON:
                return POISON
        for p in decl.params:
            if not p.is_tensor and self.bind_param(decl, p, None, span, child, frame) is POISON:
                return POISON
        value = self.body(decl, child)
        outputs = self.check_results(decl, value, child, decl.name_span)
        if outputs is None:
            return POISON
        if len(outputs) != len(states) or any(t.type != state_type for _, t in outputs):
            got = ", ".join(str(t.type) for _, t in outputs)
            return self.error(f"cell `{decl.name}` must return its {len(states)} new state(s), each "
                              f"{state_type}; it returns {got}", decl.name_span, frame)
        graph.outputs = [(name, t.ref) for name, t in outputs]
        # the scan node's inputs: the sequence, the fixed inputs, then the initial states if given
        tensors.extend([fixed[p.name] for p in fixed_params] + init)
        return catalogue.CellBody(decl.name, graph.weights(), graph.total_macs(), len(states), graph,
                                  tuple(p.name for p in fixed_params), bool(init))

    def scan_init(self, decl, init, states, state_type: TensorType, frame: Frame):
        """``init=h`` or ``init=(h, c)``: one tensor of ``state_type`` per state, in order
        (a list of (tensor, span); empty without ``init``)."""
        if init is None:
            return []
        v, s = init
        items = v if isinstance(v, tuple) else (v,)
        names = ", ".join(p.name for p in states)
        if len(items) != len(states) or not all(isinstance(t, Tensor) for t in items):
            want = f"the {len(states)} initial states" if len(states) > 1 else "the initial state"
            return self.error(f"scan `init=` must give {want} of cell `{decl.name}` ({names}); got {kind_of(v)}",
                              s, frame, hint=f"one tensor [N, hidden] per state: `init=({names})`"
                              if len(states) > 1 else None)
        for p, t in zip(states, items):
            if t.type != state_type:
                return self.error(f"scan `init=`: the initial `{p.name}` must be {state_type}; got {t.type}", s,
                                  frame, [self.origin(t, frame.graph)])
        return [(t, s) for t in items]

    def check_fixed(self, decl, tparams, fixed: dict, frame: Frame):
        """Each ``name=tensor`` given to scan names a tensor input of the cell other than its step input."""
        names = [p.name for p in tparams]
        for k, (v, s) in fixed.items():
            if k not in names:
                close = self.close_name(k, names) or self.close_name(k, ["hidden", "cell"])
                return self.error(f"cell `{decl.name}` has no input `{k}`", s, frame,
                                  [(f"`{decl.name}` is declared", decl.name_span)],
                                  hint=f"did you mean `{close}`?" if close else
                                  f"its tensor inputs: {', '.join(names)}")
            if k == names[0]:
                return self.error(f"`{k}` is the step input of cell `{decl.name}`: scan feeds it one step of the "
                                  "sequence", s, frame, hint=f"pipe the sequence in: `seq -> scan({decl.name}, ...)`")
            if not isinstance(v, Tensor):
                return self.error(f"scan argument `{k}` (an input of cell `{decl.name}`) must be a tensor; "
                                  f"got {kind_of(v)}", s, frame)
        return None


def size_provenance(frame: Frame) -> dict:
    """What the arguments of the call being applied say of the sizes they give (for the
    backends to name a block's sizes as the spec does): ``mentions``, the block's
    compile-time names they read (``conv2d(width, 3)``: width), and ``exprs``, those that are
    size expressions over such names (``padding=k // 2``)."""
    def is_size_name(name):
        return is_dim(frame.env.get(name))

    mentions = {m for m in ast.names_in(frame.arguments) if is_size_name(m)}
    exprs = tuple(e for e in frame.arguments
                  if (names := ast.size_names(e)) and all(is_size_name(m) for m in names))
    return {"mentions": frozenset(mentions), "exprs": exprs}


def _scalar_fn(func: str):
    """Compile-time math on a number (``sqrt(64)`` is 8.0): a unary op's ``scalar`` function
    from the catalogue, or None (on a tensor these are ops)."""
    op = catalogue.get(func)
    return op.scalar if op is not None and op.scalar is not None and op.arity == (1, 1) else None


def _check_bounds(types) -> None:
    """An op's outputs stay within the limits: at most MAX_OUTPUTS of them, each of rank at most
    MAX_RANK, with concrete sizes that fit int64 (symbolic ones are bounded by ``Expr``).
    Raises ShapeError."""
    if len(types) > MAX_OUTPUTS:
        raise ShapeError(f"would give {len(types)} tensors; at most {MAX_OUTPUTS} (the limit)")
    for t in types:
        if t.rank > MAX_RANK:
            raise ShapeError(f"would give a tensor of rank {t.rank}; at most {MAX_RANK} (the limit)")
        if any(type(d) is int and not -MAX_INT <= d <= MAX_INT for d in t.shape):
            raise ShapeError(f"would give a size past 2**63 - 1 (the limit): {t}")


def _who(op) -> str:
    """How an op is named in messages: ``linear``, or the operator the user wrote: `+`, `@`."""
    if op.name == "index":
        return "indexing:"
    sig = op.signature.split()
    if op.group == "math" and len(sig) == 3 and sig[0] == "x" and sig[2] == "y":
        return f"`{sig[1]}`"
    return op.name


def _type_words(t) -> str:
    """An attribute's type annotation in words: ``int | tuple[int, int]`` -> "an int or a pair of ints"."""
    args = typing.get_args(t)
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        words = [_type_words(a) for a in args if a is not type(None) and a is not Expr]
        if "a number" in words and "an int" in words:
            words.remove("an int")
        return " or ".join(dict.fromkeys(words))
    if origin is typing.Literal:
        return " or ".join(_show(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return "a tuple of " + _type_words(args[0]).removeprefix("an ").removeprefix("a ") + "s"
        if len(args) == 2 and args[0] is args[1] is int:
            return "a pair of ints"
        return f"a tuple of {len(args)} values"
    if origin is typing.Annotated:
        return _type_words(args[0])
    names = {bool: "a bool (true or false)", int: "an int", float: "a number", str: "a string",
             Expr: "an int"}
    if t in names:
        return names[t]
    if getattr(t, "__name__", "") == "LayerRef" or "LayerRef" in str(t):
        return "a layer bound with `let`"
    if "CellBody" in str(t):
        return "a cell"
    return getattr(t, "__name__", str(t))


def _show(v) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    return str(v)
