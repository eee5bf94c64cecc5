"""What the importer says when a model has something a spec cannot express."""

from __future__ import annotations

from netc.compiler.source import Diagnostic, SpecError


class ImportRefused(SpecError):
    """The model holds something netc cannot write as a spec (an op it does not know, control
    flow, a reshape to a size computed at run time). The message names the ONNX op and node."""

    def __init__(self, message: str, node: str | None = None, op: str | None = None):
        super().__init__([Diagnostic(message, None)])
        self.message, self.node, self.op = message, node, op

    def __str__(self) -> str:
        return self.message


def refuse(message: str, node=None):
    """Raise :class:`ImportRefused`; ``node`` (an ``ONode``) is named in the error's fields."""
    raise ImportRefused(message, getattr(node, "name", None), getattr(node, "op", None))
