"""Suite-wide settings.

``NETC_VERIFY_IR=1``: every ``optimize`` run by a test (through ``prog.optimized``,
``to_torch(opt=2)``, the CLI's ``-O``, and in the subprocesses tests start, which inherit
it) verifies the graph IR before the passes and after each one, so a pass that breaks an
invariant fails the test that ran it with an ``IRError`` naming the pass.
"""

import os

os.environ["NETC_VERIFY_IR"] = "1"
