"""The lowering table, the ops that do not export, and the :class:`Builder` lowerings use.

``@lowering("relu")`` registers ``fn(b, node, xs, a) -> list of value names``: ``b`` the
:class:`Builder`, ``node`` the IR node, ``xs`` the ONNX value names of its tensor inputs, ``a``
its attributes. A lowering returns one value name per output of the node (it may return an
input's name: ``dropout`` is the identity at inference).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from netc.compiler.ir import weight_key
from onnx import TensorProto, helper, numpy_helper

from . import sizes

LOWERINGS: dict[str, Callable] = {}

# Ops of the catalogue that have no ONNX lowering, with the reason (docs/interop.md lists them):
# none today. An op added to the catalogue gets a lowering or an entry here.
UNSUPPORTED: dict[str, str] = {}

ONNX_DTYPES = {"float": TensorProto.FLOAT, "int": TensorProto.INT64, "bool": TensorProto.BOOL}
NUMPY_DTYPES = {"float": np.float32, "int": np.int64, "bool": np.bool_}


def lowering(*ops: str):
    """Register ``fn`` as the ONNX lowering of ``ops``."""

    def register(fn: Callable) -> Callable:
        for op in ops:
            if op in LOWERINGS:
                raise ValueError(f"two ONNX lowerings for {op}")
            LOWERINGS[op] = fn
        return fn

    return register


class LoweringError(ValueError):
    """A node the ONNX backend cannot lower (the emitter adds the node's span)."""


class Builder:
    """Collects the nodes of one ONNX graph; initialisers are shared with the outer graph
    (a ``Scan`` body reads the model's weights by name). ``current`` is the IR node being
    lowered: it names the ONNX nodes made for it and gives them its ``doc_string``."""

    def __init__(self, weights: dict[str, np.ndarray], initializers: dict, used: set[str], prefix: str = ""):
        self.weights = weights  # netc name -> array
        self.prefix = prefix  # a Scan body's: its cell's weights are the scan layer's, under this prefix
        self.types: dict = {}  # ONNX value name -> netc TensorType
        self.initializers = initializers  # name -> TensorProto (shared by nested builders)
        self.used = used  # every value and node name taken, model-wide
        self.nodes: list = []
        self.node_names: set[str] = set()  # (ONNX keeps node and value names apart)
        self.current = None  # (IR node id, doc string)
        self.inputs: list[str] = []  # the graph's input values: where symbolic sizes are read
        self.cache: dict = {}  # sizes computed once per graph
        self._made = 0  # ONNX nodes made for the current IR node

    def fresh(self, hint: str, taken: set[str] | None = None) -> str:
        taken = self.used if taken is None else taken
        name, k = hint, 1
        while name in taken:
            k += 1
            name = f"{hint}_{k}"
        taken.add(name)
        return name

    def start(self, nid: str, doc: str) -> None:
        self.current, self._made = (nid, doc), 0

    def add(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, **attrs) -> str | list[str]:
        """Add one ONNX node; returns its output name (a list when ``outputs`` > 1)."""
        nid, doc = self.current or ("", "")
        base = nid or op_type
        name = self.fresh(base if self._made == 0 else f"{base}/{op_type}", self.node_names)
        self._made += 1
        outs = [self.fresh(f"{name}:{i}" if outputs != 1 else name)
                for i in range(outputs)] if isinstance(outputs, int) else outputs
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, doc_string=doc, **attrs))
        return outs[0] if outputs == 1 else outs

    def const(self, value, dtype=np.float32, hint: str = "const") -> str:
        """An initialiser holding ``value``; equal small constants are shared."""
        a = np.asarray(value, dtype=dtype)
        key = f"{hint}_{a.dtype}_{a.shape}_{a.tobytes().hex()}" if a.size <= 16 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.initializers[name] = numpy_helper.from_array(a, name)
        if key is not None:
            self._consts[key] = name
        return name

    @property
    def _consts(self) -> dict:
        return self.__dict__.setdefault("_const_cache", {})

    def weight(self, name: str) -> str:
        """The initialiser of the netc weight ``name`` (added on first use, as float32)."""
        name = self.prefix + name
        if name not in self.initializers:
            a = np.asarray(self.weights[name])
            if a.dtype.kind == "f":
                a = a.astype(np.float32, copy=False)
            self.initializers[name] = numpy_helper.from_array(a, name)
            self.used.add(name)
        return name

    def param(self, node, pname: str) -> str | None:
        """The initialiser of the node's weight ``pname``, or None when it has none."""
        if pname not in node.params:
            return None
        return self.weight(weight_key(node.layer or node.id, pname))

    def derived(self, name: str, array: np.ndarray) -> str:
        """An initialiser computed from weights at export time (an LSTM's stacked gates)."""
        if name not in self.initializers:
            self.used.add(name)
            self.initializers[name] = numpy_helper.from_array(np.asarray(array, np.float32), name)
        return name

    def ints(self, values, hint: str = "ints") -> str:
        return self.const(list(values), np.int64, hint)

    def dim(self, x: str, axis: int) -> str:
        """The size of ``x``'s dim ``axis`` as a 1-element int64 tensor."""
        if axis == -1:
            return self.add("Shape", [x], start=-1)
        return self.add("Shape", [x], start=axis, end=axis + 1)

    def shape_tensor(self, dims, sources: list[tuple[str, tuple]]) -> str:
        """A 1-d int64 shape tensor for ``dims`` (ints and size expressions), the symbolic
        ones read from the runtime shapes of ``sources`` (value, shape) and the graph's inputs."""
        try:
            return sizes.shape_tensor(self, dims, [v for v, _ in sources])
        except sizes.SizeError as e:
            raise LoweringError(str(e)) from None

    def size(self, d, sources=()) -> str:
        """The size ``d`` (an int or a size expression) as a 1-element int64 tensor."""
        try:
            return sizes.size(self, d, sources)
        except sizes.SizeError as e:
            raise LoweringError(str(e)) from None
