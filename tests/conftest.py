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
from pathlib import Path

os.environ["NETC_VERIFY_IR"] = "1"
os.environ["NETC_LAYOUT_COSTS"] = str(Path(__file__).resolve().parent / "fixtures" / "layout_costs_always.json")
