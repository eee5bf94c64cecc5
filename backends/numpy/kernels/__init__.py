"""The NumPy reference kernels: one table (:data:`KERNELS`) keyed by op name.

Conventions the emitter relies on (it reads each kernel's signature):

* tensor inputs come first, positionally, in the node's input order (``*xs`` takes all);
* a parameter named like one of the op's weights (``weight``, ``bias``, ``running_mean``,
  ``in_proj_weight``, ``out_proj_weight`` for ``out_proj.weight``...) receives that weight,
  or None when the layer has none (``bias=false``);
* ``weights`` and ``prefix`` receive the weight dict and the layer's name prefix, for ops
  with many weights (``lstm``: ``weight_ih_l0``...) and for ``scan``, whose ``cell`` is the
  generated cell function;
* any other parameter is the op attribute of that name.

Kernels keep the dtype of their inputs (float32 or float64) and run eval-mode semantics.
"""

from . import activation, attention, conv, dense, math, norm, pool, random, recurrent, shape  # noqa: F401
from ._table import KERNELS, ORDER, closure, helper, kernel, source
from .activation import FUSED_ACTIVATIONS
from .math import FUSED_STEPS

__all__ = ["FUSED_ACTIVATIONS", "FUSED_STEPS", "KERNELS", "ORDER", "closure", "helper", "kernel", "source"]
