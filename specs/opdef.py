"""What an op of the catalogue is: the :class:`Op` base class with its traits, attribute
schemas, weights, the registry, and the values ops pass around (``LayerRef``, ``CellBody``).
The ops themselves (``specs/ops/``) build on this module; ``netc.specs.catalogue`` imports
them all and is what the compiler and the backends ask."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from netc.compiler.dims import Dim
from netc.compiler.records import Record
from netc.compiler.types import TensorType
from netc.specs.attrs import Attrs, Check


class NoAttrs(Attrs):
    pass


class Param(Record):
    """One weight of a layer. ``buffer`` weights (running stats) are state, not parameters."""

    shape: tuple[int, ...]
    buffer: bool = False
    dtype: str = "float"

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class Op:
    """Base class of a catalogue entry. Subclasses set the class attributes and override
    the classmethods they need.

    Traits: ``traits`` names the facts about the op that passes and backends act on. They
    ask the entry (``has_trait(op, "layer")``) and keep no list of op names of their own,
    so a new op that declares its traits is picked up wherever they apply:

    ``elementwise``
        Each output element depends only on the input elements at its position (the inputs
        broadcast to the output's shape). It keeps the memory layout of its input
        (use_channels_last).
    ``unary_elementwise``
        An elementwise function of one tensor whose output has the input's shape, with no
        attribute or one float attribute (leaky_relu's slope): a step ``(op, None)`` or
        ``(op, value)`` of ``fused_elementwise`` (fuse_elementwise). Other attributes must
        have defaults, and the op fuses only at them (gelu, not ``gelu(approximate="tanh")``).
    ``binary_elementwise``
        ``x <op> y`` elementwise with broadcasting: a step ``(op, operand)`` of
        ``fused_elementwise``, and, unless ``commutative``, ``("r" + op, operand)`` for
        ``operand <op> x`` (fuse_elementwise).
    ``commutative``
        A binary op with ``x <op> y == y <op> x`` (add, mul).
    ``activation``
        A ``unary_elementwise`` function that a ``layer`` can apply to its own output (the
        layer's ``activation`` attribute, set by fuse_activation; the activation's one float
        attribute, if any, goes to the layer's ``activation_slope``).
    ``layer``
        A weighted layer ``y = W x (+ b)``: attributes ``bias``, ``activation`` and
        ``activation_slope``, weights ``weight`` (output features along
        ``weight_out_axis``) and ``bias``. A batchnorm after it folds into it
        (fold_batchnorm), an activation after it fuses into it (fuse_activation).
    ``channels_last``
        Its kernels run fastest on 4-d tensors stored channels-last (NHWC): use_channels_last
        converts its input.
    ``keeps_layout``
        Its output is stored in the memory layout of its 4-d input (so is an
        ``elementwise`` op's): channels-last flows through it (use_channels_last).
    ``layout_costed``
        A windowed pool whose time differs between the layouts (about 10× here):
        use_channels_last's cost model weighs it, with measured times per shape class.
    ``fresh_output``
        Its one output is a new tensor, never a view of an input, and its gradient does not
        read that output: the one node reading it may overwrite it (the torch backend's
        in-place activations, ``torch.relu_(self.conv2d(x))``).
    ``reshape``
        Changes only the shape, keeping the elements in order: chains of them fold into one
        (fold_reshapes), one that keeps the shape goes (remove_noops).
    ``permute``
        Reorders the dims: output dim i is input dim ``permutation(attrs, rank)[i]``
        (fold_reshapes, remove_noops, fuse_attention).
    ``has_weights``
        Owns weights (``params``): a layer with a name of its own, never merged with another.
    ``stateful``
        Holds state that training updates (batchnorm's running statistics).
    ``random``
        Draws random numbers (dropout while training, randn_like): never merged with
        another node by eliminate_common_subexpressions.

    Other facts are class attributes, below: ``param_names`` (every weight name ``params``
    may give), ``output_names`` (what generated code adds to a node's variable name for each
    output), ``weight_out_axis`` (for ``layer``), ``weight_is_table`` (a 2-d weight that is
    a lookup table, not an [out, in] matrix: checkpoints never store it transposed), and ``scalar``, ``symbol`` and ``neutral``
    (arithmetic: constant folding).
    """

    name: ClassVar[str]
    group: ClassVar[str]  # dense, conv, pool, norm, activation, shape, recurrent, attention, math
    Attrs: ClassVar[type[Attrs]] = NoAttrs
    # How many leading positional arguments are tensors: (min, max); max None = any number.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    # Keyword arguments whose values are tensors (or tuples of tensors); they are appended,
    # flattened and in this order, to the tensor inputs: lstm(x, init=(h, c)) has inputs x, h, c.
    tensor_kwargs: ClassVar[tuple[str, ...]] = ()
    # The attribute that records which optional tensors a node reads, in input order: the
    # ``tensor_kwargs`` given, or given by position past ``arity``'s minimum (attention's
    # ``masks``: ("padding",) for ``self_attention(x, 8, padding=pad)``). The elaborator fills
    # it; a spec cannot set it.
    tensor_kwargs_attr: ClassVar[str | None] = None
    # Attribute that takes all remaining positional arguments as a tuple: reshape(x, N, T, 64).
    varargs: ClassVar[str | None] = None
    traits: ClassVar[frozenset[str]] = frozenset()  # see the class docstring
    # Every weight name params() may give, whatever the attributes ("bias" though bias=false);
    # empty where the names depend on the attributes (lstm's weight_ih_l0, ...) or the op has none.
    param_names: ClassVar[tuple[str, ...]] = ()
    # Names of the outputs, as generated code appends them to the node's variable name ("" is
    # the name itself: lstm's ("", "h", "c") gives lstm, lstm_h, lstm_c); empty: the outputs
    # are numbered (split_0, split_1) when there are several.
    output_names: ClassVar[tuple[str, ...]] = ()
    # A ``layer``'s weight dim that holds its output features (1 for a transposed convolution).
    weight_out_axis: ClassVar[int] = 0
    weight_is_table: ClassVar[bool] = False  # a 2-d weight that is a table (rows looked up), not [out, in]
    # Arithmetic on Python numbers, for constant folding: the op on scalar values (None: the
    # op does not fold), its infix symbol ("+") and its neutral operand with the positions it
    # may take (add: (0, (0, 1)), as 0 + x and x + 0; sub: (0, (1,)), only x - 0).
    scalar: ClassVar[Callable | None] = None
    symbol: ClassVar[str | None] = None
    neutral: ClassVar[tuple[int, tuple[int, ...]] | None] = None
    # The language-level signature, for docs: "conv2d(out, kernel, stride=1, ...)".
    signature: ClassVar[str] = ""

    @classmethod
    def shape(cls, xs: list[TensorType], a: Any) -> TensorType | tuple[TensorType, ...]:
        raise NotImplementedError

    @classmethod
    def params(cls, xs: list[TensorType], a: Any) -> dict[str, Param]:
        return {}

    @classmethod
    def macs(cls, xs: list[TensorType], ys: tuple[TensorType, ...], a: Any) -> Dim:
        return 0

    @classmethod
    def output_suffix(cls, i: int, n: int) -> str:
        """What generated code appends to a node's variable name for its output ``i`` of ``n``:
        ``_h`` for lstm's output 1 (``output_names``), else ``_1`` when there are several."""
        if cls.output_names:
            return f"_{cls.output_names[i]}" if cls.output_names[i] else ""
        return "" if n == 1 else f"_{i}"

    @classmethod
    def permutation(cls, a: Any, rank: int) -> list[int]:
        """A ``permute`` op's order: output dim i is input dim ``permutation(a, rank)[i]``."""
        raise NotImplementedError(f"{cls.name} does not permute dims")

    @classmethod
    def pack(cls, outs: tuple):
        """The value a user sees from the flat outputs: one tensor, or a (nested) tuple."""
        return outs[0] if len(outs) == 1 else outs

    @classmethod
    def doc(cls) -> str:
        return (cls.__doc__ or "").strip()


CATALOGUE: dict[str, type[Op]] = {}


def register(cls: type[Op]) -> type[Op]:
    if cls.name in CATALOGUE:
        raise ValueError(f"op {cls.name} declared twice")
    CATALOGUE[cls.name] = cls
    return cls


def lookup(name: str) -> type[Op] | None:
    """The op registered as ``name`` (ops look each other up through this at run time, once
    ``netc.specs.catalogue`` has registered them all)."""
    return CATALOGUE.get(name)


def has_trait(name: str, trait: str) -> bool:
    """Whether the op ``name`` declares ``trait``; False for a name the catalogue does not
    have (a graph's ``input`` nodes)."""
    op = CATALOGUE.get(name)
    return op is not None and trait in op.traits


class OpWithTrait(Record):
    """Marks an attribute type :func:`op_with` made (the generated docs list the ops)."""

    trait: str

    def names(self) -> list[str]:
        return [name for name, op in sorted(CATALOGUE.items()) if self.trait in op.traits]


def op_with(trait: str) -> Any:
    """An attribute type: the name of an op that has ``trait`` (a layer's ``activation``),
    checked when the attribute is set, so a new op with the trait is accepted too."""
    marker = OpWithTrait(trait)

    def check(name: Any) -> str:
        if not (isinstance(name, str) and has_trait(name, trait)):
            raise ValueError("must be " + " or ".join(f'"{n}"' for n in marker.names()))
        return name

    return Annotated[str, Check(check), marker]


def traits() -> dict[str, str]:
    """Each trait documented in :class:`Op`'s docstring, with its meaning."""
    out: dict[str, str] = {}
    for m in re.finditer(r"^    ``(\w+)``\n((?:        .*\n)+)", Op.__doc__ or "", re.MULTILINE):
        out[m[1]] = " ".join(line.strip() for line in m[2].splitlines())
    return out


class LayerRef(Record):
    """A layer bound with ``let`` and passed as an argument (``unembed(emb)``)."""

    scope: str  # the owning layer's scope path, e.g. "wte"
    op: str  # the owning layer's op, e.g. "embedding"
    params: dict  # name -> Param of the owning layer

    def __hash__(self) -> int:
        return hash((self.scope, self.op))


class CellBody(Record):
    """What ``scan`` needs to know of an elaborated cell: its weights and per-step MACs."""

    name: str
    params: dict  # name -> Param, names scoped inside the cell ("linear.weight")
    step_macs: Dim
    states: int  # how many state tensors the cell carries (h, or h and c)
    graph: Any = None  # the cell's own IR graph, for the backends
    # The cell's inputs that stay fixed over the steps (``memory=enc``), in declaration order:
    # the scan node's inputs after the sequence, and the cell's inputs after the step input.
    fixed: tuple[str, ...] = ()
    init: bool = False  # the initial states are given (the scan node's last ``states`` inputs)

    def __hash__(self) -> int:
        return hash(self.name)
