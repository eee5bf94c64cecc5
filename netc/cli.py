"""The ``netc`` command line. Exit 0 = ok, 1 = errors in the spec, 2 = bad usage.

Diagnostics go to stderr as ``file:line:col: error: message``; a user never sees a
Python traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from netc.compiler.pipeline import UsageError
from netc.compiler.source import Diagnostic, SpecError, print_diagnostics, use_color
from netc.compiler.summary import fmt_count, render_table
from netc.program import Program, compile_file


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is already 2; keep its words short
        self.print_usage(sys.stderr)
        print(f"netc: error: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="netc", description="A compiler for neural-network specs (.net files).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def spec_command(name, help):
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("spec", help="the .net file")
        c.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                       help="set a model parameter or const (repeatable)")
        return c

    spec_command("check", "parse, elaborate and shape-check a spec; report every error")
    s = spec_command("summary", "per-layer table: scope, op, output shape, params, MACs; totals")
    s.add_argument("--model", action="append", help="model or pair to summarise (default: all)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--depth", type=_depth, default=None, help="fold blocks nested deeper than K levels")
    return p


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
    return compile_file(args.spec, _defines(args.defines), getattr(args, "model", None))


def cmd_check(args) -> int:
    prog = _load(args)
    for name in prog.models:
        if name in prog.pairs:
            roles = ", ".join(f"{r}: {m}" for r, m in prog.pairs[name].roles)
            print(f"{name}: pair ({roles}) fits")
            continue
        s = prog.summary(name)
        ins = ", ".join(t for _, t in s.inputs)
        outs = ", ".join(t for _, t in s.outputs)
        print(f"{name}: ({ins}) -> {outs}  params {s.params:,}  MACs {fmt_count(s.macs)}")
    print(f"{args.spec}: ok, {len(prog.models)} model{'s' * (len(prog.models) != 1)}")
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
        pairs = [{"name": n, "roles": dict(prog.pairs[n].roles)} for n in names if n in prog.pairs]
        print(json.dumps({"spec": args.spec, "models": [s.as_json() for s in summaries], "pairs": pairs},
                         indent=2))
    else:
        color = use_color(sys.stdout)
        print("\n\n".join(render_table(s, color) for s in summaries))
    return 0


COMMANDS = {"check": cmd_check, "summary": cmd_summary}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        print_diagnostics(e.diagnostics)
        return 2
    except SpecError as e:
        print_diagnostics(e.diagnostics)
        return 1
    except RecursionError:
        print(f"netc: error: {args.spec} nests expressions too deeply", file=sys.stderr)
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
