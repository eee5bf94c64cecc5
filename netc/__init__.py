"""netc: a compiler for neural-network specs.

    >>> import netc
    >>> prog = netc.compile_file("examples/lenet.net")
    >>> prog.summary("LeNet").params
    421642
"""

from netc.compiler.limits import collector_paused

# The imports below make tens of thousands of objects that live as long as the process (op
# schemas, the libraries' modules); the collections their allocations trigger would walk
# them all again and again (7 ms of `netc check`'s 80 over its libraries' import). The
# collector is paused while they load and is as it was after, as compile_file pauses it for
# a stage.
with collector_paused():
    from netc.compiler.pipeline import UsageError
    from netc.compiler.source import SpecError
    from netc.program import Program, compile_file


def import_onnx(model, spec=None, weights=None, name=None, dynamic=None):
    """An ONNX model (path, bytes or ModelProto) as a spec: see ``netc.frontends.api``."""
    from netc.frontends.api import import_onnx as run

    return run(model, spec, weights, name, dynamic)


def import_torch(module, example_inputs, spec=None, weights=None, name=None, dynamic=None):
    """An ``nn.Module`` as a spec, exported to ONNX on ``example_inputs``: see ``netc.frontends.api``."""
    from netc.frontends.api import import_torch as run

    return run(module, example_inputs, spec, weights, name, dynamic)


__all__ = ["Program", "SpecError", "UsageError", "compile_file", "import_onnx", "import_torch"]
__version__ = "0.1.0"
