"""Reading spec files and resolving imports into per-file namespaces.

``import "blocks/resnet.net"`` is relative to the importing file; ``import "std/..."``
names the standard library shipped in ``specs/std``. A file sees its own declarations and
the declarations of the files it imports (not theirs in turn). Import cycles and duplicate
names are errors that name both places.

Imports stay inside the folder of the spec being compiled (and the standard library inside
``specs/std``): an absolute path, or one that leaves that folder (``../x.net``, a symlink
that resolves outside), is refused unless the caller allows it (``--allow-imports-outside``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources

from . import ast
from .limits import MAX_FILE_BYTES, MAX_IMPORT_DEPTH
from .parse import parse
from .source import Diagnostics, SourceFile, Span, closest


@dataclass
class Workspace:
    root: str | None = None  # key of the root file
    home_dir: str = ""  # real path of the root file's folder: imports stay inside it
    allow_outside: bool = False
    modules: dict[str, ast.Module] = field(default_factory=dict)  # key: real path
    namespaces: dict[str, dict[str, ast.Decl]] = field(default_factory=dict)
    home: dict[int, str] = field(default_factory=dict)  # id(decl) -> key of its file


def std_dir() -> str:
    return str(resources.files("netc.specs").joinpath("std"))


def display_path(path: str) -> str:
    real = os.path.realpath(path)
    std = os.path.realpath(std_dir())
    if real.startswith(std + os.sep):
        return "std/" + os.path.relpath(real, std)
    rel = os.path.relpath(real)
    return path if rel.startswith("..") else rel


def read_source(path: str, diags: Diagnostics, shown: str | None = None, at: Span | None = None):
    """The file as a SourceFile, or None after reporting why it cannot be read (at ``at``, the
    import; for the root file at its line 1)."""
    shown = shown or path
    at = at or Span(SourceFile(shown, ""), 1, 1, 1, 1)
    if os.path.isdir(path):
        diags.error(f"{shown} is a directory, not a spec file", at)
        return None
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO or a device could block or never end
        diags.error(f"{shown} is not a regular file", at)
        return None
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            diags.error(f"{shown} is larger than {MAX_FILE_BYTES} bytes", at)
            return None
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the file may grow after the size check
    except OSError as e:
        diags.error(f"cannot read {shown}: {e.strerror or e}", at)
        return None
    if len(data) > MAX_FILE_BYTES:
        diags.error(f"{shown} is larger than {MAX_FILE_BYTES} bytes", at)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        _binary(diags, shown, data, e.start, at)
        return None
    if "\x00" in text:
        _binary(diags, shown, data, data.index(b"\x00"), at)
        return None
    return SourceFile(shown, text)


def _binary(diags, shown, data: bytes, pos: int, at):
    head = data[:pos].decode("utf-8", "replace")
    line = head.count("\n") + 1
    col = pos - (head.rfind("\n") + 1 if "\n" in head else 0) + 1
    src = SourceFile(shown, "")
    diags.error(f"{shown} is not a text file (byte 0x{data[pos]:02x} at offset {pos})",
                at or Span(src, line, col, line, col + 1))


def load(path: str, diags: Diagnostics, allow_outside: bool = False) -> Workspace:
    ws = Workspace(home_dir=os.path.dirname(os.path.realpath(path)), allow_outside=allow_outside)
    ws.root = _load_file(path, display_path(path), ws, diags, stack=[], at=None)
    for key in ws.modules:
        ws.namespaces[key] = _namespace(key, ws, diags)
    return ws


def _resolve(imp: ast.Import, importer: str) -> str:
    if imp.path.startswith("std/"):
        return os.path.join(std_dir(), imp.path[4:])
    if os.path.isabs(imp.path):
        return imp.path
    return os.path.join(os.path.dirname(importer), imp.path)


def _load_file(path, shown, ws: Workspace, diags, stack: list[tuple[str, ast.Import]], at) -> str | None:
    key = os.path.realpath(path)
    if key in ws.modules or any(k == key for k, _ in stack):
        return key
    source = read_source(path, diags, shown, at)
    if source is None:
        return None
    module = parse(source)
    if not isinstance(module, ast.Module):
        diags.add(module)
        return None
    ws.modules[key] = module
    for imp in module.imports:
        _load_import(imp, key, ws, diags, stack)
    return key


def _outside(imp: ast.Import, key: str, target: str, ws: Workspace) -> str | None:
    """Why an import is refused (None: allowed): it must stay inside the spec's folder, or,
    for the standard library and the files in it, inside ``specs/std``."""
    std = os.path.realpath(std_dir())
    if imp.path.startswith("std/") or key.startswith(std + os.sep):
        folder, what = std, "the standard library"
    else:
        if ws.allow_outside:
            return None
        folder, what = ws.home_dir, "the spec's folder"
        if os.path.isabs(imp.path):
            return "an absolute path"
    if target == folder or target.startswith(folder.rstrip(os.sep) + os.sep):
        return None
    return f"it resolves outside {what}" + (" (through a symlink)" if ".." not in imp.path.split("/") else "")


def _load_import(imp: ast.Import, key: str, ws: Workspace, diags, stack) -> None:
    target = os.path.realpath(_resolve(imp, key))
    refused = _outside(imp, key, target, ws)
    if refused:
        std = imp.path.startswith("std/")
        diags.error(f'cannot import "{imp.path}": {refused}', imp.span,
                    hint=None if std else "imports stay inside the folder of the spec being compiled; "
                                          "to allow this one, pass --allow-imports-outside")
        return
    chain = stack + [(key, imp)]
    cycle = [i for i, (k, _) in enumerate(chain) if k == target]
    if cycle:
        # Reported at the import that opens the cycle (in the file nearest the root); the note
        # names the import that closes it.
        first = chain[cycle[0]][1]
        files = " -> ".join(display_path(k) for k, _ in chain[cycle[0]:]) + f" -> {display_path(target)}"
        notes = [] if first is imp else [(f"{display_path(key)} imports {display_path(target)}", imp.span)]
        diags.error(f"import cycle: {files}", first.span, notes,
                    hint="move what both files need into a third file that each of them imports")
        return
    if len(stack) >= MAX_IMPORT_DEPTH:
        diags.error(f"imports nest deeper than {MAX_IMPORT_DEPTH} files", imp.span)
        return
    if not os.path.exists(target):
        where = "the standard library" if imp.path.startswith("std/") else display_path(os.path.dirname(key) or ".")
        diags.error(f'cannot import "{imp.path}": no such file in {where}', imp.span, hint=_close_file(imp.path, target))
        return
    _load_file(target, display_path(target), ws, diags, stack + [(key, imp)], imp.span)


def _close_file(shown: str, target: str) -> str | None:
    """`did you mean "std/resnet.net"?` for a misspelt import, from the files of its folder."""
    folder, name = os.path.split(target)
    try:
        files = [f for f in os.listdir(folder) if f.endswith(".net")]
    except OSError:
        return None
    close = closest(name, files)
    if not close:
        return None
    return f'did you mean "{shown[: len(shown) - len(os.path.basename(shown))]}{close}"?'


def _namespace(key: str, ws: Workspace, diags) -> dict[str, ast.Decl]:
    module = ws.modules[key]
    names: dict[str, ast.Decl] = {}
    via: dict[str, ast.Import | None] = {}  # name -> the import that brought it (None: declared here)

    def at(decl) -> Span:
        return getattr(decl, "name_span", None) or decl.span

    def add(decl, home, imp: ast.Import | None):
        prev = names.get(decl.name)
        if prev is not None and prev is not decl:
            name, first_imp = decl.name, via[decl.name]
            if imp is None:  # two declarations in this file
                diags.error(f"`{name}` is declared twice", at(decl), [(f"`{name}` is first declared", at(prev))],
                            hint="rename one of them")
            elif first_imp is None:  # this file's declaration clashes with an imported one
                diags.error(f"`{name}` is declared twice: here and in {prev_path(decl)}", at(prev),
                            [(f"`{name}` is also declared", at(decl)),
                             (f'{prev_path(decl)} is imported', imp.span)],
                            hint="rename one of them")
            else:  # two imported files declare it
                diags.error(f"`{name}` is declared twice: in {prev_path(prev)} and in {prev_path(decl)}",
                            imp.span, [(f"`{name}` is declared", at(prev)), (f"`{name}` is declared", at(decl))],
                            hint="rename one of them")
            return
        names[decl.name] = decl
        via[decl.name] = imp
        ws.home[id(decl)] = home

    def prev_path(decl) -> str:
        return decl.span.path

    for decl in module.decls:
        add(decl, key, None)
    for imp in module.imports:
        target = os.path.realpath(_resolve(imp, key))
        if target in ws.modules and target != key:
            for decl in ws.modules[target].decls:
                add(decl, target, imp)
    return names
