"""``netc fmt [FILES...] [--check] [--diff]``: lay out .net files the one way netc does
(:mod:`netc.compiler.format`). Files are rewritten in place, only if they change; a folder
stands for its .net files (recursively); ``-`` reads stdin and writes the result to stdout.
``--check`` writes nothing and exits 1 if a file would change; ``--diff`` prints what would
change as a unified diff. A file that does not parse, or that the formatter could not lay out
without changing its meaning, is reported (``file:line:col: error: ...``), left as it is,
and makes the exit code 1.

``format_source`` is re-exported here for editors (the language server's formatting)."""

from __future__ import annotations

import difflib
import os
import sys

from netc.backends.emit_kit import write_atomic
from netc.compiler.format import FormatError, format_source
from netc.compiler.loader import _open, _read
from netc.compiler.source import Diagnostic, Diagnostics, SourceFile, Span, SpecError, print_diagnostics

__all__ = ["FormatError", "add_arguments", "cmd_fmt", "format_source"]


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="a .net file, a folder (its .net files, recursively) or '-' (stdin to stdout)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a file is not formatted (for CI)")
    p.add_argument("--diff", action="store_true", help="write nothing; print a unified diff of the changes")


def _expand(paths: list[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        if p != "-" and os.path.isdir(p):
            for folder, dirs, files in os.walk(p):
                dirs.sort()
                out += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".net")]
        else:
            out.append(p)
    return out


def _read_file(path: str) -> SourceFile | list[Diagnostic]:
    diags = Diagnostics()
    shown = path
    at = Span(SourceFile(shown, ""), 1, 1, 1, 1)
    opened = _open(path, shown, diags, at)
    if opened is None:
        return diags.items
    fd, st = opened
    try:
        source = _read(fd, st, shown, diags, at, f"cannot read {shown}")
    finally:
        os.close(fd)
    return source if source is not None else diags.items


def _diff(path: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"{path}", f"{path} (formatted)"))


def cmd_fmt(args) -> int:
    files = _expand(args.files)
    if args.files.count("-") > 1:
        print("netc: error: '-' (stdin) can be given once", file=sys.stderr)
        return 2
    failed = changed = 0
    for path in files:
        if path == "-":
            source = SourceFile("<stdin>", sys.stdin.read())
        else:
            source = _read_file(path)
            if isinstance(source, list):
                print_diagnostics(source)
                failed += 1
                continue
        try:
            new = format_source(source.text, source.path)
        except (SpecError, FormatError) as e:
            print_diagnostics(e.diagnostics)
            failed += 1
            continue
        except RecursionError:
            print(f"{source.path}:1:1: error: the spec nests too deeply to format", file=sys.stderr)
            failed += 1
            continue
        if args.diff and new != source.text:
            sys.stdout.write(_diff(source.path, source.text, new))
        if new != source.text:
            changed += 1
            if args.check:
                print(f"would reformat {source.path}", file=sys.stderr)
        if path == "-" and not (args.check or args.diff):
            sys.stdout.write(new)
        elif new != source.text and not (args.check or args.diff):
            try:
                write_atomic(path, new)
            except OSError as e:
                print(f"{source.path}:1:1: error: cannot write {source.path}: {e.strerror or e}", file=sys.stderr)
                failed += 1
                continue
            print(f"reformatted {source.path}", file=sys.stderr)
    if not (len(files) == 1 and files[0] == "-" and not args.check):
        verb = "would be reformatted" if args.check or args.diff else "reformatted"
        left = len(files) - changed - failed
        print(f"{changed} file{'s' * (changed != 1)} {verb}, {left} left unchanged"
              + (f", {failed} with errors" if failed else ""), file=sys.stderr)
    return 1 if failed or (args.check and changed) else 0
