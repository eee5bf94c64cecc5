"""The ONNX lowerings, one module per op group (as ``backends/numpy/kernels/``)."""

from . import activation, attention, conv, dense, math, norm, pool, recurrent, shape  # noqa: F401
