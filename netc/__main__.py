"""``python -m netc``: the netc command line."""

import sys

from netc.cli import main

sys.exit(main())
