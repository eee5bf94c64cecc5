"""Loading emitted PyTorch source as a Python module, without executing spec text.

The source is written to a cache file named by its hash and imported from there, so
tracebacks, ``inspect`` and ``torch.compile`` see real source lines.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from types import ModuleType


def cache_dir(kind: str = "torch") -> str:
    base = os.environ.get("NETC_CACHE") or os.path.join(tempfile.gettempdir(), f"netc-{os.getuid()}")
    path = os.path.join(base, kind)
    os.makedirs(path, exist_ok=True)
    return path


def load_source(source: str, stem: str = "netc_model", kind: str = "torch") -> ModuleType:
    """Import generated source as a module (cached by content, under ``kind``: torch, numpy)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    name = f"netc_generated_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(cache_dir(kind), name + ".py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
