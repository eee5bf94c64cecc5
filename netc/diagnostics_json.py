"""Diagnostics as one JSON document on stdout (schema ``netc.diagnostics/1``,
``docs/schemas/diagnostics.schema.json``, described in ``docs/json.md``), for editors and CI.

``netc check --json`` always prints one: ``ok`` true and the models (with their inputs,
outputs and totals), or ``ok`` false and every diagnostic. ``netc summary --json`` prints
its summary, or this document when the spec has errors. Every spec command takes
``--diagnostics-format json``: its errors go to stdout as this document instead of to stderr
as text (its normal output is unchanged). Errors of the command line itself (an unknown
flag, found before the arguments are read) stay argparse's text.
"""

from __future__ import annotations

import json
import sys

from netc.compiler.source import Diagnostic, Span, SpecError, print_diagnostics

DIAGNOSTICS_SCHEMA = "netc.diagnostics/1"


def location(span: Span | None) -> dict:
    """file, line, col, end_line, end_col (1-based; the end column exclusive); all null for a
    diagnostic about no place in a file (a missing package, a bad flag value)."""
    if span is None:
        return {"file": None, "line": None, "col": None, "end_line": None, "end_col": None}
    return {"file": span.path, "line": span.line, "col": span.column, "end_line": span.end_line,
            "end_col": span.end_column}


def diagnostic_json(d: Diagnostic) -> dict:
    return {**location(d.span), "severity": d.severity, "message": d.message,
            "notes": [{"message": msg, **location(span)} for msg, span in d.notes],
            "hints": [d.hint] if d.hint else []}


def document(spec: str, exit_code: int, diagnostics: list[Diagnostic], more: int = 0, stopped: bool = False,
             models: list | None = None) -> dict:
    return {"schema": DIAGNOSTICS_SCHEMA, "spec": spec, "ok": exit_code == 0, "exit_code": exit_code,
            "diagnostics": [diagnostic_json(d) for d in sorted(diagnostics, key=Diagnostic.sort_key)],
            "more": more, "stopped": stopped, "models": models or []}


def wanted(args) -> bool:
    """Whether this command's diagnostics go to stdout as JSON."""
    return getattr(args, "diagnostics_format", "text") == "json" or (
        getattr(args, "json", False) and getattr(args, "command", None) in ("check", "summary"))


def failed(args, e: SpecError, code: int) -> int:
    """Report a command's errors (as text on stderr, or the JSON document on stdout); return ``code``."""
    if wanted(args):
        print(json.dumps(document(args.spec, code, e.diagnostics, e.more, e.stopped), indent=2))
    else:
        print_diagnostics(e.diagnostics, more=e.more, stopped=e.stopped)
    return code


def check_ok(args, prog) -> int:
    """``netc check --json`` of a spec without errors: each model's interface and totals."""
    from netc.compiler.summary_json import count_json

    models = []
    for name in prog.models:
        if name in prog.pairs:
            models.append({"name": name, "kind": "pair", "roles": dict(prog.pairs[name].roles)})
            continue
        s = prog.summary(name)
        models.append({"name": name, "kind": "model", "inputs": [{"name": n, "type": t} for n, t in s.inputs],
                       "outputs": [{"name": n, "type": t} for n, t in s.outputs], "params": s.params,
                       "macs": count_json(s.macs)})
    print(json.dumps(document(args.spec, 0, [], models=models), indent=2))
    sys.stdout.flush()
    return 0
