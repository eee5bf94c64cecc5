"""The pipeline, in order: importing this module registers every pass.

-O1 (safe clean-ups): fold_constants, remove_noops, fold_reshapes, eliminate_common_subexpressions
-O2 (inference): remove_dropout, fold_batchnorm, fuse_layernorm, fuse_attention, fuse_qkv,
                 fuse_activation, fuse_elementwise
last: eliminate_dead_code
"""

# isort: off
from . import eliminate_dead_code  # noqa: F401
# isort: on
