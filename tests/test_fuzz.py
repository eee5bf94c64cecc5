"""Fuzzing netc (CI-sized): thousands of random and mutated specs, none of which may make
``netc check`` crash, hang, print a traceback or an internal error; whatever it accepts, the
torch and NumPy backends build, run and agree on. See ``tests/fuzzing.py`` for the
generators and the invariants, and docs/hardening.md for the long run.

Deterministic (``derandomize=True``). Scale it with ``NETC_FUZZ_EXAMPLES`` (the total number
of inputs of the invariant tests, default 5000) and explore other inputs with
``NETC_FUZZ_SEED``::

    NETC_FUZZ_EXAMPLES=100000 NETC_FUZZ_SEED=7 .venv/bin/python -m pytest tests/test_fuzz.py

(``tests/fuzz_long.py`` runs the long campaign and keeps going after a failure.)
"""

from __future__ import annotations

import os
from pathlib import Path

import fuzzing
import pytest
from hypothesis import HealthCheck, given, seed, settings

TOTAL = int(os.environ.get("NETC_FUZZ_EXAMPLES", "5000"))
SEED = os.environ.get("NETC_FUZZ_SEED")
BACKEND_SPECS = max(300 * TOTAL // 5000, 20)  # accepted generated specs run through both backends


def fuzz_settings(n: int):
    def wrap(f):
        f = settings(max_examples=n, deadline=None, database=None, derandomize=SEED is None,
                     suppress_health_check=list(HealthCheck), print_blob=True)(f)
        return seed(int(SEED))(f) if SEED is not None else f
    return wrap


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    os.environ.setdefault("NETC_CACHE", str(tmp_path_factory.mktemp("cache")))
    return tmp_path_factory.mktemp("fuzz")


def test_generated_and_perturbed_specs_keep_the_invariants(workdir):
    """Half the inputs: generated specs (a third as generated, the rest perturbed)."""
    path = workdir / "generated.net"

    @fuzz_settings(TOTAL // 2)
    @given(fuzzing.specs() | fuzzing.perturbed_specs() | fuzzing.perturbed_specs())
    def run(text):
        fuzzing.check_invariants(path, text)

    run()


def test_mutated_examples_keep_the_invariants(workdir):
    """The other half: byte and token mutations of every examples/*.net."""
    path = workdir / "mutated.net"

    @fuzz_settings(TOTAL - TOTAL // 2)
    @given(fuzzing.mutated_examples())
    def run(data):
        fuzzing.check_invariants(path, data)

    run()


def test_backends_agree_on_accepted_generated_specs(workdir):
    """Every accepted generated spec builds in torch and NumPy, runs on its declared shapes,
    and both agree (float32 rel 1e-4, see fuzzing.check_backends), at -O0 to -O3 (the
    optimised programs with converted weights agree with -O0)."""
    path = workdir / "backends.net"
    done = {"specs": 0, "models": 0}

    @fuzz_settings(BACKEND_SPECS * 10 // 9)  # about 90% of generated specs are accepted
    @given(fuzzing.specs())
    def run(text):
        if fuzzing.check_invariants(path, text) == 0:
            done["models"] += fuzzing.check_backends(path, levels=(0, 1, 2, 3))
            done["specs"] += 1

    run()
    assert done["specs"] >= BACKEND_SPECS * 0.8, done


# -- what the fuzzer found --------------------------------------------------------------------
# Each input made netc fail (traceback, internal error, hang, or backends that did not build
# or agree) before the fix named beside it. Error cases are golden diagnostics too
# (tests/diagnostics/fuzz_*.net).

REGRESSIONS = {
    # a model that loses a name clash was still elaborated: KeyError (compiler/pipeline.py)
    "duplicate model and pair": (("block print(x: [N, F]) {\n    return x\n}\n"
                                 "model print(a: float[N, 4]) {\n    return a\n}\n"
                                 "model M(a: float[N, 4]) {\n    return a\n}\n"
                                 "pair P {\n    encoder: M\n    decoder: print\n}\n"), 1),
    "duplicate const": ("const A = 1\nconst A = 2\n", 1),
    # a cell input pattern of the wrong rank: the note looked in the wrong graph (calls.py)
    "cell input pattern rank": (("cell C(x: [N], h: [N, H]) -> [N, H] {\n    return h\n}\n"
                                "model M(x: float[N, T, 4]) {\n    return x -> scan(C, hidden=3)\n}\n"), 1),
    # a huge layer count looped for ever computing the weights (recurrent.py)
    "lstm layers 10**29": (("model M(x: float[N, 4, 4]) {\n    s, _ = x -> lstm(3, layers=100000000000000000)\n"
                           "    return s\n}\n"), 1),
    "integer literal past int64": ("model M(x: float[N, 4]) {\n    return x -> linear(123456789012345678901234567890)\n}\n",
                                   1),
    # sizes 0 and -1 in model inputs were accepted; torch then failed to build or run
    "negative input size": ("model M(x: float[N, -1]) {\n    return x -> linear(8)\n}\n", 1),
    "zero input size": ("model M(x: float[N, 0, 8]) {\n    return x -> avgpool1d(2)\n}\n", 1),
    # the AST was hashed field by field: a long pipeline overflowed the stack (ast.py, elaborate.py)
    "pipeline of 3000 stages": ("model M(x: float[N, 4]) {\n    return x" + " -> relu" * 3000 + "\n}\n", 0),
    # 4096 transformer layers: 45,000 nodes took over 5 s of CPU (the node limit was 200,000);
    # now within the limit of 20,000 nodes, and over the parameter budget
    "transformer layers * 4096": (('import "std/transformer.net"\n'
                                  "model T(src: float[N, S, 512]) {\n"
                                  "    return src -> EncoderLayer(8, 2048) * 4096 -> layernorm\n}\n"), 1),
    # 4096 ConvNeXt blocks with symbolic H, W (a mutated example, CI of 2026-12-04): 50,000 nodes
    # took 8-9.5 s of CPU before the node limit stopped them; the limit is now 20,000 nodes
    "convnext blocks * 4096": ((Path(__file__).parent.parent / "examples" / "convnext_tiny.net").read_text()
                               .replace("-> CNBlock * depth3", "-> CNBlock * 4096"), 1),
    # VisitError from lark's recursive transformer: internal error (parse.py)
    "nested if 600 deep": ("model M(x: float[N, 4]) {\n    return " + "if true then " * 600 + "x"
                           + " else x" * 600 + "\n}\n", 1),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_fuzzer_regressions(name, workdir):
    text, want = REGRESSIONS[name]
    assert fuzzing.check_invariants(workdir / "regression.net", text) == want


# Accepted specs whose torch module did not build, or whose backends disagreed.
BACKEND_REGRESSIONS = {
    # `__ = x -> embedding(...)` named the layer `___1`: Python mangled `self.___1` in the class
    # body, so the state_dict key was `_Encoder___1.weight` (values.py Frame.fresh)
    "dunder layer name": "model Encoder(__: int[N, 3]) {\n    __ = __ -> embedding(8, 2) -> gelu\n    return __\n}\n",
    # a block or cell named `__Cell` was mangled where another class used it (torch/emit.py)
    "dunder class names": ("block __Blk(x: [N, F], __k: int = 3, _modules: int = 2) {\n"
                           "    return x -> linear(__k) -> linear(_modules) -> linear(F)\n}\n"
                           "cell __Cell(x: [N, I], h: [N, H]) -> [N, H] {\n"
                           "    return tanh(linear(x, H) + linear(h, H, bias=false))\n}\n"
                           "model __Net(__x: float[N, 4], s: float[N, 3, 2]) {\n"
                           "    __y = __x -> __Blk(__k=2, _modules=3) -> __Blk(__k=5, _modules=4)\n"
                           "    ___ = s -> scan(__Cell, hidden=2)\n    return __y, ___\n}\n"),
    # one cell run by two scans of other sizes shared a class built without its sizes (torch/emit.py)
    "one cell, two sizes": ("cell Elman(x: [N, I], h: [N, H]) -> [N, H] {\n"
                            "    return sigmoid(linear(x, H) + linear(h, H, bias=false))\n}\n"
                            "model M(t: int[N, 2]) {\n    a = t -> embedding(4, 6) -> scan(Elman, hidden=1)\n"
                            "    return a -> scan(Elman, hidden=1)\n}\n"),
}


@pytest.mark.parametrize("name", sorted(BACKEND_REGRESSIONS))
def test_fuzzer_backend_regressions(name, workdir):
    path = workdir / "backend_regression.net"
    assert fuzzing.check_invariants(path, BACKEND_REGRESSIONS[name]) == 0
    assert fuzzing.check_backends(path) >= 1


def test_time_limit_counts_the_checking_threads_cpu_time():
    """The per-input limit: a busy loop on this thread is stopped at its CPU budget, while
    another thread of the process spinning the whole time (torch's OpenMP pool after an
    earlier test) does not count against a check that sleeps past it; real time has its own
    limit."""
    import threading
    import time

    start = time.perf_counter()
    with pytest.raises(fuzzing.Hang, match="0.3 s of CPU time"), fuzzing.time_limit(0.3):
        while True:
            pass
    assert time.perf_counter() - start < 3

    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)])
    spinner.start()
    try:
        with fuzzing.time_limit(0.3):
            time.sleep(0.8)  # the spinner burns ~0.8 s of the process's CPU meanwhile
    finally:
        stop.set()
        spinner.join()

    with pytest.raises(fuzzing.Hang, match="within 0.5 s"), fuzzing.time_limit(5, wall=0.5):
        time.sleep(3)
