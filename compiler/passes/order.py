"""The pipeline, in order: importing this module registers every pass.

-O1 (safe clean-ups): fold_constants, remove_noops, fold_reshapes, eliminate_common_subexpressions
-O2 (inference): remove_dropout, fold_batchnorm, fuse_layernorm, fuse_attention,
                 fuse_activation, fuse_elementwise, use_channels_last
-O3 (-O2 and the rewrites not shown to pay off here): fuse_qkv
last: eliminate_dead_code
"""

# isort: off
from . import fold_constants  # noqa: F401
from . import remove_noops  # noqa: F401
from . import fold_reshapes  # noqa: F401
from . import eliminate_common_subexpressions  # noqa: F401
from . import remove_dropout  # noqa: F401
from . import fold_batchnorm  # noqa: F401
from . import fuse_layernorm  # noqa: F401
from . import fuse_attention  # noqa: F401
from . import fuse_qkv  # noqa: F401
from . import fuse_activation  # noqa: F401
from . import fuse_elementwise  # noqa: F401
from . import use_channels_last  # noqa: F401
from . import eliminate_dead_code  # noqa: F401
# isort: on
