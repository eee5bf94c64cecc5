"""Every resource limit of the compiler, in one place (docs/hardening.md lists them).

Each limit is an error that names it; none is a crash, a hang or a traceback. They bound what
an untrusted spec can make netc do: read, recurse, loop, allocate.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import time

# Reading
MAX_FILE_BYTES = 1 << 20  # one spec file
MAX_SOURCE_BYTES = 1 << 20  # all the files of one compilation, each counted once (by identity)
MAX_IMPORT_DEPTH = 32  # files in one chain of imports

# Parsing
MAX_NAME_LENGTH = 100  # characters in a name
MAX_EXPR_DEPTH = 100  # nested expressions (a pipeline's length does not count: it is a loop)

# Values
MAX_INT = 2**63 - 1  # magnitude of a compile-time integer or a concrete size (int64)
MAX_KERNEL_INT = 2**31 - 1  # kernel sizes, strides, paddings, dilations, groups, channels: torch takes 32-bit ints
MAX_SEQUENCE = 10_000  # items in a string or tuple built by `+`
MAX_DIM_TERMS = 64  # terms in a symbolic size (`N + M + 1` has 3)
MAX_RANK = 32  # dims of a tensor
MAX_OUTPUTS = 4096  # tensors one op gives (split)

# Elaboration
MAX_BLOCK_DEPTH = 64  # blocks inside blocks
MAX_REPEAT = 4096  # copies in `Block(...) * n`, and layers of a recurrent op
MAX_NODES = 20_000  # nodes of one compilation: every model and cell together (20,000 take 2-3 s of
# elaboration and checking with symbolic sizes; 50,000 took 8-9.5 s for 4096 ConvNeXt blocks)
DEFAULT_MAX_PARAMS = 10_000_000_000  # parameters of one model (`--max-params`)

# Drawing (netc render)
MAX_DRAWN_BOXES = 2000  # boxes in one drawing: past that, graphviz's layout takes minutes
DOT_TIMEOUT = 10  # seconds the `dot` program may run (the Python API's render)
RENDER_TIMEOUT = 10  # seconds for all of `netc render`, from the process's start: dot gets what is left
STOP_MARGIN = 2.0  # seconds of a deadline kept back to stop the work, print the error and exit (Python's exit alone: 0.2 s idle, 1 s loaded)

# Running (netc run / verify --max-time)
DEFAULT_MAX_TIME = 300  # seconds for all of `netc run` or `netc verify`, from the process's start
MAX_MACS_PER_S = 10**13  # faster than any CPU (a 64-core AVX-512 server peaks near 2.5e12 fp32 MAC/s)

# Diagnostics: the first MAX_ERRORS are reported (and netc stops at the next), and only the
# first MAX_HINTS of a compilation search for a "did you mean"
MAX_ERRORS = 1000
MAX_HINTS = 100


class Budget:
    """What one compilation has spent, all models and files together: the limits above that
    count (nodes, bytes of spec text, "did you mean" searches) are checked against it, so that
    many models or many files cannot multiply them."""

    def __init__(self):
        self.nodes = 0  # nodes added to any graph (models and cells)
        self.source_bytes = 0  # bytes of spec text read, each file once
        self.hints = 0  # "did you mean" searches made

    def hint(self) -> bool:
        """True (and counted) while the compilation may still search for a "did you mean"."""
        if self.hints >= MAX_HINTS:
            return False
        self.hints += 1
        return True


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector paused for the block, and on again after if it was
    on. Reference counting still frees every object that is not part of a cycle."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def gc_paused(fn):
    """``fn`` run with the collector paused (:func:`collector_paused`), as mypy runs its
    build: the compiler's objects all live until a stage returns, and each full collection
    walks the whole heap, so with the collector on a stage's time would grow faster than the
    model (about 1.5x more per node at 50,000 nodes, docs/performance.md)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with collector_paused():
            return fn(*args, **kwargs)

    return run


_IMPORTED = time.monotonic()


def process_started() -> float:
    """When this process started, on the ``time.monotonic()`` clock: read from ``/proc`` on
    Linux (so the interpreter's start and netc's imports count), else when this module was
    imported."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rpartition(")")[2].split()[19])  # field 22, starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _IMPORTED
    return time.monotonic() - age if 0 <= age < time.monotonic() - _IMPORTED + 60 else _IMPORTED


class Deadline:
    """A wall-clock bound for a whole command: ``seconds`` from ``start`` (default: the
    process's start), so that every step (parsing, elaboration, a subprocess) shares it."""

    def __init__(self, seconds: float, start: float | None = None):
        self.seconds = seconds
        self.start = process_started() if start is None else start

    def left(self) -> float:
        """Seconds left before the deadline, less STOP_MARGIN (never negative)."""
        return max(0.0, self.start + self.seconds - STOP_MARGIN - time.monotonic())

    def elapsed(self) -> float:
        return time.monotonic() - self.start
