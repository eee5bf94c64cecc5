"""Suite-wide settings.

``NETC_VERIFY_IR=1``: every ``optimize`` run by a test (through ``prog.optimized``,
``to_torch(opt=2)``, the CLI's ``-O``, and in the subprocesses tests start, which inherit
it) verifies the graph IR before the passes and after each one, so a pass that breaks an
invariant fails the test that ran it with an ``IRError`` naming the pass.

``NETC_LAYOUT_COSTS``: -O2's use_channels_last decides with a table of measured times; the
checked-in one depends on the machine it was measured on, and turns the pass off for most
small test models. The suite runs it on a fixed table in which channels-last always wins,
so every -O2 test exercises the layout rewrite; the tests of the decisions themselves
(``test_layout_costs.py``) read the checked-in table and other fixed ones.
"""

import os
import sys
from pathlib import Path

import pytest

os.environ["NETC_VERIFY_IR"] = "1"
os.environ["NETC_LAYOUT_COSTS"] = str(Path(__file__).resolve().parent / "fixtures" / "layout_costs_always.json")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (tests/browser.py) for every browser test a worker runs."""
    from browser import close, launch

    pw, b = launch()
    yield b
    close(pw, b)


# Under pytest-xdist (``make test``: -n 2 on two cores) each worker computes on one thread:
# torch's intra-op pool and the BLAS pools default to one thread per core, so two workers
# would run four busy threads on two cores, and OpenMP's spinning barriers burn CPU time
# waiting for the thread that is not scheduled. Set before torch or numpy is imported (the
# subprocesses tests start inherit it); a user's own setting wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    if "torch" in sys.modules:  # imported by a plugin before this file: set it directly
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


# ``NETC_CPU_PROFILE=DIR``: each pytest process (every xdist worker) appends one JSON line per
# test to DIR/cpu-<worker>.jsonl with the CPU seconds of setup+call+teardown: the process's
# own (all its threads, ``RUSAGE_SELF``) and its waited-for subprocesses' (``RUSAGE_CHILDREN``).
# ``python tests/cpu_report.py DIR`` prints the totals per file and the heaviest tests.
if os.environ.get("NETC_CPU_PROFILE"):
    import json
    import resource

    def _cpu():
        s = resource.getrusage(resource.RUSAGE_SELF)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        self0, child0 = _cpu()
        yield
        self1, child1 = _cpu()
        out = os.environ["NETC_CPU_PROFILE"]
        os.makedirs(out, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(os.path.join(out, f"cpu-{worker}.jsonl"), "a") as f:
            f.write(json.dumps({"test": item.nodeid, "self": self1 - self0,
                                "children": child1 - child0}) + "\n")
