"""Loading emitted PyTorch source as a Python module, without executing spec text.

The source is written to a cache file named by its hash and imported from there, so
tracebacks, ``inspect`` and ``torch.compile`` see real source lines.

Safe from many threads and processes at once: a cache file is written to a temporary file
in the same folder and renamed over its name (a reader sees the whole file or none), a file
whose text is not the source (a write cut short by an older netc) is written again, and each
module is imported once per process, under a lock, and published in ``sys.modules`` only
once it has run (every caller gets the same module, never a half-run one).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from types import ModuleType

from netc.backends.emit_kit import write_atomic

_LOCK = threading.Lock()  # one import at a time in this process


def cache_dir(kind: str = "torch") -> str:
    base = os.environ.get("NETC_CACHE") or os.path.join(tempfile.gettempdir(), f"netc-{os.getuid()}")
    path = os.path.join(base, kind)
    os.makedirs(path, exist_ok=True)
    return path


def load_source(source: str, stem: str = "netc_model", kind: str = "torch") -> ModuleType:
    """Import generated source as a module (cached by content, under ``kind``: torch, numpy)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    name = f"netc_generated_{stem}_{digest}"
    with _LOCK:
        if name in sys.modules:
            return sys.modules[name]
        path = os.path.join(cache_dir(kind), name + ".py")
        _write(path, source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # (as an import does: the code may look itself up while it runs)
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


def _write(path: str, text: str) -> None:
    """Make the cache file ``path`` hold ``text``: left alone when it already does."""
    with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as f:
        if f.read() == text:
            return
    write_atomic(path, text)
