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

import collections
import functools
import os
import stat
import threading
from dataclasses import field
from importlib import resources

from . import ast
from .limits import MAX_FILE_BYTES, MAX_IMPORT_DEPTH, MAX_SOURCE_BYTES
from .parse import parse, parse_cached
from .records import Record
from .source import Diagnostics, SourceFile, Span, closest


class Workspace(Record, frozen=False):
    root: str | None = None  # key of the root file
    home_dir: str = ""  # real path of the root file's folder: imports stay inside it
    allow_outside: bool = False
    modules: dict[str, ast.Module] = field(default_factory=dict)  # key: real path
    namespaces: dict[str, dict[str, ast.Decl]] = field(default_factory=dict)
    home: dict[int, str] = field(default_factory=dict)  # id(decl) -> key of its file
    files: dict[tuple[int, int], str] = field(default_factory=dict)  # (device, inode) -> key: hard links are one file
    targets: dict[int, str] = field(default_factory=dict)  # id(import) -> key of the file it loaded


def std_dir() -> str:
    return str(resources.files("netc.specs").joinpath("std"))


@functools.lru_cache(maxsize=1)
def _std_real() -> str:
    """The standard library's folder, symlinks resolved."""
    return os.path.realpath(std_dir())


def display_path(path: str) -> str:
    real = os.path.realpath(path)
    std = _std_real()
    if real.startswith(std + os.sep):
        return "std/" + os.path.relpath(real, std)
    rel = os.path.relpath(real)
    return path if rel.startswith("..") else rel


# O_NONBLOCK: opening a FIFO returns at once (it is then refused as not a regular file)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _real_path(fd: int, path: str) -> str | None:
    """The real path of the file open as ``fd`` (not of whatever ``path`` names by now): from
    /proc on Linux; elsewhere the real path of ``path`` if it still names that same file. None
    if neither tells."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.isabs(real) and not real.endswith(" (deleted)"):
            return real
    except OSError:
        pass
    real = os.path.realpath(path)
    try:
        now, opened = os.stat(real), os.fstat(fd)
    except OSError:
        return None
    return real if (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino) else None


def _read(fd: int, st: os.stat_result, shown: str, diags: Diagnostics, at: Span, what: str) -> SourceFile | None:
    """The text of the open regular file ``fd``, or None after reporting why not: too big for a
    file or for the compilation's budget of spec text (MAX_SOURCE_BYTES, each file once), not
    UTF-8 text. Reads the descriptor, so what is read is the file that was checked. ``what``
    starts the budget's error (`cannot import "x.net"`)."""
    budget = diags.budget
    if st.st_size > MAX_FILE_BYTES:
        diags.error(f"{shown} is larger than {MAX_FILE_BYTES} bytes", at)
        return None
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the file may grow after the size check
    except OSError as e:
        diags.error(f"cannot read {shown}: {e.strerror or e}", at)
        return None
    if len(data) > MAX_FILE_BYTES:
        diags.error(f"{shown} is larger than {MAX_FILE_BYTES} bytes", at)
        return None
    if budget.source_bytes + len(data) > MAX_SOURCE_BYTES:
        diags.error(f"{what}: the spec and its imports pass {MAX_SOURCE_BYTES} bytes together (the limit)", at)
        return None
    budget.source_bytes += len(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        _binary(diags, shown, data, e.start, at)
        return None
    if "\x00" in text:
        _binary(diags, shown, data, data.index(b"\x00"), at)
        return None
    return SourceFile(shown, text)


def _open(path: str, shown: str, diags: Diagnostics, at: Span) -> tuple[int, os.stat_result] | None:
    """``path`` opened for reading, with its status, if it is a regular file; else None after
    reporting why (a directory; a FIFO or a device, which could block or never end)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        if isinstance(e, IsADirectoryError):
            diags.error(f"{shown} is a directory, not a spec file", at)
        else:
            diags.error(f"cannot read {shown}: {e.strerror or e}", at)
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        diags.error(f"{shown} is a directory, not a spec file" if stat.S_ISDIR(st.st_mode)
                    else f"{shown} is not a regular file", at)
        return None
    return fd, st


def _binary(diags, shown, data: bytes, pos: int, at):
    head = data[:pos].decode("utf-8", "replace")
    line = head.count("\n") + 1
    col = pos - (head.rfind("\n") + 1 if "\n" in head else 0) + 1
    src = SourceFile(shown, "")
    diags.error(f"{shown} is not a text file (byte 0x{data[pos]:02x} at offset {pos})",
                at or Span(src, line, col, line, col + 1))


def load(path: str, diags: Diagnostics, allow_outside: bool = False, text: str | None = None) -> Workspace:
    """Read and parse the spec at ``path`` and the files it imports. ``text``: the spec's
    text as an editor holds it (the language server), read instead of the file, which
    need not exist; its imports are read from disk, relative to ``path``."""
    ws = Workspace(home_dir=os.path.dirname(os.path.realpath(path)), allow_outside=allow_outside)
    shown = display_path(path)
    at = Span(SourceFile(shown, ""), 1, 1, 1, 1)
    opened = None if text is not None else _open(path, shown, diags, at)
    if text is not None:
        ws.root = _load_text(text, os.path.realpath(path), shown, ws, diags, at)
    elif opened is not None:
        fd, st = opened
        try:
            ws.root = _load_open(fd, st, _real_path(fd, path) or os.path.realpath(path), shown, ws, diags, [], at,
                                 shown)
        finally:
            os.close(fd)
    for key in ws.modules:
        ws.namespaces[key] = _namespace(key, ws, diags)
    return ws


def _load_text(text: str, real: str, shown: str, ws: Workspace, diags, at) -> str | None:
    """Parse and register the root spec given as text (see :func:`load`), then its imports."""
    budget = diags.budget
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        diags.error(f"{shown} is larger than {MAX_FILE_BYTES} bytes", at)
        return None
    budget.source_bytes += size
    if "\x00" in text:
        diags.error(f"{shown} is not a text file (a NUL character)", at)
        return None
    module = parse(SourceFile(shown, text))
    if not isinstance(module, ast.Module):
        diags.add(module)
        return None
    ws.modules[real] = module
    try:
        st = os.stat(real)
        ws.files[(st.st_dev, st.st_ino)] = real
    except OSError:  # an editor's buffer not saved yet
        pass
    for imp in module.imports:
        _load_import(imp, real, ws, diags, [])
    return real


def _resolve(imp: ast.Import, importer: str) -> str:
    if imp.path.startswith("std/"):
        return os.path.join(std_dir(), imp.path[4:])
    if os.path.isabs(imp.path):
        return imp.path
    return os.path.join(os.path.dirname(importer), imp.path)


def _load_open(fd: int, st: os.stat_result, real: str, shown: str, ws: Workspace, diags,
               stack: list[tuple[str, ast.Import]], at, what: str) -> str | None:
    """Read, parse and register the open file ``fd`` (real path ``real``), then its imports."""
    key = ws.files.get((st.st_dev, st.st_ino), real)
    if key in ws.modules:
        return key
    source = _read(fd, st, shown, diags, at, what)
    if source is None:
        return None
    module = _parse_import(source, key.startswith(_std_real() + os.sep)) if stack else parse(source)
    if not isinstance(module, ast.Module):
        diags.add(module)
        return None
    ws.modules[key] = module
    ws.files[(st.st_dev, st.st_ino)] = key
    for imp in module.imports:
        _load_import(imp, key, ws, diags, stack)
    return key


_PARSED: collections.OrderedDict[SourceFile, ast.Module] = collections.OrderedDict()  # imported files' ASTs
_PARSED_LOCK = threading.Lock()
PARSED_FILES, PARSED_BYTES = 16, 256 * 1024  # the most files kept, and the largest file kept


def _parse_import(source: SourceFile, std: bool):
    """The AST of an imported file, kept for the last PARSED_FILES files of text the same to
    the character (ASTs are immutable): a language server compiles the same ``std/`` files on
    every keystroke, and parsing them was a third of its check of examples/gpt2.net. A file of
    the standard library (``std``) is also kept on disk, for the next process (``netc check``
    in a pre-commit hook): ``parse_cached``."""
    with _PARSED_LOCK:
        module = _PARSED.get(source)
        if module is not None:
            _PARSED.move_to_end(source)
            return module
    module = parse_cached(source) if std else parse(source)
    if isinstance(module, ast.Module) and len(source.text) <= PARSED_BYTES:
        with _PARSED_LOCK:
            _PARSED[source] = module
            while len(_PARSED) > PARSED_FILES:
                _PARSED.popitem(last=False)
    return module


def _outside(imp: ast.Import, key: str, target: str, ws: Workspace) -> str | None:
    """Why an import is refused (None: allowed): it must stay inside the spec's folder, or,
    for the standard library and the files in it, inside ``specs/std``."""
    std = _std_real()
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


def _unusable(path: str) -> str | None:
    """Why a path cannot name a file on this system (None: it can): a NUL, a character the
    file-system encoding cannot write (a lone surrogate), a control character."""
    if "\x00" in path:
        return "a file name cannot hold a NUL character"
    try:
        os.fsencode(path)
    except UnicodeError:
        return "a file name cannot hold a character that the file system cannot encode"
    if not path.isprintable():
        return "a file name in an import cannot hold a control character"
    return None


def _refuse(imp: ast.Import, refused: str, diags) -> None:
    diags.error(f'cannot import "{imp.path}": {refused}', imp.span,
                hint=None if imp.path.startswith("std/") else
                "imports stay inside the folder of the spec being compiled; to allow this one, "
                "pass --allow-imports-outside")


def _load_import(imp: ast.Import, key: str, ws: Workspace, diags, stack) -> None:
    """Load what ``imp`` (in the file ``key``) names. The file is opened once, and the folder
    check is made on the real path of the opened file, which is then read: a symlink swapped
    between a check and a second open cannot bring in a file from outside."""
    bad = _unusable(imp.path)
    if bad:
        diags.error(f'cannot import "{imp.path}": {bad}', imp.span)
        return
    path = _resolve(imp, key)
    refused = _outside(imp, key, os.path.realpath(path), ws)  # before opening anything outside
    if refused:
        _refuse(imp, refused, diags)
        return
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        where = "the standard library" if imp.path.startswith("std/") else display_path(os.path.dirname(key) or ".")
        hint = _close_file(imp.path, path) if diags.budget.hint() else None
        diags.error(f'cannot import "{imp.path}": no such file in {where}', imp.span, hint=hint)
        return
    except OSError as e:
        if isinstance(e, IsADirectoryError):
            diags.error(f"{display_path(path)} is a directory, not a spec file", imp.span)
        else:
            diags.error(f"cannot read {display_path(path)}: {e.strerror or e}", imp.span)
        return
    try:
        st = os.fstat(fd)
        real = _real_path(fd, path)
        refused = "it changed while being opened" if real is None else _outside(imp, key, real, ws)
        if refused:
            _refuse(imp, refused, diags)
            return
        target = ws.files.get((st.st_dev, st.st_ino), real)
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
        if target in ws.modules:
            ws.targets[id(imp)] = target
            return
        if len(stack) >= MAX_IMPORT_DEPTH:
            diags.error(f"imports nest deeper than {MAX_IMPORT_DEPTH} files", imp.span)
            return
        shown = display_path(real)
        if stat.S_ISDIR(st.st_mode):
            diags.error(f"{shown} is a directory, not a spec file", imp.span)
            return
        if not stat.S_ISREG(st.st_mode):
            diags.error(f"{shown} is not a regular file", imp.span)
            return
        loaded = _load_open(fd, st, real, shown, ws, diags, chain, imp.span, f'cannot import "{imp.path}"')
        if loaded is not None:
            ws.targets[id(imp)] = loaded
    finally:
        os.close(fd)


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
    done = {key}  # a file imported twice (`x.net`, `./x.net`, a hard link) brings its names once
    for imp in module.imports:
        target = ws.targets.get(id(imp))  # none for an import that was refused (reported then)
        if target is not None and target not in done:
            done.add(target)
            for decl in ws.modules[target].decls:
                add(decl, target, imp)
    return names
