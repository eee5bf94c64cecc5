"""The ONNX lowerings, one module per op group (as ``backends/numpy/kernels/``)."""

from . import activation, attention, conv, dense, extend, index, math, norm, pool, random, recurrent, shape  # noqa: F401
