"""The built-in ops, one module per group; importing this package registers them all."""

from . import activation, attention, conv, dense, extend, index, math, norm, pool, recurrent, shape

__all__ = ["activation", "attention", "conv", "dense", "extend", "index", "math", "norm", "pool", "recurrent",
           "shape"]
