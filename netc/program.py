"""The Python API: ``netc.compile_file`` and the :class:`Program` it returns."""

from __future__ import annotations

from netc.compiler.ir import Graph
from netc.compiler.pipeline import Compiled, compile_spec
from netc.compiler.summary import Summary, summarize


class Program:
    """A checked spec: one graph IR per model, and its pairs.

    Example:
        >>> import netc
        >>> prog = netc.compile_file("examples/lenet.net")
        >>> prog.models
        ['LeNet']
        >>> prog.summary("LeNet").params
        421642
    """

    def __init__(self, compiled: Compiled):
        self._c = compiled

    @property
    def path(self) -> str:
        return self._c.path

    @property
    def models(self) -> list[str]:
        """Names of the models and pairs, in declaration order."""
        return list(self._c.graphs) + list(self._c.pairs)

    @property
    def pairs(self) -> dict:
        return dict(self._c.pairs)

    def graph(self, name: str) -> Graph:
        if name not in self._c.graphs:
            raise KeyError(f"no model named {name!r}; models: {', '.join(self._c.graphs) or 'none'}")
        return self._c.graphs[name]

    def members(self, name: str) -> list[str]:
        """The model names behind a model or pair name."""
        if name in self._c.pairs:
            return [m for _, m in self._c.pairs[name].roles]
        self.graph(name)
        return [name]

    def summary(self, name: str, depth: int | None = None) -> Summary:
        """Rows (scope, op, output shape, params, MACs) and totals of one model."""
        return summarize(self.graph(name), depth)


def compile_file(path: str, defines: dict | None = None, models: list[str] | None = None) -> Program:
    """Parse, elaborate and shape-check a spec. Raises ``netc.SpecError`` with every diagnostic.

    ``defines`` overrides model parameters and consts: ``{"classes": 10}`` (strings are parsed
    as .net literals, as ``-D classes=10`` is).
    """
    return Program(compile_spec(str(path), defines, models))
