"""Learned tensors and subscripts: ``param name: [dims] = init`` and ``x[i, a:b:c, ..., None]``,
initialiser values (``zeros``, ``normal(0.02)``), elaborated into ``parameter`` and ``index``
nodes."""

from __future__ import annotations

from netc.specs import catalogue
from netc.specs.init import INITIALISERS, Init, make

from . import ast
from .dims import Expr
from .source import Span
from .values import POISON, Frame, Tensor, kind_of


class Subscripts:
    """Mixin of the Elaborator."""

    # -- initialisers ------------------------------------------------------------------------
    def initialiser(self, func: str, pos, kw, span: Span, frame: Frame):
        """``normal(0.02)``: an :class:`Init` value."""
        if kw:
            name = next(iter(kw))
            return self.error(f"`{func}` takes its numbers by position; got `{name}=`", kw[name][1], frame,
                              hint=f"write `{func}({', '.join(INITIALISERS[func].args)})`")
        try:
            return make(func, tuple(v for v, _ in pos))
        except ValueError as e:
            return self.error(str(e), span, frame)

    def init_value(self, e, frame: Frame, what: str):
        """Evaluate an initialiser expression; an Init or POISON (with an error)."""
        known = ", ".join(INITIALISERS)
        name = e.id if isinstance(e, ast.Name) else e.func if isinstance(e, ast.Call) else None
        if name is not None and name not in INITIALISERS and name not in frame.env \
                and not isinstance(self.namespace(frame).get(name), ast.ConstDecl):
            import difflib  # (an error's hint: not loaded on the path of a spec that checks)

            close = difflib.get_close_matches(name, list(INITIALISERS), n=1, cutoff=0.5)
            msg = f"`{name}` is an op, not an initialiser" if catalogue.get(name) is not None \
                else f"unknown initialiser `{name}`"
            return self.error(msg, e.span, frame,
                              hint=f"did you mean `{close[0]}`?" if close else f"the initialisers are {known}")
        v = self.ev(e, frame)
        if v is POISON or isinstance(v, Init):
            return v
        return self.error(f"{what} must be an initialiser; got {kind_of(v)}", e.span, frame,
                          hint=f"the initialisers are {known}, like `normal(0.02)`")

    # -- param -------------------------------------------------------------------------------
    def param_stmt(self, stmt: ast.ParamStmt, frame: Frame):
        name = stmt.name.id
        frame.env[name] = POISON
        t = stmt.type
        if not isinstance(t, ast.TensorTypeExpr):
            self.error(f"param `{name}` needs a shape, like `param {name}: [1, 1, D] = zeros`", t.span, frame)
            return
        if t.dtype not in (None, "float"):
            self.error(f"param `{name}` is a learned float tensor; got element type `{t.dtype}`", t.span, frame,
                       hint=f"write `param {name}: [{', '.join(ast.expr_str(d) for d in t.dims)}] = ...`")
            return
        if not t.dims:
            self.error(f"param `{name}` needs at least one dim", t.span, frame, hint="a scalar gain is `[1]`")
            return
        dims = tuple(self.ev_dim(d, frame) for d in t.dims)
        init = self.init_value(stmt.init, frame, f"the value of param `{name}`")
        if POISON in dims or init is POISON:
            return
        for d, e in zip(dims, t.dims):
            if isinstance(d, Expr):
                self.error(f"param `{name}` needs concrete sizes; `{ast.expr_str(e)}` is the symbolic size {d}",
                           e.span, frame, hint="weights have a fixed size: give that dimension a concrete size "
                                               "in the model's input type")
                return
            if d < 1:
                self.error(f"param `{name}`: a size must be at least 1; got {d}", e.span, frame)
                return
        op = catalogue.get("parameter")
        local = frame.fresh(name)
        frame.env[name] = self.call_op(op, None, [], {"shape": (dims, t.span), "init": (init, stmt.init.span)},
                                       stmt.span, frame, local)

    # -- subscripts --------------------------------------------------------------------------
    def subscript(self, e: ast.Index, frame: Frame):
        x = self.ev(e.value, frame)
        items = [self.subscript_item(i, frame) for i in e.items]
        if x is POISON or POISON in items:
            return POISON
        if not isinstance(x, Tensor):
            return self.error(f"only tensors can be indexed; got {kind_of(x)}", e.value.span, frame)
        return self.call_op(catalogue.get("index"), x, [], {"items": (tuple(items), e.span)}, e.span, frame)

    def subscript_item(self, item, frame: Frame):
        if isinstance(item, ast.EllipsisLit):
            return "..."
        if isinstance(item, ast.Name) and item.id == "None" and item.id not in frame.env:
            return "new"
        if isinstance(item, ast.Slice):
            parts = tuple(None if p is None else self.index_int(p, frame) for p in (item.start, item.stop, item.step))
            return POISON if POISON in parts else parts
        return self.index_int(item, frame)

    def index_int(self, e, frame: Frame):
        v = self.ev(e, frame)
        if v is POISON:
            return POISON
        if isinstance(v, Expr):
            return self.error(f"an index must be a concrete integer; `{ast.expr_str(e)}` is the symbolic size {v}",
                              e.span, frame, hint="give that dimension a concrete size in the model's input type")
        if isinstance(v, bool) or not isinstance(v, int):
            hint = "index with a slice `a:b` or an integer" if not isinstance(v, Tensor) else \
                "indexing with a tensor is not supported"
            return self.error(f"an index must be an integer, a slice, `...` or `None`; got {kind_of(v)}", e.span,
                              frame, hint=hint)
        return v
