"""Modules from ``Program.to_torch`` that ``torch.save(model)`` can write and
``torch.load(path, weights_only=False)`` can read back in a fresh process.

``to_torch`` imports the emitted source as a module named after its hash
(``netc_generated_ResNet18_<sha256[:16]>``, ``torch_modules.load_source``), which no other
process can import. So every class of that module pickles its instances as a call of
:func:`rebuild` with the emitted source itself (one copy per pickle: pickle stores a string
once however often it is referenced) and the class's name, followed by the module's own
state (``nn.Module.__getstate__``: parameters, buffers, submodules, training flag, hooks).
Unpickling imports ``netc.runtime.saved_modules`` (a stable, importable name), loads the
source as ``to_torch`` does (under the same hash-derived name, so a process that already has
the module reuses it and ``isinstance`` holds) and restores the state.

Nothing depends on the cache folder or on the spec: the file carries its own source, so it
loads on another machine, after the cache is cleared, and after the spec changed. It needs
netc and torch installed where it is loaded. As any ``weights_only=False`` load it runs code
from the file: load only files you trust (``torch.save(model.state_dict())`` with
``weights_only=True`` stays the way to share weights).
"""

from __future__ import annotations

import sys
from types import ModuleType

from .torch_modules import load_source

_SOURCE = "__netc_source__"
_STEM = "__netc_stem__"


def load_picklable(source: str, stem: str) -> ModuleType:
    """``load_source(source, stem)`` with every class it defines pickled by :func:`rebuild`."""
    module = load_source(source, stem=stem)
    if getattr(module, _SOURCE, None) is None:  # (setting it twice from two threads is harmless)
        setattr(module, _STEM, stem)
        for obj in list(vars(module).values()):
            if isinstance(obj, type) and obj.__module__ == module.__name__ and hasattr(obj, "__setstate__"):
                obj.__reduce_ex__ = _reduce_ex
        setattr(module, _SOURCE, source)
    return module


def _reduce_ex(self, protocol):
    module = sys.modules[type(self).__module__]
    source, stem = getattr(module, _SOURCE), getattr(module, _STEM)
    return rebuild, (source, stem, type(self).__qualname__), self.__getstate__()


def rebuild(source: str, stem: str, qualname: str):
    """An empty instance of class ``qualname`` of the emitted ``source``; pickle then restores
    its state with ``__setstate__``."""
    cls = getattr(load_picklable(source, stem), qualname)
    return cls.__new__(cls)
