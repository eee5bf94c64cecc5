"""netc: a compiler for neural-network specs.

    >>> import netc
    >>> prog = netc.compile_file("examples/lenet.net")
    >>> prog.summary("LeNet").params
    421642
"""

from netc.compiler.pipeline import UsageError
from netc.compiler.source import SpecError
from netc.program import Program, compile_file

__all__ = ["Program", "SpecError", "UsageError", "compile_file"]
__version__ = "0.1.0"
