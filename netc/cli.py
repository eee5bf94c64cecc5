"""The ``netc`` command line. Exit 0 = ok, 1 = errors in the spec, 2 = bad usage.

Diagnostics go to stderr as ``file:line:col: error: message``; a user never sees a
Python traceback.
"""

from __future__ import annotations

import argparse
import atexit
import codecs
import contextlib
import functools
import gc
import os
import sys
import threading
import time

from netc.compiler.limits import (
    DEFAULT_MAX_PARAMS,
    DEFAULT_MAX_TIME,
    MAX_MACS_PER_S,
    RENDER_TIMEOUT,
    Deadline,
    collector_paused,
    process_started,
)
from netc.compiler.loader import display_path
from netc.compiler.pipeline import UsageError
from netc.compiler.source import Diagnostic, SpecError, use_color
from netc.compiler.summary import fmt_count, render_table
from netc.program import Program, compile_file
from netc.runtime.budget import DEFAULT_MAX_MEMORY, parse_bytes, sci

# The commands that only compile, whose objects all live until they return: the cyclic
# collector stays paused through them (7 ms of `netc check examples/gpt2.net` went to
# collections). Not the others: a server, or runs of torch modules.
COMPILE_ONLY = ("check", "summary")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is already 2; keep its words short
        self.print_usage(sys.stderr)
        print(f"netc: error: {message}", file=sys.stderr)
        sys.exit(2)


@functools.cache  # parse_args leaves it as it was: build it once per process
def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; given the command about to run, only that command's arguments are
    declared (the others are listed by name and help), which is all parsing it needs."""
    from netc import __version__

    p = _Parser(prog="netc", description="A compiler for neural-network specs (.net files).")
    p.add_argument("--version", action="version", version=f"netc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    class _Unused:  # what a command's arguments are declared on when that command will not run
        def add_argument(self, *a, **k):
            pass

    def command_parser(name, help):
        c = sub.add_parser(name, help=help, description=help)
        return c if command in (None, name) else _Unused()

    def spec_command(name, help):
        c = command_parser(name, help)
        c.add_argument("spec", help="the .net file")
        c.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                       help="set a model parameter or const (repeatable)")
        c.add_argument("--max-params", type=_max_params, default=DEFAULT_MAX_PARAMS, metavar="N",
                       help=f"a model with more parameters is an error (default {DEFAULT_MAX_PARAMS:,})")
        c.add_argument("--allow-imports-outside", action="store_true",
                       help="accept imports of absolute paths and of files outside the spec's folder")
        c.add_argument("--diagnostics-format", choices=["text", "json"], default="text",
                       help="json: errors as one JSON document on stdout (docs/json.md)")
        return c

    k = spec_command("check", "parse, elaborate and shape-check a spec; report every error")
    k.add_argument("--json", action="store_true", help="the result and any errors as JSON on stdout (docs/json.md)")
    s = spec_command("summary", "per-layer table: scope, op, output shape, params, MACs; totals")
    s.add_argument("--model", action="append", help="model or pair to summarise (default: all)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--depth", type=_depth, default=None, help="fold blocks nested deeper than K levels")
    c = spec_command("compile", "emit standalone source for the spec's models and pairs")
    c.add_argument("--backend", choices=["torch", "numpy", "onnx"], required=True,
                   help="what to emit (numpy: one model or pair, default the first model; onnx: one "
                        "model, default the first, with the torch module's seeded weights, to -o FILE)")
    c.add_argument("--seed", type=int, default=0, help="onnx: seeds the weights (torch.manual_seed)")
    c.add_argument("-o", "--output", metavar="FILE", help="write here instead of to stdout ('-': stdout)")
    c.add_argument("--model", action="append", help="model or pair to emit (default: all)")
    c.add_argument("-O", dest="opt", type=int, choices=[0, 1, 2, 3], default=0,
                   help="-O0: as written; -O1: safe clean-ups; -O2: inference fusions; -O3: and the fusions "
                        "not shown to pay off on every shape (fuse_qkv)")
    c.add_argument("--report", action="store_true", help="say what each pass rewrote and skipped")
    c.add_argument("--print-after", action="append", default=[], metavar="PASS",
                   help="print the graph after this pass (stderr)")
    c.add_argument("--disable", action="append", default=[], metavar="PASS", help="skip this pass")
    FORMATS = RANKDIRS = ()  # the choices of render's options, loaded only for render
    if command in (None, "render"):
        from netc.backends.render import FORMATS, RANKDIRS
    r = spec_command("render", "draw the architecture (graphviz): svg, png, pdf, dot source, or html "
                               "(the interactive explorer)")
    r.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write ('-': stdout)")
    r.add_argument("--format", choices=FORMATS, help="default: from the -o extension, else svg")
    r.add_argument("--model", action="append", help="model or pair to draw (default: all)")
    r.add_argument("--depth", type=_render_depth, default=None, metavar="K|all",
                   help="fold blocks nested deeper than K levels into boxes; 'all' draws every node "
                        "(default: every block open, one copy of each repeated stack)")
    r.add_argument("--optimized", action="store_true", help="draw the -O2 graph (fused nodes marked)")
    r.add_argument("--rankdir", choices=RANKDIRS, default="TB", help="top-to-bottom or left-to-right")
    w = spec_command("view", "serve the interactive explorer on localhost; the page reloads when the spec changes")
    w.add_argument("--model", action="append", help="model or pair to show (default: all)")
    w.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free port)")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    w.add_argument("--open", action="store_true", help="open the page in the default browser")
    x = spec_command("run", "run models on seeded random inputs (eval mode); print each output's "
                            "shape, dtype and mean, std, min, max")
    x.add_argument("--backend", choices=["torch", "numpy"], required=True,
                   help="torch: the emitted module; numpy: the NumPy program with the torch module's "
                        "seeded weights (its state_dict), so both run the same weights for a seed; "
                        "without torch installed, numpy runs netc's own seeded initialisation "
                        "(other numbers than torch's; a note on stderr says so)")
    v = spec_command("verify", "run the same weights (the torch module's state_dict) and inputs through torch "
                               "and NumPy; report max abs and rel diff; exit 1 past --tol")
    v.add_argument("--tol", type=_tolerance, default=None,
                   help="max rel diff allowed: max |numpy - torch| / max |torch| "
                        "(default 1e-4 in float32, 1e-10 in float64)")
    for c in (x, v):
        c.add_argument("--model", action="append", help="model or pair (a pair: both its models; default: "
                                                        "every model)")
        c.add_argument("--seed", type=int, default=0, help="seeds the weights (torch.manual_seed) and the inputs")
        c.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="weights and float inputs")
        c.add_argument("--size", dest="sizes", action="append", default=[], metavar="SYM=K",
                       help="the size of an input dim symbol, e.g. --size T=16 (default N=2, others 5)")
        c.add_argument("-O", dest="opt", type=int, choices=[0, 1, 2, 3], default=0,
                       help="run the program optimised at this level (both backends; default 0)")
        c.add_argument("--max-memory", type=_max_memory, default=DEFAULT_MAX_MEMORY, metavar="BYTES",
                       help="refuse a run whose weights and tensors, estimated from the shapes before anything "
                            f"is allocated, need more (e.g. 512M, 16G; default {DEFAULT_MAX_MEMORY >> 30}G)")
        c.add_argument("--max-time", type=_max_time, default=DEFAULT_MAX_TIME, metavar="SECONDS",
                       help="wall-clock bound for the whole command (e.g. 90, 90s, 10m, 1h; default "
                            f"{DEFAULT_MAX_TIME} s): a model whose multiply-adds cannot be done in what is left "
                            f"even at {sci(MAX_MACS_PER_S)} a second is refused before it runs; past the "
                            "deadline netc stops and exits 1")
    w = spec_command("weights", "a checkpoint (.pt, .pth, .safetensors, .npz) as a model's netc-named weights")
    w.add_argument("--model", action="append", help="the model (default: the spec's only model)")
    w.add_argument("--from", dest="checkpoint", required=True, metavar="FILE", help="the checkpoint")
    w.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.safetensors or OUT.npz")
    w.add_argument("--mapping", metavar="JSON", help="load by the names of a mapping saved before")
    w.add_argument("--mapping-out", metavar="JSON", help="save the mapping used")
    w.add_argument("--show-mapping", action="store_true", help="print the mapping used")

    i = command_parser("import", "turn an ONNX model (or a PyTorch module) into a spec with its blocks found")
    if not isinstance(i, _Unused):
        from netc.cmd_import import add_arguments as import_arguments  # (imports nothing heavy)

        import_arguments(i)
    f = command_parser("fmt", "lay out .net files the one way netc does (in place; --check, --diff)")
    if not isinstance(f, _Unused):
        from netc.fmt import add_arguments as fmt_arguments  # netc fmt: its own module, no heavy imports

        fmt_arguments(f)
    ls = command_parser("lsp", "the language server (LSP over stdin/stdout) for editors; see docs/editors.md")
    ls.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default, and the only transport)")
    return p


def _max_memory(text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--max-memory {e}") from None


def _max_time(text: str) -> float:
    t = text.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(t[-1:], None)
    num = t[:-1] if scale else t
    try:
        seconds = float(num) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-time needs seconds like 90, 90s, 10m or 1h; got {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"--max-time must be more than 0 seconds; got {text!r}")
    return seconds


def _tolerance(text: str) -> float:
    try:
        tol = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tol needs a number; got {text!r}") from None
    if not tol >= 0:
        raise argparse.ArgumentTypeError("--tol must be 0 or more")
    return tol


def _max_params(text: str) -> int:
    value = text.replace("_", "").replace(",", "")
    if not (value.isascii() and value.isdecimal()):
        raise argparse.ArgumentTypeError(f"--max-params needs a whole number; got {text!r}")
    return int(value)


def _render_depth(text: str) -> int | str:
    if text == "all":
        return text
    if not text.lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"--depth needs a whole number or 'all'; got {text!r}")
    return _depth(text)


def _depth(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--depth needs a whole number; got {text!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError("--depth must be at least 1")
    return k


def _defines(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise UsageError([Diagnostic(f"-D needs NAME=VALUE; got {item!r}", None)])
        out[name.strip()] = value.strip()
    return out


def _load(args) -> Program:
    if not os.path.exists(args.spec):
        raise UsageError([Diagnostic(f"{args.spec}: no such file", None)])
    if os.path.isdir(args.spec):
        raise UsageError([Diagnostic(f"{args.spec} is a directory, not a spec file", None)])
    return compile_file(args.spec, _defines(args.defines), getattr(args, "model", None),
                        max_params=args.max_params, allow_imports_outside=args.allow_imports_outside)


def cmd_check(args) -> int:
    prog = _load(args)
    if args.json:
        from netc.diagnostics_json import check_ok

        return check_ok(args, prog)
    for name in prog.models:
        if name in prog.pairs:
            roles = ", ".join(f"{r}: {m}" for r, m in prog.pairs[name].roles)
            print(f"{name}: pair ({roles}) fits")
            continue
        s = prog.summary(name, rows=False)
        ins = ", ".join(f"{n}: {t}" for n, t in s.inputs)
        outs = ", ".join(f"{n}: {t}" if n else t for n, t in s.outputs)
        outs = f"({outs})" if len(s.outputs) > 1 else outs
        print(f"{name}({ins}) -> {outs}  params {s.params:,}  MACs {fmt_count(s.macs)}")
    models, pairs = len(prog.models) - len(prog.pairs), len(prog.pairs)
    counts = f"{models} model{'s' * (models != 1)}" + (f", {pairs} pair{'s' * (pairs != 1)}" if pairs else "")
    print(f"{args.spec}: ok, {counts}")
    return 0


def cmd_summary(args) -> int:
    prog = _load(args)
    names = args.model or [m for m in prog.models if m not in prog.pairs]
    for name in names:
        if name not in prog.models:
            raise UsageError([Diagnostic(f"--model {name}: no such model or pair; the spec has "
                                         f"{', '.join(prog.models) or 'none'}", None)])
    models = list(dict.fromkeys(m for n in names for m in prog.members(n)))
    summaries = [prog.summary(m, args.depth) for m in models]
    if args.json:
        shown = names if args.model else list(prog.pairs)
        pairs = [{"name": n, "roles": dict(prog.pairs[n].roles)} for n in shown if n in prog.pairs]
        import json

        from netc.compiler.summary_json import summary_document

        print(json.dumps(summary_document(args.spec, summaries, pairs), indent=2))
    else:
        color = use_color(sys.stdout)
        print("\n\n".join(render_table(s, color) for s in summaries))
    return 0


def cmd_compile(args) -> int:
    prog = _load(args)
    for name in args.model or []:
        if name not in prog.models:
            raise UsageError([Diagnostic(f"--model {name}: no such model or pair; the spec has "
                                         f"{', '.join(prog.models) or 'none'}", None)])
    if not prog.models:
        raise UsageError([Diagnostic(f"{args.spec} declares no model to compile", None)])
    if args.backend == "onnx":
        _optimize(prog, args)  # (--report, --print-after)
        _write_output(prog, _onnx_path(args), _onnx_bytes(prog, args))
        return 0
    prog = _optimize(prog, args)
    if args.backend == "numpy":
        source = _numpy_source(prog, args.model or [])
    else:
        source = prog.torch_source(*(args.model or []))
    if args.output and args.output != "-":
        _write_output(prog, args.output, source)
    else:
        sys.stdout.write(source)
    return 0


def _write_output(prog: Program, path: str, data: str | bytes) -> None:
    """Write ``-o``'s file whole or not at all (``emit_kit.write_atomic``); never over the spec
    or a file it imports."""
    read = next((src for src in prog.sources if _same_file(path, src)), None)
    if read is not None:
        what = "the spec" if read == prog.sources[0] else f"{display_path(read)}, which the spec imports"
        raise UsageError([Diagnostic(f"-o {path}: will not overwrite {what}; write the output to another file",
                                     None)])
    from netc.backends.emit_kit import write_atomic

    try:
        write_atomic(path, data)
    except OSError as e:
        raise UsageError([Diagnostic(f"cannot write {path}: {e.strerror or e}", None)]) from None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # (one of them does not exist)
        return False


def _optimize(prog: Program, args) -> Program:
    """The program after -O passes; --report and --print-after go to stderr."""
    from netc.compiler.passes import all_passes, format_report, optimize

    names = {p.name for p in all_passes()}
    for name in args.disable + args.print_after:
        if name not in names:
            raise UsageError([Diagnostic(f"no pass named `{name}`; passes: {', '.join(sorted(names))}", None)])
    if args.print_after:
        for model in prog.models:
            if model not in prog.pairs:
                optimize(prog.graph(model), args.opt, args.disable, args.print_after,
                         emit=lambda text: print(text, file=sys.stderr))
    out = prog.optimized(args.opt, tuple(args.disable))
    if args.report:
        for model, report in getattr(out, "reports", {}).items():
            print(f"== {model} (-O{args.opt})\n{format_report(report)}", file=sys.stderr)
    return out


def _onnx_path(args) -> str:
    if not args.output or args.output == "-":
        raise UsageError([Diagnostic("--backend onnx writes a binary file: give -o FILE.onnx", None)])
    return args.output


def _onnx_bytes(prog: Program, args) -> bytes:
    """The serialised ONNX model of the one model --model names (default: the first model)."""
    names = args.model or [next(m for m in prog.models if m not in prog.pairs)]
    if len(names) > 1:
        raise UsageError([Diagnostic("--backend onnx emits one model; give --model once", None)])
    if args.disable:
        raise UsageError([Diagnostic("--disable does not apply to --backend onnx (its weights are converted "
                                     "for the whole -O level)", None)])
    return prog.to_onnx(names[0], opt=args.opt, seed=args.seed).SerializeToString()


def _numpy_source(prog: Program, names: list[str]) -> str:
    """A NumPy program holds one model or pair: the one --model names, else the first model."""
    from netc.backends.numpy.emit import EmitError

    if len(names) > 1:
        raise UsageError([Diagnostic("--backend numpy emits one model or pair; give --model once", None)])
    try:
        return prog.numpy_source(names[0] if names else None)
    except EmitError as e:
        raise SpecError([Diagnostic(f"cannot emit NumPy source: {e}", None)]) from None


def cmd_render(args) -> int:
    from netc.backends.render import RenderError, draw, format_for

    deadline = Deadline(RENDER_TIMEOUT, args.started)  # the whole command
    prog = _load(args)
    for name in args.model or []:
        if name not in prog.models:
            raise UsageError([Diagnostic(f"--model {name}: no such model or pair; the spec has "
                                         f"{', '.join(prog.models) or 'none'}", None)])
    try:
        fmt = format_for(args.output, args.format)
        if fmt == "html":  # the interactive explorer (backends/render/explore)
            unused = [o for o, on in (("--depth", args.depth is not None), ("--rankdir", args.rankdir != "TB"),
                                      ("--optimized", args.optimized)) if on]
            if unused:
                print(f"netc: note: {', '.join(unused)} not used: the explorer opens and folds blocks itself and "
                      "holds both the -O0 and the -O2 graph", file=sys.stderr)
            data = prog.explore(args.model).html.encode()
        else:
            if args.optimized:
                prog = prog.optimized(2)
            graphs, pairs = prog._drawn(args.model)
            data, note = draw(graphs, fmt, pairs, args.depth, args.rankdir, deadline)
            if note:
                print(f"netc: note: {note}", file=sys.stderr)
    except RenderError as e:
        raise UsageError([Diagnostic(str(e), None)]) from None
    if args.output == "-":
        sys.stdout.buffer.write(data)
        return 0
    _write_output(prog, args.output, data)
    return 0


def cmd_view(args) -> int:
    from netc.cmd_view import serve

    if not os.path.isfile(args.spec):
        raise UsageError([Diagnostic(f"{args.spec}: no such file", None)])
    return serve(args, _defines(args.defines))


def _run_setup(args) -> tuple[Program, list[str], dict[str, int]]:
    """The program, the models or pairs to run (default: every model) and the --size values."""
    prog = _load(args)
    if args.opt:
        prog = prog.optimized(args.opt)
    for name in args.model or []:
        if name not in prog.models:
            raise UsageError([Diagnostic(f"--model {name}: no such model or pair; the spec has "
                                         f"{', '.join(prog.models) or 'none'}", None)])
    names = args.model or [m for m in prog.models if m not in prog.pairs]
    if not names:
        raise UsageError([Diagnostic(f"{args.spec} declares no model to run", None)])
    sizes = {}
    for item in args.sizes:
        sym, eq, value = item.partition("=")
        value = value.strip()
        # isdecimal and isascii: "²".isdigit() is true, and int() refuses it
        if not eq or not sym.strip() or not (value.isascii() and value.isdecimal()) or int(value) < 1:
            raise UsageError([Diagnostic(f"--size needs SYM=K with K a whole number >= 1; got {item!r}", None)])
        sizes[sym.strip()] = int(value)
    from netc.runtime.parity import input_symbols

    known = set().union(*(input_symbols(prog, n) for n in names))
    unknown = sorted(sizes.keys() - known)
    if unknown:
        raise UsageError([Diagnostic(f"--size {unknown[0]}: no input of {', '.join(names)} has a dim named "
                                     f"{unknown[0]}; they have {', '.join(sorted(known)) or 'none'}", None)])
    return prog, names, sizes


def _running(what: str, fn, *a, **kw):
    """``fn(*a, **kw)``; a failure while a model runs (e.g. a --size the model cannot take)
    becomes a diagnostic, not a traceback."""
    from netc.backends.numpy.emit import EmitError

    try:
        return fn(*a, **kw)
    except EmitError as e:
        raise SpecError([Diagnostic(f"cannot emit NumPy source: {e}", None)]) from None
    except ImportError as e:  # torch is not installed
        from netc.backends.deps import MissingDependency

        if isinstance(e, MissingDependency):
            raise
        raise MissingDependency(e.name or "torch", what, str(e)) from None
    except (RuntimeError, ValueError, IndexError) as e:
        raise SpecError([Diagnostic(f"{what} failed: {type(e).__name__}: {e}", None)]) from None


PROGRESS_AFTER_S = 1.0  # a step that takes longer says so on stderr (at once on a terminal)


@contextlib.contextmanager
def _progress(what: str):
    """Say on stderr that ``what`` is under way: at once when stderr is a terminal, else
    once it has taken PROGRESS_AFTER_S; and how long it took, if it was said."""
    stream, start, said = sys.stderr, time.monotonic(), threading.Event()
    lock = threading.Lock()

    def say():
        with lock:
            if not done:
                said.set()
                print(f"netc: {what}...", file=stream, flush=True)

    done = False
    timer = threading.Timer(0 if _isatty(stream) else PROGRESS_AFTER_S, say)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            done = True
        timer.cancel()
        timer.join()
        if said.is_set():
            print(f"netc: {what}: done in {time.monotonic() - start:.1f} s", file=stream, flush=True)


def _isatty(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def _torch_missing() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return True
    return False


def cmd_run(args) -> int:
    from netc.runtime.parity import render_run, run

    prog, names, sizes = _run_setup(args)
    if args.backend == "numpy" and _torch_missing():
        print("netc: note: torch is not installed: the NumPy program runs netc's own seeded weights "
              "(netc.runtime.weights.init_weights), not the torch module's, so its numbers differ from "
              "`--backend torch` with torch installed", file=sys.stderr)
    runs = []
    with _time_bound(args, prog, names, "run") as now:
        for name in names:
            now[0] = name
            with _progress(f"running {name} ({args.backend})"):
                runs += _running(f"running {name} ({args.backend})", run, prog, name, args.backend, args.seed,
                                 args.dtype, sizes, args.max_memory, now[1].left())
    print(render_run(runs, args.seed, args.dtype))
    return 0


def cmd_verify(args) -> int:
    from netc.runtime.parity import render_verify, verify

    prog, names, sizes = _run_setup(args)
    results = []
    with _time_bound(args, prog, names, "verify") as now:
        for name in names:
            now[0] = name
            with _progress(f"verifying {name} (torch and NumPy)"):
                results += _running(f"verifying {name}", verify, prog, name, args.seed, args.dtype, sizes,
                                    args.tol, args.max_memory, now[1].left())
    print(render_verify(results, args.seed, args.dtype))
    bad = [r for r in results if not r.ok]
    for r in bad:
        if not r.agree:
            why = "; ".join(o.problem for o in r.outputs if o.problem) or f"max rel diff {r.max_rel:.3g} > tol {r.tol:.3g}"
            print(f"{args.spec}: error: {r.model}: torch and NumPy differ: {why}", file=sys.stderr)
        else:
            why = "; ".join(f"{o.name}: {o.vacuous}" for o in r.outputs if o.vacuous)
            print(f"{args.spec}: error: {r.model}: the comparison shows nothing: {why}", file=sys.stderr)
    return 1 if bad else 0


@contextlib.contextmanager
def _time_bound(args, prog: Program, names: list[str], command: str):
    """The body under --max-time, counted from the command's start; yields [the model or pair now
    running, the Deadline]. Past the deadline netc stops with a diagnostic at that model (at the
    first of ``names`` if none has started)."""
    from netc.watchdog import Watchdog

    deadline = Deadline(args.max_time, args.started)
    now: list = [None, deadline]

    def message() -> list[Diagnostic]:
        name = now[0] or names[0]
        ins = prog.graph(prog.members(name)[0]).input_nodes()
        doing = "running" if command == "run" else "verifying"
        doing = f": stopped while {doing} `{name}`" if now[0] else f": stopped before {doing} `{name}`"
        return [Diagnostic(f"netc {command} did not finish in {args.max_time:g} s (the limit, --max-time){doing}",
                           ins[0].span if ins else None,
                           hint="raise the limit with --max-time SECONDS (e.g. --max-time 30m), or run at "
                                "smaller sizes (--size, -D)")]

    with Watchdog(deadline, message, hard=args.argv_none):
        yield now


def cmd_weights(args) -> int:
    from netc.cmd_weights import run

    return run(args, _load(args), _write_output)


def cmd_import(args) -> int:
    from netc.cmd_import import cmd_import as run

    return run(args)


def cmd_fmt(args) -> int:
    from netc.fmt import cmd_fmt as run

    return run(args)


def cmd_lsp(args) -> int:
    try:
        from netc.lsp.server import main as serve
    except ImportError as e:  # pygls is an extra
        raise UsageError([Diagnostic(f"netc lsp needs pygls: {e}", None, hint="pip install 'netc[lsp]'")]) from None
    return serve()


COMMANDS = {"check": cmd_check, "summary": cmd_summary, "render": cmd_render, "compile": cmd_compile,
            "run": cmd_run, "verify": cmd_verify, "weights": cmd_weights, "import": cmd_import,
            "fmt": cmd_fmt, "lsp": cmd_lsp,
            "view": cmd_view}


# What stdout gets for the characters of a summary when its encoding cannot write them
# (LC_ALL=C, PYTHONIOENCODING=ascii): MACs 8·N reads 8*N, a 3×3 kernel 3x3; anything else is "?".
_ASCII_FALLBACK = {"×": "x", "·": "*", "─": "-", "→": "->", "…": "...", "−": "-", "÷": "/", "≤": "<=", "≥": ">="}


def _ascii_fallback(e: UnicodeError):
    if not isinstance(e, UnicodeEncodeError):
        raise e
    bad = e.object[e.start:e.end]
    return "".join(_ASCII_FALLBACK.get(ch, "?") for ch in bad), e.end


codecs.register_error("netc-fallback", _ascii_fallback)


def _plain_stdout() -> None:
    """If stdout cannot encode what netc prints, write the ASCII fallbacks instead of failing."""
    stream = sys.stdout
    encoding = getattr(stream, "encoding", None)
    if not encoding or not hasattr(stream, "reconfigure"):
        return
    try:
        "×·→".encode(encoding)
    except UnicodeEncodeError:
        stream.reconfigure(errors="netc-fallback")
    except LookupError:
        pass


def _heap_out_of_reach() -> None:
    """At the exit of the `netc check` or `netc summary` process: every object is moved out of
    the cyclic collector's reach (``gc.freeze``), so that the full collections Python runs as
    it shuts down do not walk the whole heap once more (50 ms of the 280 that `netc check
    examples/gpt2.net` took, docs/performance.md). Only for these commands: their output is
    stdout, which Python flushes at exit whatever the collector does, and nothing they keep
    in a reference cycle holds a resource that needs a finaliser. (Exit handlers still run,
    before or after it: freezing moves objects, it frees nothing.)"""
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    # time bounds count from the process's start for the `netc` command (argv None), so that its
    # imports count too; from now for a call in a process that does other things (tests, fuzzing)
    started = process_started() if argv is None else time.monotonic()
    _plain_stdout()
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words[0] if words and words[0] in COMMANDS else None).parse_args(argv)
    args.started, args.argv_none = started, argv is None
    if argv is None and args.command in COMPILE_ONLY:
        atexit.register(_heap_out_of_reach)
    try:
        with collector_paused() if args.command in COMPILE_ONLY else contextlib.nullcontext():
            return COMMANDS[args.command](args)
    except SpecError as e:  # (a UsageError, or a missing package: 2)
        from netc.backends.deps import MissingDependency
        from netc.diagnostics_json import failed

        return failed(args, e, 2 if isinstance(e, (UsageError, MissingDependency)) else 1)
    except RecursionError:
        print(f"{args.spec}:1:1: error: the spec nests too deeply to compile", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 -- a bug in netc: say so plainly, without a traceback
        print(f"netc: internal error: {type(e).__name__}: {e}\n"
              "  this is a bug in netc; please report it with the spec that caused it", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
