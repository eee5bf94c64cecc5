"""What the torch and NumPy emitters share: Python literals, fresh names, spec file names as
generated files show them, and statement layout.

Nothing a spec says reaches generated code except through here or as a validated name:

* :func:`literal` prints a value as a Python literal (strings escaped, non-finite floats as
  ``float("inf")``); both backends print a value identically.
* :class:`Names` hands out identifiers that are unique in one namespace and never a keyword or
  builtin, from any base text.
* :func:`file_name` is a spec's file name as a header comment or docstring may show it.
* :func:`stmt` lays out one statement as ``ruff format`` would (88 columns).
* :func:`write_atomic` writes a generated file whole or not at all.

The toolkit imports nothing from the compiler: backends import it, not the other way round.
"""

from __future__ import annotations

import builtins
import contextlib
import keyword
import math
import numbers
import os
import re
import secrets
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WIDTH = 88  # code, as ruff formats it

# Never a generated name: Python's keywords and builtins.
PYTHON_NAMES = frozenset(keyword.kwlist) | frozenset(dir(builtins))


# -- literals ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Raw:
    """Code text that stands for a value as it is (a size computed from input shapes)."""

    text: str


def literal(v) -> str:
    """A Python literal for ``v``: None, a bool, an int, a float (``float("nan")`` when not
    finite), a string (double-quoted, escaped) or a tuple of these; a :class:`Raw` as its text.
    Anything else is a TypeError: no other value reaches generated code."""
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, float):
        text = float.__repr__(v)  # (a NumPy float's repr names its type)
        return text if math.isfinite(v) else f'float("{text}")'
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, tuple):
        return tuple_code([literal(x) for x in v])
    if type(v).__module__ == "numpy" and hasattr(v, "item"):  # a NumPy scalar: its Python value
        return literal(v.item())
    raise TypeError(f"no Python literal for {type(v).__name__} {v!r}")


def tuple_code(items: Sequence[str]) -> str:
    """A tuple display of code items: ``(a,)`` for one, ``(a, b)`` for more."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '\\"':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:  # a line break, a control or a non-ASCII character: its escape
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return '"' + "".join(out) + '"'


# -- names ------------------------------------------------------------------------------------

def identifier(text: str) -> str:
    """``text`` as an ASCII identifier: other characters become ``_``; a leading digit (or
    nothing at all) gets a ``_`` in front."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return name if name[:1].isalpha() or name[:1] == "_" else "_" + name


class Names:
    """The names in use in one namespace, and fresh ones.

    ``fresh(base)`` gives ``base`` itself when free, else the first free of ``base_`` (with
    ``trailing``), ``base{sep}{start}``, ``base{sep}{start + 1}``… and takes it. ``taken`` are
    names in use already; Python's keywords and builtins always are.
    """

    def __init__(self, taken: Iterable[str] = (), *, sep: str = "_", start: int = 1, trailing: bool = False):
        self.taken: set[str] = set(PYTHON_NAMES) | set(taken)
        self.sep, self.start, self.trailing = sep, start, trailing

    def fresh(self, base: str) -> str:
        base = identifier(base)
        name, k = base, self.start
        if name in self.taken and self.trailing:
            name = base + "_"
        while name in self.taken:
            name, k = f"{base}{self.sep}{k}", k + 1
        self.taken.add(name)
        return name

    def take(self, base: str, free=lambda name: False) -> str | None:
        """``base`` itself (as an identifier): when no one has it, or when ``free(name)`` says
        its holder may give it up (a variable whose value nothing reads any more); else None."""
        name = identifier(base)
        if name not in self.taken:
            self.taken.add(name)
            return name
        return name if free(name) else None


# -- file names -------------------------------------------------------------------------------

def file_name(path: str) -> str:
    """A spec's file name as headers, docstrings and comments show it: letters, digits and
    ``_.+-`` only, so no quote, backslash or line break lets a file name write code."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", os.path.basename(path))


# -- layout -----------------------------------------------------------------------------------

def stmt(indent: str, code: str, comment: str = "", comment_width: int = WIDTH) -> list[str]:
    """One statement: its comment trailing when the code fits on one line and the whole line
    within ``comment_width``, else on the line above; the code split as :func:`split` does."""
    lead = len(code) - len(code.lstrip(" "))
    indent, code = indent + code[:lead], code[lead:]
    if comment and len(indent + code) <= WIDTH and len(indent + code + "  # " + comment) <= comment_width:
        return [f"{indent}{code}  # {comment}"]
    lines = [f"{indent}# {comment}"] if comment else []
    return lines + split(indent, code)


def split(indent: str, code: str) -> list[str]:
    """Black's right-hand split: the last bracket's body on its own line, else one item a line."""
    colon = ":" if code.endswith("):") else ""
    code = code[:-1] if colon else code
    if len(indent + code + colon) <= WIDTH or code[-1] not in ")]":
        return [indent + code + colon]
    lhs, eq, rhs = code.partition(" = ")
    if eq and not colon and lhs.isidentifier() and _top_level(rhs, " if ") and len(indent + "    " + rhs) <= WIDTH:
        return [f"{indent}{lhs} = (", f"{indent}    {rhs}", f"{indent})"]  # a conditional: ruff wraps it whole
    open_at = _matching_open(code)
    if open_at is None or open_at == len(code) - 2:
        return [indent + code + colon]
    head, body, tail = code[: open_at + 1], code[open_at + 1: -1], code[-1] + colon
    inner = indent + "    "
    if len(inner + body) <= WIDTH and "\n" not in body:
        return [indent + head, inner + body, indent + tail]
    lines = [indent + head]
    for item in _top_level_items(body):
        lines += split(inner, item + ",")
    return lines + [indent + tail]


def _quote(code: str, i: int) -> bool:
    """Whether ``code[i]`` is a double quote that opens or closes a string (not escaped)."""
    if code[i] != '"':
        return False
    k = i
    while k > 0 and code[k - 1] == "\\":
        k -= 1
    return (i - k) % 2 == 0


def _matching_open(code: str) -> int | None:
    depth, in_str = 0, False
    for i in range(len(code) - 1, -1, -1):
        if _quote(code, i):
            in_str = not in_str
        elif in_str:
            continue
        elif code[i] in ")]":
            depth += 1
        elif code[i] in "([":
            depth -= 1
            if depth == 0:
                return i
    return None


def _top_level(code: str, token: str) -> bool:
    """Whether ``token`` occurs in ``code`` outside brackets and strings."""
    depth, in_str = 0, False
    for i, ch in enumerate(code):
        if _quote(code, i):
            in_str = not in_str
        elif not in_str:
            depth += (ch in "([") - (ch in ")]")
            if depth == 0 and code.startswith(token, i):
                return True
    return False


def _top_level_items(body: str) -> list[str]:
    items, depth, cur, in_str = [], 0, "", False
    for i, ch in enumerate(body):
        if _quote(body, i):
            in_str = not in_str
        if not in_str:
            depth += (ch in "([") - (ch in ")]")
            if ch == "," and depth == 0:
                items.append(cur.strip())
                cur = ""
                continue
        cur += ch
    if cur.strip():
        items.append(cur.strip())
    return items


# -- writing files ---------------------------------------------------------------------------

def write_atomic(path: str, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: into a new file beside it (the mode the
    old file had, else the umask's), renamed over it once written, so a failed write (a full
    disk, an interrupt) leaves the old file as it was and a reader never sees half a file. A
    symbolic link is written through; a path that is not a regular file (``/dev/null``, a
    pipe) is written in place, as there is nothing to rename over. Raises OSError."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = os.path.realpath(path)
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        with open(path, "wb") as f:
            f.write(data)
        return
    folder, base = os.path.split(path)
    while True:
        tmp = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # (the umask applies)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if old is not None:
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
