"""Elaboration: AST to one graph IR per model.

Blocks are inlined, each instance in its own scope (``basic.0.conv_bn``), so parameter
names and diagram clusters keep the hierarchy. Shapes are inferred as nodes are built,
because compile-time code may use them (``if C == out``, ``linear(C // r)``). Errors are
collected and elaboration goes on with a poison value, so one run reports every error.
"""

from __future__ import annotations

import itertools
import math

from netc.specs import catalogue
from netc.specs.init import INITIALISERS

from . import ast, records
from .calls import Calls, _show
from .dims import Dim, DimError, Expr, exact_div, floordiv, is_dim
from .inits import Inits
from .ir import Graph
from .limits import MAX_INT, MAX_RANK, MAX_SEQUENCE
from .loader import Workspace
from .shapes import declare, match
from .shared import SharedBlocks
from .source import Diagnostics, Span
from .subscripts import Subscripts
from .types import DTYPES
from .values import POISON, DeclRef, Frame, Layer, Tensor, has_poison, is_static, kind_of, safe_name

TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul"}
SCALAR_TYPES = {
    "int": lambda v: is_dim(v),
    "float": lambda v: is_dim(v) or isinstance(v, float),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "tuple": lambda v: isinstance(v, tuple),
}


class Elaborator(Calls, Subscripts, Inits, SharedBlocks):
    def __init__(self, ws: Workspace, diags: Diagnostics, defines: dict | None = None):
        self.ws = ws
        self.diags = diags
        self.defines = defines or {}  # name -> (value, span)
        self.used_defines: set[str] = set()
        self._consts: dict[int, object] = {}
        self._const_active: list[ast.ConstDecl] = []
        self._seen: set = set()
        self.applied: set[int] = set()  # id() of every block and cell a model applied

    # -- diagnostics ---------------------------------------------------------------------
    def error(self, msg: str, span: Span | None, frame: Frame | None = None, notes=(), hint=None):
        key = (msg, span and (span.path, span.line, span.column))
        if key in self._seen:
            return POISON
        self._seen.add(key)
        notes = list(notes)
        if frame is not None and frame.where:
            name, at = frame.where[-1]
            notes.append((f"in `{name}` instantiated", at))
        self.diags.error(msg, span, notes, hint)
        return POISON

    def origin(self, t: Tensor, graph: Graph) -> tuple[str, Span | None]:
        n = graph.producer(t.ref)
        what = f"input `{n.id}`" if n.op == "input" else n.op
        return (f"{t.type} comes from {what}", n.span)

    # -- declarations ----------------------------------------------------------------------
    def namespace(self, frame: Frame) -> dict:
        return self.ws.namespaces.get(frame.home, {})

    def model(self, decl: ast.FuncDecl) -> Graph | None:
        """Elaborate a model as an entry point: its inputs get their declared types."""
        graph = Graph(decl.name)
        frame = Frame(graph, self.ws.home[id(decl)], (), stack=(decl,))
        n_errors = len(self.diags.items)
        if self.duplicate_params(decl, Frame(graph, frame.home, ())):
            return None
        for p in decl.params:
            if not p.is_tensor:
                frame.env[p.name] = self.model_param(decl, p, frame)
        for p in decl.params:
            if p.is_tensor:
                frame.env[p.name] = self.model_input(decl, p, frame)
                frame.used_names[p.name] = 1
        value = self.body(decl, frame)
        outputs = self.check_results(decl, value, frame, decl.name_span)
        if outputs is None or len(self.diags.items) > n_errors:
            return None
        graph.outputs = [(name, t.ref) for name, t in outputs]
        graph.params = {p.name: frame.env[p.name] for p in decl.params if not p.is_tensor}
        return graph

    def model_param(self, decl, p: ast.Param, frame: Frame):
        if p.name in self.defines:
            self.used_defines.add(p.name)
            value, span = self.defines[p.name]
        elif p.default is not None:
            value, span = self.ev(p.default, frame), p.default.span
        else:
            return self.error(f"model parameter `{p.name}` has no default", p.span, frame,
                              hint=f"give one in the spec or on the command line: -D {p.name}=...")
        return self.check_scalar(p, value, span, frame)

    def check_scalar(self, p: ast.Param, value, span, frame):
        if value is POISON or not isinstance(p.type, ast.ScalarType):
            return value
        check = SCALAR_TYPES.get(p.type.name)
        if check is None:
            return self.error(f"unknown type `{p.type.name}`", p.type.span, frame,
                              hint="scalar types are int, float, bool, str, tuple; tensors are written float[...]")
        if not check(value):
            want = {"int": "an int", "str": "a string"}.get(p.type.name, f"a {p.type.name}")
            got = kind_of(value) + (f" {_show(value)}" if isinstance(value, (int, float, str)) else "")
            notes = [(f"`{p.name}` is declared {p.type.name}", p.span)] if span != p.span else []
            return self.error(f"`{p.name}` must be {want}; got {got}", span, frame, notes)
        return value

    def model_input(self, decl, p: ast.Param, frame: Frame):
        if not isinstance(p.type, ast.TensorTypeExpr):
            return self.error(f"model input `{p.name}` needs a full type", p.span, frame,
                              hint=f"write it like `{p.name}: float[N, 3, 32, 32]`")
        if p.type.dtype is not None and p.type.dtype not in DTYPES:
            return self.bad_dtype(p.type, frame)
        n = len(self.diags.items)
        t = declare(p.type, frame.env, lambda e: self.ev_dim(e, frame), lookup=self.is_const_name(frame))
        if len(self.diags.items) > n or any(not is_dim(d) for d in t.shape):
            return POISON
        if t.rank > MAX_RANK:
            return self.error(f"model input `{p.name}` has {t.rank} dims; a tensor has at most {MAX_RANK} "
                              "(the limit)", p.type.span, frame)
        for d, e in zip(t.shape, p.type.dims):
            if isinstance(d, int) and d < 1:
                return self.error(f"a size in a model input must be at least 1; got {d}", e.span, frame)
        from .ir import Node

        node = self.add_node(frame.graph, Node(p.name, "input", (), None, (t,), p.span))
        return Tensor((node.id, 0), t)

    def bad_dtype(self, t: ast.TensorTypeExpr, frame: Frame):
        import difflib  # (an error's hint: not loaded on the path of a spec that checks)

        close = difflib.get_close_matches(t.dtype, DTYPES, n=1, cutoff=0.5)
        hint = "`float` is float32: write `float[...]`" if t.dtype.startswith("float") else (f"did you mean `{close[0]}`?" if close else None)
        at = Span(t.span.source, t.span.line, t.span.column, t.span.line, t.span.column + len(t.dtype))
        return self.error(f"unknown element type `{t.dtype}`; the element types are float, int and bool", at, frame,
                          hint=hint)

    def duplicate_params(self, decl: ast.FuncDecl, frame: Frame) -> bool:
        """Report a parameter name used twice; True when there is one."""
        seen: dict[str, ast.Param] = {}
        for p in decl.params:
            if p.name in seen:
                at = Span(p.span.source, p.span.line, p.span.column, p.span.line, p.span.column + len(p.name))
                self.error(f"parameter `{p.name}` is declared twice", at, frame,
                           [(f"`{p.name}` is first declared", seen[p.name].span)], hint="rename one of them")
                return True
            seen[p.name] = p
        return False

    # -- bodies and statements ---------------------------------------------------------------
    def body(self, decl: ast.FuncDecl, frame: Frame):
        result, seen = None, {}
        for stmt in decl.body:  # `defaults` hold for the whole body, wherever they are written
            if isinstance(stmt, ast.Defaults):
                self.defaults_stmt(stmt, frame, seen)
        for stmt in decl.body:
            if result is not None:
                self.error("statement after `return` is never run", stmt.span, frame,
                           hint="move it before the `return`, or delete it")
                break
            if isinstance(stmt, ast.Return):
                vals = tuple(self.ev(v, frame) for v in stmt.values)
                result = vals[0] if len(vals) == 1 else vals
                if isinstance(result, tuple) and not result:
                    result = self.error(f"{decl.kind} `{decl.name}` returns nothing: `return ()`", stmt.span, frame,
                                        hint="return at least one tensor")
            elif isinstance(stmt, ast.Let):
                self.let(stmt, frame)
            elif isinstance(stmt, ast.ParamStmt):
                self.param_stmt(stmt, frame)
            elif isinstance(stmt, ast.Defaults):
                continue
            else:
                self.assign(stmt, frame)
        if result is None:
            last = decl.body[-1] if decl.body else None
            hint = "end it with `return ...`"
            if isinstance(last, ast.Assign) and len(last.targets) == 1:
                hint = f"end it with `return ...`; did you mean `return {last.targets[0].id}`?"
            return self.error(f"{decl.kind} `{decl.name}` has no `return`", decl.name_span, frame, hint=hint)
        return result

    def assign(self, stmt: ast.Assign, frame: Frame):
        targets = stmt.targets
        if len(targets) == 1 and self.count_layers(stmt.value, frame) == 1:
            frame.preferred = targets[0].id
        mark = frame.graph.last().id if frame.graph is not None and len(frame.graph) else None  # None: the head
        value = self.ev(stmt.value, frame)
        frame.preferred = None
        if len(targets) == 1:
            if stmt.annotation is not None and value is not POISON:
                value = self.check_claim(targets[0], stmt.annotation, value, frame)
            frame.env[targets[0].id] = value
            self.name_values([(targets[0].id, value)], mark, frame)
            return
        if value is not POISON and not (isinstance(value, tuple) and len(value) == len(targets)):
            n = len(value) if isinstance(value, tuple) else 1
            hint = None
            if isinstance(value, tuple) and any(isinstance(v, tuple) for v in value) and n < len(targets):
                hint = "unpack in steps: `seq, state = ...`, then `h, c = state`"
            span = targets[0].span.union(targets[-1].span)
            self.error(f"cannot unpack {n} value{'s' * (n != 1)} into {len(targets)} names; the value is "
                       f"{_structure(value)}", span, frame, hint=hint)
            value = POISON
        for i, t in enumerate(targets):
            if t.id != "_":
                frame.env[t.id] = POISON if value is POISON else value[i]
        self.name_values([(t.id, frame.env[t.id]) for t in targets if t.id != "_"], mark, frame)

    def name_values(self, named: list, mark: str | None, frame: Frame) -> None:
        """Give each tensor the statement made in this block the name it is assigned to
        (``c = f * c + i * g`` names the add ``c``): the node's name hint for that output."""
        g = frame.graph
        if g is None:
            return
        made, nid = set(), g.next_of(mark)  # the nodes after the mark: those this statement made
        while nid is not None:
            made.add(nid)
            nid = g.next_of(nid)
        for name, v in named:
            if not isinstance(v, Tensor) or v.ref[0] not in made:
                continue
            node = g.producer(v.ref)
            if node.block != frame.block or node.index is not None or node.name_of(v.ref[1]):
                continue
            names = list(node.names) + [None] * (len(node.types) - len(node.names))
            names[v.ref[1]] = safe_name(name)
            g.replace(records.replace(node, names=tuple(names)))

    def check_claim(self, target: ast.Name, ann, value, frame: Frame):
        if isinstance(ann, ast.ScalarType):
            p = ast.Param(ann.span, target.id, ann, None)
            return self.check_scalar(p, value, target.span, frame)
        if not isinstance(value, Tensor):
            return self.error(f"`{target.id}` is declared a tensor but is {kind_of(value)}", target.span, frame)
        msg = match(ann, value.type, frame.env, lambda e: self.ev_dim(e, frame), self.is_const_name(frame))
        if msg:
            return self.error(f"`{target.id}` is claimed to be {ast.pattern_str(ann)}: {msg}", ann.span, frame,
                              [self.origin(value, frame.graph)])
        return value

    def let(self, stmt: ast.Let, frame: Frame):
        call = stmt.value
        op = catalogue.get(call.func) if isinstance(call, ast.Call) else None
        decl = self.namespace(frame).get(call.func) if isinstance(call, ast.Call) else None
        if op is None and isinstance(decl, ast.FuncDecl) and decl.kind != "cell" and call.func not in frame.env:
            pos, kw = self.eval_args(call.args, frame)
            scope = frame.node_id(frame.fresh(stmt.name.id))
            frame.env[stmt.name.id] = POISON if pos is POISON else \
                Layer(stmt.name.id, scope, None, pos, kw, call.span, decl=decl, home=frame.block)
            return
        if op is None or "has_weights" not in op.traits:
            self.bad_let(stmt, op, frame)
            frame.env[stmt.name.id] = POISON
            return
        pos, kw = self.eval_args(call.args, frame)
        if pos is POISON:
            frame.env[stmt.name.id] = POISON
            return
        scope = frame.node_id(frame.fresh(stmt.name.id))
        frame.env[stmt.name.id] = Layer(stmt.name.id, scope, op, pos, kw, call.span)

    def bad_let(self, stmt: ast.Let, op, frame: Frame) -> None:
        """Why a `let` cannot bind its value: an unknown name (with a did-you-mean), a block,
        an op without weights, or not a call at all."""
        call, usage = stmt.value, "`let` binds a layer with weights, like `let emb = embedding(V, D)`"
        if not isinstance(call, ast.Call):
            self.error(usage, call.span, frame)
            return
        at = Span(call.span.source, call.span.line, call.span.column, call.span.line,
                  call.span.column + len(call.func))
        decl = self.namespace(frame).get(call.func)
        if op is not None:
            self.error(f"`{call.func}` has no weights, so there is nothing for `let` to share", at, frame,
                       hint=f"apply it where it is needed: `x -> {call.func}`")
        elif isinstance(decl, ast.FuncDecl) and decl.kind == "cell":
            self.error(f"`let` cannot bind the cell `{call.func}`: a cell is run over time by `scan`", at, frame,
                       hint=f"write `x -> scan({call.func}, hidden=...)`; to share a block, `let` a block")
        elif decl is None and call.func not in frame.env:
            close = self.did_you_mean(call.func, frame)
            self.error(f"`let` of an unknown op or block `{call.func}`", at, frame,
                       hint=close or "`let` binds an op with weights (see docs/ops.md), like "
                                     "`let emb = embedding(V, D)`")
        else:
            self.error(usage, call.span, frame)

    def check_results(self, decl: ast.FuncDecl, value, frame: Frame, span: Span):
        """Check a value against the declared results; the (name, tensor) list, or None."""
        if has_poison(value):
            return None
        values = value if isinstance(value, tuple) else (value,)
        flat = [v for v in values if isinstance(v, Tensor)]
        if len(flat) != len(values):
            bad = next(v for v in values if not isinstance(v, Tensor))
            self.error(f"{decl.kind} `{decl.name}` must return tensors; got {kind_of(bad)}", span, frame)
            return None
        results = decl.results
        if results is None:
            return [(None, v) for v in values]
        if len(results) != len(values):
            self.error(f"{decl.kind} `{decl.name}` declares {len(results)} result(s) but returns {len(values)}",
                       results[0].span, frame)
            return None
        for r, v in zip(results, values):
            if r.type is None:
                continue
            msg = match(r.type, v.type, frame.env, lambda e: self.ev_dim(e, frame), self.is_const_name(frame))
            if msg:
                self.error(f"{decl.kind} `{decl.name}` returns {v.type}, declared {ast.pattern_str(r.type)}: {msg}",
                           r.type.span, frame, [self.origin(v, frame.graph)])
                return None
        return [(r.name, v) for r, v in zip(results, values)]

    def count_layers(self, e, frame: Frame) -> int:
        """How many layers with weights (or block instances) an expression creates."""
        count = 0
        for x in ast.walk([e]):
            if isinstance(x, (ast.Call, ast.Stage)):
                decl = self.namespace(frame).get(x.func)
                op = catalogue.get(x.func)
                local = frame.env.get(x.func)
                if local is None and (isinstance(decl, ast.FuncDecl) or (op and "has_weights" in op.traits)):
                    count += 1
        return count

    # -- expressions -----------------------------------------------------------------------
    def ev(self, e, frame: Frame):
        if isinstance(e, ast.Lit):
            return e.value
        if isinstance(e, ast.Name):
            return self.lookup(e.id, e.span, frame)
        if isinstance(e, ast.TupleLit):
            return tuple(self.ev(x, frame) for x in e.items)
        if isinstance(e, ast.Pipe):  # a chain `x -> f -> g`, walked without recursion: it can be long
            stages = []
            while isinstance(e, ast.Pipe):
                stages.append(e.stage)
                e = e.head
            value = self.ev(e, frame)
            for s in reversed(stages):
                value = self.call(s.func, s.args, s.span, frame, piped=value, repeat=s.repeat)
            return value
        if isinstance(e, ast.Call):
            return self.call(e.func, e.args, e.span, frame)
        if isinstance(e, ast.BinOp):
            return self.binop(e, frame)
        if isinstance(e, ast.Unary):
            return self.unary(e, frame)
        if isinstance(e, ast.Index):
            return self.subscript(e, frame)
        if isinstance(e, ast.Cond):
            test = self.ev(e.test, frame)
            if test is POISON:
                return POISON
            if not isinstance(test, bool):
                hint = f"write a comparison, like `{ast.expr_str(e.test)} != 1`" if is_dim(test) else None
                got = kind_of(test) + (f" {test}" if isinstance(test, (int, float)) else "")
                return self.error(f"`if` needs a bool condition; got {got}", e.test.span, frame, hint=hint)
            return self.ev(e.then if test else e.orelse, frame)
        raise AssertionError(f"unknown expression {e!r}")

    def ev_dim(self, e, frame: Frame) -> Dim:
        v = self.ev(e, frame)
        if v is POISON:
            return POISON
        if not is_dim(v):
            return self.error(f"a size must be an integer; got {kind_of(v)}", e.span, frame)
        return v

    def is_const_name(self, frame: Frame):
        return lambda name: isinstance(self.namespace(frame).get(name), ast.ConstDecl)

    def lookup(self, name: str, span: Span, frame: Frame):
        if name in frame.env:
            return frame.env[name]
        decl = self.namespace(frame).get(name)
        if isinstance(decl, ast.ConstDecl):
            return self.const(decl, span, frame)
        if isinstance(decl, ast.FuncDecl):
            return DeclRef(decl)
        if isinstance(decl, ast.PairDecl):
            return self.error(f"`{name}` is a pair; it cannot be used in an expression", span, frame)
        if name in INITIALISERS and catalogue.get(name) is None:
            return self.initialiser(name, [], {}, span, frame)
        if catalogue.get(name) is not None:
            return self.error(f"`{name}` is an op, not a value", span, frame,
                              hint=f"apply it: `x -> {name}` or `{name}(x)`")
        return self.error(f"unknown name `{name}`", span, frame,
                          hint=self.did_you_mean(name, frame) or self.how_to_bind(name, frame))

    def how_to_bind(self, name: str, frame: Frame) -> str | None:
        """A hint for an unknown name in a block: bind a dim with a shape pattern, or add a parameter."""
        if name in ("True", "False"):
            return f"the booleans are `true` and `false`; write `{name.lower()}`"
        if not frame.stack:
            return None
        decl = frame.stack[-1]
        bare = [p.name for p in decl.params if p.is_tensor and p.type is None]
        if bare and name[:1].isupper():
            x = frame.env.get(bare[0])
            rank = x.type.rank if isinstance(x, Tensor) else 2
            layout = {3: ["N", "T", "D"], 4: ["N", "C", "H", "W"]}.get(rank, ["N"] + [f"D{i}" for i in range(1, rank)])
            if name not in layout and rank > 1:
                layout[1] = name
            return f"to name a dim of `{bare[0]}`, give it a shape pattern, like `{bare[0]}: [{', '.join(layout)}]`"
        return f"declare it: a parameter of `{decl.name}`, or a `const`"

    def did_you_mean(self, name: str, frame: Frame, extra=()) -> str | None:
        pool = itertools.chain(frame.env, self.namespace(frame), catalogue.all_ops(), extra)  # read only if searched
        close = self.close_name(name, pool, cutoff=0.75)
        return f"did you mean `{close}`?" if close else None

    def close_name(self, name: str, pool, cutoff: float = 0.6) -> str | None:
        """``closest`` for the first MAX_HINTS misspellings of the compilation (its budget);
        after that, no search (a spec with thousands of errors would make them quadratic)."""
        return self.diags.closest(name, pool, cutoff)

    def const(self, decl: ast.ConstDecl, span: Span, frame: Frame):
        if id(decl) in self._consts:
            return self._consts[id(decl)]
        if decl in self._const_active:
            chain = " -> ".join(d.name for d in self._const_active[self._const_active.index(decl):])
            return self.error(f"const `{decl.name}` depends on itself: {chain} -> {decl.name}", decl.span,
                              notes=[(f"`{self._const_active[-1].name}` uses `{decl.name}`", span)])
        if decl.name in self.defines:
            self.used_defines.add(decl.name)
            value = self.defines[decl.name][0]
        else:
            self._const_active.append(decl)
            home = Frame(None, self.ws.home[id(decl)], ())
            value = self.ev(decl.value, home)
            self._const_active.pop()
            if value is not POISON and not is_static(value):
                value = self.error(f"const `{decl.name}` must be a compile-time value; got {kind_of(value)}",
                                   decl.value.span)
        self._consts[id(decl)] = value
        return value

    def unary(self, e: ast.Unary, frame: Frame):
        v = self.ev(e.operand, frame)
        if v is POISON:
            return POISON
        if e.op == "not":
            if not isinstance(v, bool):
                return self.error(f"`not` needs a bool; got {kind_of(v)}", e.operand.span, frame)
            return not v
        if isinstance(v, Tensor):
            return self.call_op(catalogue.get("neg"), None, [(v, e.operand.span)], {}, e.span, frame)
        if isinstance(v, (int, float, Expr)) and not isinstance(v, bool):
            return -v
        return self.error(f"cannot negate {kind_of(v)}", e.span, frame)

    def binop(self, e: ast.BinOp, frame: Frame):
        a = self.ev(e.left, frame)
        if e.op in ("and", "or"):
            return self.logic(e, a, frame)
        b = self.ev(e.right, frame)
        if a is POISON or b is POISON:
            return POISON
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return self.tensor_binop(e, a, b, frame)
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            return self.compare(e, a, b, frame)
        try:
            return static_arith(e.op, a, b)
        except DimError as err:
            hint = None
            if e.op == "/" and isinstance(a, int) and isinstance(b, int) and b:
                hint = f"`//` rounds down: {a} // {b} is {a // b}"
            return self.error(str(err), e.span, frame, hint=hint)
        except (TypeError, ZeroDivisionError, OverflowError):
            return self.error(f"cannot compute {kind_of(a)} {e.op} {kind_of(b)}", e.span, frame)

    def logic(self, e: ast.BinOp, a, frame: Frame):
        if a is POISON:
            return POISON
        if not isinstance(a, bool):
            return self.error(f"`{e.op}` needs bools; got {kind_of(a)}", e.left.span, frame)
        if (e.op == "and" and not a) or (e.op == "or" and a):
            return a
        b = self.ev(e.right, frame)
        if b is not POISON and not isinstance(b, bool):
            return self.error(f"`{e.op}` needs bools; got {kind_of(b)}", e.right.span, frame)
        return b

    def compare(self, e: ast.BinOp, a, b, frame: Frame):
        if isinstance(a, Expr) or isinstance(b, Expr):
            if e.op in ("==", "!=") and a == b:
                return e.op == "=="
            sym = a if isinstance(a, Expr) else b
            return self.error(f"cannot decide `{a} {e.op} {b}` at compile time: {sym} is a symbolic size",
                              e.span, frame, hint="give the dimension a concrete size in the model's input type")
        try:
            return {"==": a == b, "!=": a != b}[e.op] if e.op in ("==", "!=") else \
                {"<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b}[e.op]()
        except TypeError:
            return self.error(f"cannot compare {kind_of(a)} with {kind_of(b)}", e.span, frame)

    def tensor_binop(self, e: ast.BinOp, a, b, frame: Frame):
        op = TENSOR_OPS.get(e.op)
        if op is None:
            return self.error(f"`{e.op}` is not defined on tensors", e.span, frame,
                              hint="tensor arithmetic has + - * / @ and unary -")
        args = []
        for v, side in ((a, e.left), (b, e.right)):
            if not isinstance(v, Tensor):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    return self.error(f"cannot apply `{e.op}` to a tensor and {kind_of(v)}", side.span, frame)
                v = self.call_op(catalogue.get("constant"), None, [(float(v), side.span)], {}, side.span, frame)
            args.append((v, side.span))
        return self.call_op(catalogue.get(op), None, args, {}, e.span, frame)


def static_arith(op: str, a, b):
    """Compile-time arithmetic: sizes stay exact and canonical; `/` on sizes must be exact.
    Results are bounded (``limits``): an int fits int64, a string or tuple has at most
    MAX_SEQUENCE items."""
    out = _arith(op, a, b)
    if isinstance(out, float) and math.isnan(out):  # inf - inf, 0 * inf: no layer takes it
        raise DimError(f"{a} {op} {b} is not a number (NaN)")
    if isinstance(out, int) and not isinstance(out, bool) and abs(out) > MAX_INT:
        raise DimError(f"{a} {op} {b} is out of range: integers are at most 2**63 - 1 (the limit)")
    if isinstance(out, Expr) and any(abs(c) > MAX_INT for _, c in out.terms):
        raise DimError(f"{a} {op} {b} is out of range: its numbers exceed 2**63 - 1 (the limit)")
    if isinstance(out, (str, tuple)) and len(out) > MAX_SEQUENCE:
        size = f"{len(out)} characters" if isinstance(out, str) else f"{len(out)} items"
        raise DimError(f"the {'string' if isinstance(out, str) else 'tuple'} would have {size}; "
                       f"at most {MAX_SEQUENCE} (the limit)")
    return out


def _arith(op: str, a, b):
    if is_dim(a) and is_dim(b):
        if op == "/":
            return exact_div(a, b)
        if op == "//":
            return floordiv(a, b)
        if op == "%":
            if b == 0:
                raise DimError("modulo by zero")
            return a % b
        if op in ("+", "-", "*"):
            return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b}[op]()
        raise TypeError(op)
    if isinstance(a, Expr) or isinstance(b, Expr) or isinstance(a, bool) or isinstance(b, bool):
        raise TypeError(op)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                "//": lambda: a // b, "%": lambda: a % b}[op]()
    if op == "+" and type(a) is type(b) and isinstance(a, (str, tuple)):
        return a + b
    raise TypeError(op)


def _structure(v) -> str:
    """A value's shape in messages: ``(float[N, T, 256], (float[1, N, 256], float[1, N, 256]))``."""
    if isinstance(v, tuple):
        return "(" + ", ".join(_structure(x) for x in v) + ")"
    return str(v.type) if isinstance(v, Tensor) else kind_of(v)
