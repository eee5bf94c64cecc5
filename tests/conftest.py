"""Suite-wide settings.

``NETC_VERIFY_IR=1``: every ``optimize`` run by a test (through ``prog.optimized``,
``to_torch(opt=2)``, the CLI's ``-O``, and in the subprocesses tests start, which inherit
it) verifies the graph IR before the passes and after each one, so a pass that breaks an
invariant fails the test that ran it with an ``IRError`` naming the pass.
"""

import os

import pytest

os.environ["NETC_VERIFY_IR"] = "1"


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (tests/browser.py) for every browser test a worker runs."""
    from browser import close, launch

    pw, b = launch()
    yield b
    close(pw, b)
