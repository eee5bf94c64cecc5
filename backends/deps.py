"""The optional packages netc's backends need, and the error when one is missing.

netc itself needs only lark, pydantic, networkx and numpy. PyTorch (``to_torch``, ``netc
run``/``verify``), graphviz (diagrams: the Python package and its ``dot`` program) and onnx
(``to_onnx``, ``compile --backend onnx``) are extras: ``pip install 'netc[torch]'``,
``'netc[render]'``, ``'netc[onnx]'``. Where one is missing, netc raises
:class:`MissingDependency`, which names what needed it and how to install it. It is a
``SpecError`` (the CLI prints it as a diagnostic and exits 2) and an ``ImportError`` (code
that catches the import's own error still does).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from netc.compiler.source import Diagnostic, SpecError

EXTRAS = {"torch": "torch", "graphviz": "render", "onnx": "onnx"}  # package -> the netc extra that installs it


class MissingDependency(SpecError, ImportError):
    """An optional package netc needs for this is not installed (or fails to import)."""

    def __init__(self, package: str, what: str, cause: str = ""):
        self.package, self.what = package, what
        extra = EXTRAS.get(package, package)
        because = f" ({cause})" if cause and package not in cause else ""
        SpecError.__init__(self, [Diagnostic(f"{what} needs {package}, which is not installed{because}",
                                             None, hint=f"pip install 'netc[{extra}]'")])


def require(package: str, what: str) -> ModuleType:
    """Import ``package``, or raise :class:`MissingDependency` saying that ``what`` needs it."""
    try:
        return importlib.import_module(package)
    except ImportError as e:
        raise MissingDependency(package, what, str(e)) from None
