"""The recogniser's reader: the rule table (``@rule("Conv")``) and the :class:`Reader`
that rules use to look at the folded graph (constants, single users, nodes they consume)."""

from __future__ import annotations

import numpy as np

from .errors import refuse
from .graph import OnnxGraph, ONode
from .layers import Layer

RULES: dict = {}


def rule(*ops: str):
    def register(fn):
        for op in ops:
            RULES[op] = fn
        return fn
    return register


class Reader:
    """Walks the folded graph once, in order, turning nodes into layers."""

    def __init__(self, g: OnnxGraph):
        self.g = g
        self.taken: set[int] = set()  # ids of nodes a rule already consumed
        self.alias: dict[str, str] = {}

    def value(self, v: str) -> str:
        while v in self.alias:
            v = self.alias[v]
        return v

    def only_user(self, value: str, op: str) -> ONode | None:
        """The one node reading ``value``, if it is an ``op`` and ``value`` is no output."""
        users = self.g.users(value)
        if len(users) == 1 and users[0].op == op and not self.g.is_output(value):
            return users[0]
        return None

    def take(self, node: ONode) -> None:
        self.taken.add(id(node))

    def weight(self, v: str, node: ONode, what: str) -> np.ndarray:
        c = self.g.const(v)
        if c is None:
            refuse(f"ONNX {node.op} node `{node.name}`: its {what} is computed at run time; netc needs it "
                   "as a weight (an initializer)", node)
        return np.asarray(c, np.float32) if c.dtype.kind == "f" else c

    def param(self, v: str) -> Layer:
        """A learned tensor used as an operand (ViT's class token): a `param` of the model."""
        from .write import ident

        a = np.asarray(self.g.const(v), np.float32)
        name = ident(v.replace("/", ".").split(".")[-1], "param")
        return Layer("param", [], v, (name, tuple(int(d) for d in a.shape)), {}, [a])
