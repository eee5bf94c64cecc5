"""Every resource limit of the compiler, in one place (docs/hardening.md lists them).

Each limit is an error that names it; none is a crash, a hang or a traceback. They bound what
an untrusted spec can make netc do: read, recurse, loop, allocate.
"""

from __future__ import annotations

import functools
import gc

# Reading
MAX_FILE_BYTES = 1 << 20  # one spec file
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
MAX_NODES = 50_000  # nodes in one model's graph (elaborating 50,000 takes about 3 s)
DEFAULT_MAX_PARAMS = 10_000_000_000  # parameters of one model (`--max-params`)

# Diagnostics: every error is reported, but only the first ones search for a "did you mean"
MAX_HINTS = 100


def gc_paused(fn):
    """``fn`` run with Python's cyclic garbage collector paused, as mypy runs its build: the
    compiler's objects all live until a stage returns, and each full collection walks the
    whole heap, so with the collector on a stage's time would grow faster than the model
    (about 1.5x more per node at 50,000 nodes, docs/performance.md). Reference counting still
    frees every object that is not part of a cycle; the collector resumes at the end."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return run
