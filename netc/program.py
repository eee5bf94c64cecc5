"""The Python API: ``netc.compile_file`` and the :class:`Program` it returns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netc.compiler import records
from netc.compiler.ir import Graph
from netc.compiler.limits import DEFAULT_MAX_PARAMS
from netc.compiler.pipeline import Compiled, compile_spec
from netc.compiler.summary import Summary, summarize
from netc.runtime.budget import DEFAULT_MAX_MEMORY

if TYPE_CHECKING:
    from netc.backends.torch.source import TorchSource


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
    def sources(self) -> tuple[str, ...]:
        """Every file the spec was read from: the spec and the files it imports (real paths)."""
        return self._c.sources

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

    def optimized(self, opt: int, disable: tuple[str, ...] = ()) -> Program:
        """This program after the pass pipeline at ``-O{opt}`` (0 to 3), without the passes
        named in ``disable``. ``.reports[model]`` says what each pass did."""
        if opt not in (0, 1, 2, 3):
            raise ValueError(f"opt must be 0, 1, 2 or 3; got {opt!r}")
        key = (opt, tuple(sorted(disable)))
        cache = self.__dict__.setdefault("_optimized", {})
        if opt == 0 and not disable:
            return self
        if key not in cache:
            from netc.compiler.passes import optimize

            runs = {name: optimize(g, opt, disable) for name, g in self._c.graphs.items()}
            prog = Program(records.replace(self._c, graphs={n: r.graph for n, r in runs.items()},
                                               pairs=dict(self._c.pairs), level=opt, disable=key[1]))
            prog.reports = {n: r.report for n, r in runs.items()}
            prog.transforms = {n: r.transforms for n, r in runs.items()}
            cache[key] = prog
        return cache[key]

    def convert_weights(self, name: str, weights: dict, opt: int, disable: tuple[str, ...] = ()) -> dict:
        """An ``-O0`` state dict of a model in the layout of its ``-O{opt}`` module (without the
        passes in ``disable``): fused weights computed (batch norm folded, Q/K/V stacked),
        removed layers' weights dropped."""
        from netc.compiler.passes import convert_weights

        target = self.optimized(opt, disable)
        if target is self:
            return dict(weights)
        keep = set(target.graph(name).weights())
        if {k for k in weights if not k.endswith("num_batches_tracked")} == keep:
            return dict(weights)  # already in the optimised layout
        out = convert_weights(target.transforms[name], dict(weights))
        return {k: v for k, v in out.items() if k in keep or k.endswith("num_batches_tracked")
                and k.rsplit(".", 1)[0] + ".running_mean" in keep}

    def load_weights(self, name: str, source, mapping=None, opt: int = 0, as_numpy: bool = False):
        """A model's weights from a checkpoint, named as netc names them: ready for
        ``to_torch(name, opt).load_state_dict(...)`` and ``to_numpy(name, weights=..., opt=opt)``.

        ``source``: a netc state dict, a foreign ``state_dict`` (torch tensors or arrays), an
        ``nn.Module``, or the path of a ``.pt``/``.pth`` (``torch.load(weights_only=True)``),
        ``.safetensors`` or ``.npz`` file. Foreign names are mapped by structure (the order the
        layers compute in, and shapes; docs/interop.md), with the layout conversions real
        checkpoints need. ``mapping``: a mapping saved before (path, JSON dict or ``Mapping``):
        load by name. The result is a dict of torch tensors (``as_numpy``: of arrays) whose
        ``.mapping`` says what came from where (``.mapping.save(path)``). Raises ``WeightError``
        naming every tensor that did not fit."""
        from netc.runtime.checkpoints import load_checkpoint

        weights = load_checkpoint(self.graph(name), source, mapping, as_numpy)
        if opt:
            converted = type(weights)(self.convert_weights(name, weights, opt))
            converted.mapping = weights.mapping
            return converted
        return weights

    def torch_source(self, *names: str) -> str:
        """Standalone PyTorch source for the named models and pairs (default: all)."""
        return self._torch(names).text

    def _torch(self, names: tuple[str, ...]) -> TorchSource:
        """The emitted PyTorch file of the named models and pairs, with each one's class."""
        from netc.backends.torch.source import emit_torch

        for n in names:
            if n not in self.models:
                raise KeyError(f"no model or pair named {n!r}; the spec has {', '.join(self.models) or 'none'}")
        return emit_torch(self._c, list(names) or None, self._variants(names))

    def _variants(self, names: tuple[str, ...]) -> dict:
        """Each model of ``names`` (default: all) -> its graph with each scalar parameter
        changed (``compiler.variants``): what tells the torch backend which parameters only
        change sizes, so that the class takes them as arguments (``ResNet18(classes=10)``)."""
        from netc.compiler.variants import perturbed

        cache = self.__dict__.setdefault("_perturbed", {})
        models = [m for n in (names or self.models) for m in self.members(n)]
        for m in models:
            if m not in cache:
                cache[m] = perturbed(self._c, m)
        return {m: cache[m] for m in models}

    def to_torch(self, name: str, opt: int = 0, **params):
        """A fresh ``nn.Module`` for a model or pair, built from :meth:`torch_source` of the
        program optimised at ``-O{opt}`` (load -O0 weights with :meth:`convert_weights`).
        ``params``: the model's parameters, where other than the spec's (``classes=10``): the
        class's constructor arguments (:meth:`torch_class`).

        The module survives ``torch.save(model)`` and ``torch.load(path, weights_only=False)``
        in another process: it pickles with its generated source (``runtime/saved_modules.py``).

        Example:
            >>> import torch, netc
            >>> net = netc.compile_file("examples/lenet.net").to_torch("LeNet")
            >>> net(torch.randn(2, 1, 28, 28)).shape
            torch.Size([2, 10])
        """
        return self.torch_class(name, opt)(**params)

    def torch_class(self, name: str, opt: int = 0) -> type:
        """The ``nn.Module`` class of a model or pair (as :meth:`to_torch` builds it). A model's
        class takes the model's parameters as constructor arguments, with the spec's values as
        defaults; a parameter that changes more than layer sizes (a structure, an initialisation)
        accepts only its value (docs/torch.md, "Model parameters").

        Example:
            >>> import torch, netc
            >>> ResNet18 = netc.compile_file("examples/resnet18.net").torch_class("ResNet18")
            >>> ResNet18(classes=10).linear.weight.shape
            torch.Size([10, 512])
        """
        from netc.backends.deps import require
        from netc.runtime.saved_modules import load_picklable

        require("torch", "prog.to_torch")
        if opt:
            return self.optimized(opt).torch_class(name)
        emitted = self._torch((name,))
        module = load_picklable(emitted.text, stem=name)
        return getattr(module, emitted.classes[name])

    def numpy_source(self, name: str | None = None) -> str:
        """The standalone NumPy program (imports only numpy and math) of one model or pair
        (default: the first model): ``load_weights(path)`` and ``forward(weights, *inputs)``;
        a pair's program has ``forward_<Model>`` for both models and ``forward``, the first's."""
        from netc.backends.numpy.emit import numpy_source

        if name is not None and name not in self.models:
            raise KeyError(f"no model or pair named {name!r}; the spec has {', '.join(self.models) or 'none'}")
        return numpy_source(self._c, name)

    def to_numpy(self, name: str, weights=None, seed: int = 0, opt: int = 0, max_memory: int | None = DEFAULT_MAX_MEMORY):
        """The NumPy program of a model or pair as a callable on arrays (eval-mode semantics).

        ``weights``: a torch ``state_dict``, a dict of arrays, or a path to an ``.npz``
        (``netc.runtime.weights.save_npz``); None gives seeded weights of the model's shapes.
        They are checked first (``WeightError`` names a missing, unexpected or misshaped
        weight). A pair runs its first model; ``.run(model, *inputs)`` runs either, and its
        weights are named as the pair module's state_dict names them (``encoder.linear.weight``).
        ``max_memory``: the bytes one call's tensors may need, estimated from the shapes at the
        inputs' sizes before it runs (default 4 GiB; None: no limit); past it, or when NumPy
        runs out of memory, the call raises ``netc.runtime.budget.BudgetError`` (a
        ``SpecError``) at the node that needs the most.

        Example:
            >>> import numpy as np, netc
            >>> prog = netc.compile_file("examples/lenet.net")
            >>> net = prog.to_torch("LeNet").eval()
            >>> ex = prog.to_numpy("LeNet", weights=net.state_dict())
            >>> ex(np.zeros((2, 1, 28, 28), np.float32)).shape
            (2, 10)
        """
        from netc.runtime.numpy_program import build
        from netc.runtime.weights import WeightError

        if opt:
            if isinstance(weights, dict) and name not in self._c.pairs:
                weights = self.convert_weights(name, weights, opt)
            return self.optimized(opt).to_numpy(name, weights, seed, max_memory=max_memory)
        graphs = {m: self.graph(m) for m in self.members(name)}
        roles = {m: r for r, m in self._c.pairs[name].roles} if name in self._c.pairs else None
        try:
            return build(self.numpy_source(name), f"numpy_{name}", graphs, weights, roles, seed, max_memory)
        except WeightError as e:
            level = self._level_of(name, weights)
            if level is None:
                raise
            hint = f"hint: these are the weights of the -O{level} program: pass opt={level}"
            raise WeightError([*e.problems, hint]) from None

    def to_onnx(self, name: str, weights=None, opt: int = 0, seed: int = 0):
        """The ONNX model (an ``onnx.ModelProto``, opset 21) of one model, built from the IR
        optimised at ``-O{opt}``, with ``weights`` as initialisers: an ``-O0`` state dict (or
        dict of arrays, or ``.npz`` path; converted to the ``-O{opt}`` layout) or None: the
        weights :meth:`to_torch` makes under ``torch.manual_seed(seed)`` (netc's own seeded
        weights, ``runtime.weights.init_weights``, where torch is not installed).

        Example:
            >>> import netc, onnx
            >>> m = netc.compile_file("examples/lenet.net").to_onnx("LeNet")
            >>> onnx.checker.check_model(m, full_check=True)
            >>> [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
            ['N', 1, 28, 28]
        """
        from netc.backends.deps import MissingDependency, require
        from netc.compiler.source import Diagnostic, SpecError
        from netc.runtime.numpy_program import as_arrays
        from netc.runtime.weights import check_weights

        what = "ONNX export (prog.to_onnx, compile --backend onnx)"
        require("onnx", what)
        try:
            from netc.backends.onnx.emit import model_proto
        except ImportError as e:
            raise MissingDependency("onnx", what, str(e)) from None
        if name in self._c.pairs:
            raise SpecError([Diagnostic(f"`{name}` is a pair; an ONNX file holds one model", None,
                                        hint="export each of its models: " + ", ".join(self.members(name)))])
        graph = self.optimized(opt).graph(name) if opt else self.graph(name)
        if weights is None:
            weights = self._seeded_weights(name, seed)
        if isinstance(weights, dict) and opt:
            weights = self.convert_weights(name, weights, opt)
        arrays = as_arrays(weights, {k: p.shape for k, p in graph.weights().items()})
        check_weights(graph, arrays)
        return model_proto(graph, arrays, self.path)

    def _seeded_weights(self, name: str, seed: int) -> dict:
        """The -O0 weights of a fresh torch module under ``torch.manual_seed(seed)``; without
        torch, netc's own seeded weights."""
        try:
            import torch
        except ImportError:
            from netc.runtime.weights import init_weights

            return init_weights(self.graph(name), seed)
        torch.manual_seed(seed)
        return self.to_torch(name).state_dict()

    def _level_of(self, name: str, weights) -> int | None:
        """The optimisation level whose weights of model ``name`` are exactly ``weights``'
        names, if another level's than this program's (a state dict of an -O2 module)."""
        if not isinstance(weights, dict) or name in self._c.pairs or getattr(self, "reports", None):
            return None  # (an optimised program has reports)
        names = {k for k in weights if not k.endswith("num_batches_tracked")}
        for level in (2, 1):
            if names == set(self.optimized(level).graph(name).weights()) != set(self.graph(name).weights()):
                return level
        return None

    def summary(self, name: str, depth: int | None = None, rows: bool = True) -> Summary:
        """Rows (scope, op, output shape, params, MACs) and totals of one model (``rows=False``:
        the totals only, with no rows)."""
        return summarize(self.graph(name), depth, rows)

    # -- diagrams: the graphviz package builds them, graphviz's `dot` draws them ------------
    def diagram(self, name: str | list[str] | None = None, depth: int | str | None = None,
                rankdir: str = "TB"):
        """A ``graphviz.Digraph`` of a model, a pair (both models and the hand-off), a list
        of names, or (None) every model. ``depth``: see :meth:`render`."""
        from netc.backends.render import diagram

        graphs, pairs = self._drawn(name)
        return diagram(graphs, pairs, depth, rankdir)

    def render(self, name: str | list[str] | None, path: str, format: str | None = None,
               depth: int | str | None = None, rankdir: str = "TB") -> str:
        """Draw a model or pair to ``path`` (svg, png, pdf or dot: ``format``, else the file's
        extension, else svg). Returns ``path``.

        ``depth``: None draws every block unfolded and one copy of each repeated stack
        (``GPT2Block ×12``); ``k`` folds blocks nested deeper than ``k`` levels into one box
        each; ``"all"`` draws every node. Raises ``RenderError`` without graphviz.

        Example:
            >>> import netc
            >>> prog = netc.compile_file("examples/lenet.net")
            >>> prog.render("LeNet", "/tmp/lenet.svg")
            '/tmp/lenet.svg'
        """
        from netc.backends.render import format_for, render

        if format_for(path, format) == "html":
            return self.explore(name).save(path)
        graphs, pairs = self._drawn(name)
        return render(graphs, path, pairs, format, depth, rankdir)

    def explore(self, name: str | list[str] | None = None, opt: int = 2, live: str | None = None):
        """The interactive explorer of a model, a pair, a list of names or (None) everything:
        an ``Explorer`` whose ``.html`` is one self-contained page (``.save(path)``; a notebook
        shows it inline). It holds the -O0 graphs and the -O``opt`` ones, with what each pass
        changed. Needs graphviz's ``dot`` (the layout is made now, not in the browser).
        ``live``: the version of the files the page was built from (``netc view``): the page
        polls the server that sent it and reloads when the version there is another.

        Example:
            >>> import netc
            >>> page = netc.compile_file("examples/gpt2.net").explore("GPT2")
            >>> "GPT2Block" in page.html
            True
        """
        from netc.backends.render.explore import Explorer, explorer_html
        from netc.compiler.loader import display_path

        graphs, pairs = self._drawn(name)
        levels = {0: graphs}
        reports = {}
        if opt:
            optimized = self.optimized(opt)
            levels[opt] = {m: optimized.graph(m) for m in graphs}
            reports = {m: [(p.name, p.level, p.purpose, [(c.what, str(c.span) if c.span else "") for c in r.rewrites])
                           for p, r in optimized.reports[m]] for m in graphs}
        names = [name] if isinstance(name, str) else list(name or [])
        spec = display_path(self.path)
        title = ", ".join(names) or spec
        return Explorer(explorer_html(levels, pairs, reports, spec, live), title)

    def model(self, name: str) -> ModelView:
        """One model, shown as its diagram in a notebook."""
        if name in self._c.pairs:
            raise KeyError(f"{name!r} is a pair, not a model; draw it with .diagram({name!r})")
        self.graph(name)
        return ModelView(self, name)

    def _repr_svg_(self) -> str | None:
        return _svg(self, None)

    def _drawn(self, name: str | list[str] | None) -> tuple[dict[str, Graph], list]:
        """The graphs and pairs a diagram of ``name`` (None = everything) holds."""
        names = self.models if name is None else [name] if isinstance(name, str) else list(name)
        for n in names:
            if n not in self.models:
                raise KeyError(f"no model or pair named {n!r}; the spec has {', '.join(self.models) or 'none'}")
        graphs = {m: self.graph(m) for n in names for m in self.members(n)}
        return graphs, [self._c.pairs[n] for n in names if n in self._c.pairs]


class ModelView:
    """One model of a :class:`Program`: its graph, summary and diagram (``_repr_svg_`` shows
    it inline in a notebook).

    Example:
        >>> import netc
        >>> m = netc.compile_file("examples/lenet.net").model("LeNet")
        >>> m.summary().params
        421642
    """

    def __init__(self, program: Program, name: str):
        self.program = program
        self.name = name

    @property
    def graph(self) -> Graph:
        return self.program.graph(self.name)

    def summary(self, depth: int | None = None) -> Summary:
        return self.program.summary(self.name, depth)

    def diagram(self, depth: int | str | None = None, rankdir: str = "TB"):
        return self.program.diagram(self.name, depth, rankdir)

    def render(self, path: str, format: str | None = None, depth: int | str | None = None,
               rankdir: str = "TB") -> str:
        return self.program.render(self.name, path, format, depth, rankdir)

    def _repr_svg_(self) -> str | None:
        return _svg(self.program, self.name)

    def __repr__(self) -> str:
        return f"<netc model {self.name} of {self.program.path}>"


def _svg(program: Program, name: str | None) -> str | None:
    """SVG text for a notebook; None (the plain repr) when graphviz cannot draw."""
    from netc.backends.render import RenderError, to_bytes

    try:
        return to_bytes(program.diagram(name), "svg").decode()
    except RenderError:
        return None


def compile_file(path: str, defines: dict | None = None, models: list[str] | None = None, *,
                 max_params: int = DEFAULT_MAX_PARAMS, allow_imports_outside: bool = False) -> Program:
    """Parse, elaborate and shape-check a spec. Raises ``netc.SpecError`` with every diagnostic.

    ``defines`` overrides model parameters and consts: ``{"classes": 10}`` (strings are parsed
    as .net literals, as ``-D classes=10`` is). ``max_params``: a model with more parameters
    is an error (``--max-params``). ``allow_imports_outside``: accept imports of absolute
    paths and of files outside the spec's folder (``--allow-imports-outside``).
    """
    return Program(compile_spec(str(path), defines, models, max_params=max_params,
                                allow_imports_outside=allow_imports_outside))
