"""The values an elaboration computes: compile-time values, tensors, layers, declarations."""

from __future__ import annotations

import builtins
import keyword
from dataclasses import field
from typing import Any

from . import ast
from .dims import Expr, is_dim
from .ir import Ref
from .records import Record
from .source import Span
from .types import TensorType


class Tensor(Record):
    """A tensor flowing through the graph: the output ``ref`` of a node, and its type."""

    ref: Ref
    type: TensorType


class Layer(Record, frozen=False):
    """A layer bound with ``let``: every application shares its weights."""

    var: str
    scope: str  # the node id of the first application; parameter prefix of every application
    op: Any  # catalogue Op class
    pos: list  # [(value, span)] non-tensor positional args
    kw: dict  # name -> (value, span)
    span: Span
    params: dict | None = None  # fixed at the first application
    uses: int = 0
    decl: Any = None  # a block bound with `let` (op is None then): its FuncDecl
    home: str = ""  # the block instance whose body binds it


class DeclRef(Record):
    """A block, model or cell named as a value (``scan(Elman, ...)``)."""

    decl: ast.FuncDecl


class _Poison:
    """The value of an expression that already failed: using it reports nothing more."""

    def __repr__(self) -> str:
        return "<error>"


POISON = _Poison()


RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {
    name for name in ("training", "forward", "parameters", "buffers", "children", "modules", "state_dict",
                      "load_state_dict", "train", "eval", "to", "cuda", "cpu", "float", "double", "half",
                      "type", "apply", "zero_grad", "register_buffer", "register_parameter", "add_module",
                      "named_parameters", "named_modules", "named_buffers", "requires_grad_", "extra_repr",
                      "self", "torch", "nn", "F", "math",
                      # the rest of nn.Module's public attributes (torch 2.x)
                      "T_destination", "bfloat16", "call_super_init", "dump_patches", "get_buffer",
                      "get_extra_state", "get_parameter", "get_submodule", "ipu", "mtia", "named_children",
                      "register_backward_hook", "register_forward_hook", "register_forward_pre_hook",
                      "register_full_backward_hook", "register_full_backward_pre_hook",
                      "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
                      "register_module", "register_state_dict_post_hook", "register_state_dict_pre_hook",
                      "set_extra_state", "set_submodule", "share_memory", "to_empty", "xpu")
}


class Frame(Record, frozen=False):
    """One block instance being elaborated."""

    graph: Any  # ir.Graph
    home: str  # key of the file whose namespace the body sees
    scope: tuple[str, ...]
    env: dict[str, Any] = field(default_factory=dict)
    used_names: dict[str, int] = field(default_factory=dict)
    stack: tuple = ()  # FuncDecls being elaborated, outermost first
    where: list = field(default_factory=list)  # [(decl name, call span)] for notes
    preferred: str | None = None  # a name for the one layer the current statement creates
    block: str = ""  # path of the block instance being elaborated ("" = the model)
    arguments: tuple = ()  # the argument expressions of the call being applied (their ASTs)
    inits: dict = field(default_factory=dict)  # `defaults` in scope: weight_init / bias_init -> Init
    given_inits: frozenset = frozenset()  # those the block's instance was given (`B(weight_init=...)`)

    def fresh(self, base: str) -> str:
        """A local name unique in this scope: base, base_1, base_2, ... Names that generated
        Python code could not use as a module attribute get a trailing underscore, and leading
        underscores are dropped (nn.Module keeps ``_modules``, ``__init__``… for itself, and
        Python mangles ``self.__name`` in a class body); a name left without a leading letter
        becomes ``layer_<rest>``."""
        base = safe_name(base)
        n = self.used_names.get(base, 0)
        name = base if n == 0 else f"{base}_{n}"
        while name in self.used_names and n:
            n += 1
            name = f"{base}_{n}"
        self.used_names[base] = n + 1
        self.used_names.setdefault(name, 1)
        return name

    def node_id(self, local: str) -> str:
        return ".".join(self.scope + (local,))


def safe_name(base: str) -> str:
    """A spec's name as generated code may use it (``Frame.fresh``, a value's name hint):
    leading underscores dropped, a name without a leading letter as ``layer_<rest>``, a
    reserved word with a trailing underscore."""
    stripped = base.lstrip("_")
    base = stripped if stripped[:1].isalpha() else "layer" + ("_" + stripped if stripped else "")
    return base + "_" if base in RESERVED else base


def kind_of(v: Any) -> str:
    """How a value is described in diagnostics."""
    if isinstance(v, Tensor):
        return f"a tensor {v.type}"
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, Expr):
        return f"the symbolic size {v}"
    if isinstance(v, int):
        return "an int"
    if isinstance(v, float):
        return "a float"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, tuple):
        return "a tuple"
    if isinstance(v, Layer):
        return f"the layer `{v.var}`"
    if isinstance(v, DeclRef):
        return f"the {v.decl.kind} `{v.decl.name}`"
    return "a value"


def is_static(v: Any) -> bool:
    """A compile-time value (no tensors inside)."""
    if isinstance(v, tuple):
        return all(is_static(x) for x in v)
    return is_dim(v) or isinstance(v, (bool, float, str))


def has_poison(v: Any) -> bool:
    if isinstance(v, tuple):
        return any(has_poison(x) for x in v)
    return v is POISON


def snake(name: str) -> str:
    """ConvBN -> conv_bn, EncoderLayer -> encoder_layer, GPT2Block -> gpt2_block."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (name[i - 1].islower() or name[i - 1].isdigit()
                                   or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
