"""The NumPy kernels' scratch buffers (``_scratch``: reused from call to call) never leave a
kernel: no result is a scratch buffer or a view of one, at any size, the degenerate ones
included (batch 1, one output or input channel, kernel 1, a 1x1 output, groups), where a
transpose or a copy that would normally separate the result from the buffer is a no-op.

Each kernel runs twice on inputs of the same shapes, so the second call reuses whatever the
first left in the cache; the first result must still be torch's numbers afterwards.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from netc.backends.numpy.kernels import KERNELS, closure
from netc.backends.numpy.kernels.conv import _scratch

import netc

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")  # torch's, not ours

CACHE = _scratch.__defaults__[-1]  # the kernels' buffer cache: (shape, dtype) -> array
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = np.abs(want).max()
    return float(np.abs(got - want).max() / scale) if scale else float(np.abs(got - want).max())


def _conv(fn):
    def ref(x, w, b, a):
        kw = {k: v for k, v in a.items() if k not in ("activation",)}
        y = fn(x, w, b, **kw)
        return torch.relu(y) if a.get("activation") == "relu" else y
    return ref


def _pool(fn):
    def ref(x, w, b, a):
        return fn(x, a["kernel"], a.get("stride"), a.get("padding", 0))
    return ref


TORCH = {
    "conv1d": _conv(F.conv1d),
    "conv2d": _conv(F.conv2d),
    "conv_transpose2d": _conv(F.conv_transpose2d),
    "maxpool1d": _pool(F.max_pool1d),
    "maxpool2d": _pool(F.max_pool2d),
    "avgpool1d": _pool(F.avg_pool1d),
    "avgpool2d": _pool(F.avg_pool2d),
    "adaptive_avgpool2d": lambda x, w, b, a: F.adaptive_avg_pool2d(x, a["size"]),
    "global_avgpool": lambda x, w, b, a: x.mean(dim=tuple(range(2, x.ndim))),
}

# (op, x shape, weight shape or None, bias, attributes); conv weights [O, C/groups, *k],
# conv_transpose2d weights [C, O, kh, kw]
CASES = [
    # conv2d by im2col: y [G, O/G, N*positions] is the result's layout when N or O is 1
    ("conv2d", (1, 3, 6, 6), (4, 3, 3, 3), False, {"padding": 1}),
    ("conv2d", (2, 3, 6, 6), (1, 3, 3, 3), False, {"padding": 1}),
    ("conv2d", (1, 3, 6, 6), (1, 3, 3, 3), False, {"padding": 1}),
    ("conv2d", (1, 3, 6, 6), (4, 3, 3, 3), True, {"padding": 1}),
    ("conv2d", (2, 3, 6, 6), (1, 3, 3, 3), True, {}),
    ("conv2d", (1, 3, 6, 6), (4, 3, 3, 3), False, {"padding": 1, "activation": "relu"}),
    ("conv2d", (1, 1, 6, 6), (2, 1, 3, 3), False, {"padding": 1}),  # one input channel
    ("conv2d", (1, 1, 5, 5), (1, 1, 1, 1), False, {}),  # kernel 1, one channel in and out
    ("conv2d", (1, 3, 5, 5), (4, 3, 1, 1), False, {"stride": 2}),
    ("conv2d", (1, 3, 3, 3), (4, 3, 3, 3), False, {}),  # 1x1 output
    ("conv2d", (2, 3, 3, 3), (1, 3, 3, 3), False, {}),
    ("conv2d", (3, 2, 3, 3), (4, 2, 3, 3), False, {}),  # 1x1 output, N and O > 1
    ("conv2d", (1, 4, 6, 6), (4, 2, 3, 3), False, {"padding": 1, "groups": 2}),
    ("conv2d", (2, 4, 6, 6), (4, 1, 3, 3), False, {"padding": 1, "groups": 4}),  # depthwise
    ("conv2d", (1, 4, 6, 6), (4, 1, 3, 3), False, {"padding": 1, "groups": 4}),
    ("conv2d", (1, 2, 9, 9), (3, 2, 3, 3), False, {"stride": 2, "dilation": 2, "padding": 2}),
    ("conv2d", (1, 3, 6, 7), (2, 3, 2, 3), False, {"padding": "same"}),
    # conv2d over rows laid end to end (_conv2d_rows): wide images
    ("conv2d", (1, 2, 8, 80), (3, 2, 3, 3), False, {"padding": 1}),
    ("conv2d", (2, 2, 8, 80), (1, 2, 3, 3), False, {"padding": 1}),
    ("conv2d", (1, 2, 8, 80), (1, 2, 3, 3), True, {"padding": 1}),
    ("conv2d", (1, 3, 40, 64), (2, 3, 3, 3), False, {"padding": 1, "stride": 2}),
    # conv1d
    ("conv1d", (1, 3, 10), (4, 3, 3), False, {"padding": 1}),
    ("conv1d", (2, 3, 10), (1, 3, 3), False, {"padding": 1}),
    ("conv1d", (1, 3, 10), (1, 3, 3), False, {}),
    ("conv1d", (1, 3, 10), (1, 3, 3), True, {"padding": 2, "dilation": 2}),
    ("conv1d", (1, 1, 10), (1, 1, 1), False, {}),
    ("conv1d", (1, 3, 3), (2, 3, 3), False, {}),  # length-1 output
    ("conv1d", (1, 4, 9), (4, 2, 3), False, {"groups": 2, "stride": 2}),
    ("conv1d", (2, 4, 9), (4, 1, 3), False, {"groups": 4, "padding": "same"}),
    # conv_transpose2d
    ("conv_transpose2d", (1, 3, 4, 4), (3, 1, 3, 3), False, {"stride": 2, "padding": 1, "output_padding": 1}),
    ("conv_transpose2d", (2, 3, 4, 4), (3, 1, 3, 3), False, {}),
    ("conv_transpose2d", (1, 1, 3, 3), (1, 2, 2, 2), True, {"stride": 2}),
    ("conv_transpose2d", (1, 1, 1, 1), (1, 1, 1, 1), False, {}),
    ("conv_transpose2d", (1, 2, 3, 3), (2, 4, 3, 3), False, {"padding": 1, "activation": "relu"}),
    # pools, with and without padding (the padded copy is a scratch buffer)
    ("maxpool2d", (1, 1, 6, 6), None, False, {"kernel": 2}),
    ("maxpool2d", (1, 1, 5, 5), None, False, {"kernel": 3, "stride": 1, "padding": 1}),
    ("maxpool2d", (1, 1, 3, 3), None, False, {"kernel": 3}),  # 1x1 output
    ("maxpool2d", (1, 1, 3, 3), None, False, {"kernel": 3, "stride": 2, "padding": 1}),
    ("maxpool2d", (1, 2, 4, 4), None, False, {"kernel": 1}),
    ("maxpool2d", (2, 1, 4, 4), None, False, {"kernel": 1, "stride": 1, "padding": 0}),
    ("maxpool1d", (1, 1, 7), None, False, {"kernel": 3, "stride": 2, "padding": 1}),
    ("maxpool1d", (1, 1, 3), None, False, {"kernel": 3}),
    ("avgpool2d", (1, 1, 6, 6), None, False, {"kernel": 2}),
    ("avgpool2d", (1, 1, 5, 5), None, False, {"kernel": 3, "stride": 1, "padding": 1}),
    ("avgpool2d", (1, 1, 3, 3), None, False, {"kernel": 3}),
    ("avgpool2d", (1, 3, 2, 2), None, False, {"kernel": 2, "padding": 1}),
    ("avgpool1d", (1, 1, 7), None, False, {"kernel": 3, "stride": 2, "padding": 1}),
    ("avgpool1d", (1, 1, 1), None, False, {"kernel": 1}),
    ("adaptive_avgpool2d", (1, 1, 6, 6), None, False, {"size": 2}),
    ("adaptive_avgpool2d", (1, 1, 5, 7), None, False, {"size": (2, 3)}),
    ("adaptive_avgpool2d", (1, 1, 4, 4), None, False, {"size": 1}),
    ("global_avgpool", (1, 1, 4, 4), None, False, {}),
    ("global_avgpool", (1, 1, 1), None, False, {}),
]


def _case_id(case) -> str:
    op, x, w, bias, attrs = case
    return f"{op}-x{'x'.join(map(str, x))}" + (f"-w{'x'.join(map(str, w))}" if w else "") + \
        ("-bias" if bias else "") + "".join(f"-{k}{v}" for k, v in attrs.items())


def _arrays(op, xs, ws, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = None if ws is None else rng.standard_normal(ws).astype(dtype)
    o = None if ws is None else ws[1] if op == "conv_transpose2d" else ws[0]
    b = rng.standard_normal(o).astype(dtype) if bias else None
    return x, w, b


def _run(op, x, w, b, attrs):
    fn = KERNELS[op]
    return fn(x, **attrs) if w is None else fn(x, w, b, **attrs)


def _torch(op, x, w, b, attrs):
    t = (None if a is None else torch.from_numpy(a) for a in (x, w, b))
    return TORCH[op](*t, attrs).numpy()


def _shares_scratch(y: np.ndarray) -> bool:
    return any(np.shares_memory(y, buf) for buf in CACHE.values())


def test_every_kernel_with_scratch_is_covered():
    """A kernel that starts to use the scratch buffers gets cases here too."""
    users = {op for op, fn in KERNELS.items() if any(f.__name__ == "_scratch" for f in closure([fn]))}
    covered = {case[0] for case in CASES}
    assert users <= covered, "cases missing for " + ", ".join(sorted(users - covered))
    assert {op for op in KERNELS if "conv" in op or "pool" in op} <= set(TORCH)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_result_survives_the_next_call(case, dtype):
    """The first result is torch's, owns no scratch memory, and is torch's still after a
    second call of the same shapes (which reuses every buffer the first gave back)."""
    op, xs, ws, bias, attrs = case
    _scratch(None, None)
    x1, w1, b1 = _arrays(op, xs, ws, bias, dtype, 1)
    x2, w2, b2 = _arrays(op, xs, ws, bias, dtype, 2)
    want1, want2 = _torch(op, x1, w1, b1, attrs), _torch(op, x2, w2, b2, attrs)
    y1 = _run(op, x1, w1, b1, attrs)
    assert y1.shape == want1.shape and y1.dtype == dtype
    assert rel_diff(y1, want1) <= TOL[dtype], "first call"
    y2 = _run(op, x2, w2, b2, attrs)
    assert rel_diff(y2, want2) <= TOL[dtype], "second call"
    assert rel_diff(y1, want1) <= TOL[dtype], \
        f"the second call changed the first result: max rel diff {rel_diff(y1, want1):.3g}"
    assert not np.shares_memory(y1, y2)
    assert not any(_shares_scratch(y) for y in (y1, y2)), "a result shares memory with a cached scratch buffer"
    _scratch(None, None)


# -- the same through a whole program: torch against NumPy, as `netc verify` does ----------------

TWO_CONVS = """\
model Conv2dBatch1(x: float[1, 3, 12, 12]) {
    a = x -> conv2d(4, 3, padding=1, bias=false)
    b = a -> conv2d(4, 3, padding=1, bias=false)
    return a + b
}
model Conv2dOneChannel(x: float[N, 2, 12, 12]) {
    a = x -> conv2d(1, 3, padding=1, bias=false)
    b = x -> conv2d(1, 3, padding=1, bias=false)
    return a * b
}
model Conv1dBatch1(x: float[1, 3, 20]) {
    a = x -> conv1d(3, 3, padding=1, bias=false)
    b = a -> conv1d(3, 3, padding=1, bias=false)
    return a + b
}
model Conv1dOneChannel(x: float[N, 2, 20]) {
    a = x -> conv1d(1, 3, padding=1, bias=false)
    b = x -> conv1d(1, 3, padding=1, bias=false)
    return a - b
}
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_bias_free_convolutions_verify(tmp_path, dtype):
    """Two bias-free convolutions of the same shape, both results used: before the fix the
    second overwrote the first (max rel diff 0.87 to 1.71)."""
    from netc.runtime.parity import verify

    path = tmp_path / "two_convs.net"
    path.write_text(TWO_CONVS)
    prog = netc.compile_file(path)
    wrong = []
    for model in prog.models:
        for sizes in ({"N": 1}, {"N": 3}):
            [result] = verify(prog, model, dtype=dtype, sizes=sizes)
            if not result.ok:
                wrong.append(f"{model} {sizes}: max rel diff {result.max_rel:.3g}")
    assert not wrong, "; ".join(wrong)
