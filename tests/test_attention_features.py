"""Attention as real models use it: padding and arbitrary masks, dropout on the weights,
grouped-query attention (``kv_heads``), rotary embeddings (``rotary=true`` and the ``rotary``
op) and ``rmsnorm``. Each model runs in torch at -O0 and -O2 and in the NumPy executor with the
same weights and inputs (within 1e-5 relative); -O2 must still make one
``F.scaled_dot_product_attention`` call of each attention, hand-written ones included.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import netc

SPEC = """
model Padded(x: float[N, T, 32], pad: bool[N, T], mem: float[N, S, 32], mpad: bool[N, S]) -> float[N, T, 32] {
    y = x -> self_attention(4, padding=pad)
    return y + (y -> cross_attention(mem, 4, padding=mpad, kv_heads=2)) -> rmsnorm
}
model Masked(x: float[N, T, 32], keep: bool[N, 1, T, T], bias: float[T, T]) -> float[N, T, 32] {
    y = x -> self_attention(4, mask=keep, causal=true)
    return y -> self_attention(4, mask=bias, bias=false)
}
model Grouped(x: float[N, T, 32], pad: bool[N, T]) -> float[N, T, 32] {
    return x -> self_attention(8, kv_heads=2, rotary=true, causal=true, padding=pad, base=500.0)
}
model HandRope(x: float[N, T, 32], bias: float[N, 1, T, T]) -> float[N, T, 32] {
    q = x -> linear(32) -> reshape(N, T, 4, 8) -> transpose(1, 2) -> rotary
    k = x -> linear(32) -> reshape(N, T, 4, 8) -> transpose(1, 2) -> rotary
    v = x -> linear(32) -> reshape(N, T, 4, 8) -> transpose(1, 2)
    a = softmax(q @ transpose(k, -2, -1) / sqrt(8) + bias) @ v
    return a -> transpose(1, 2) -> reshape(N, T, 32) -> linear(32)
}
model GroupedOp(q: float[N, 4, T, 8], k: float[N, 2, S, 8], v: float[N, 2, S, 8], pad: bool[N, S])
        -> float[N, 4, T, 8] {
    return attention(q, k, v, padding=pad, dropout=0.5)
}
"""

N, T, S = 2, 5, 7


def padding(n: int, length: int, rng) -> np.ndarray:
    """A padding mask with sequences of random lengths (at least 1: no row fully masked)."""
    lengths = rng.integers(1, length + 1, size=n)
    lengths[0] = length - 1
    return np.arange(length)[None, :] < lengths[:, None]


def inputs(name: str) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    f = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    if name == "Padded":
        return [f(N, T, 32), padding(N, T, rng), f(N, S, 32), padding(N, S, rng)]
    if name == "Masked":
        keep = rng.random((N, 1, T, T)) < 0.7
        keep[..., 0] = True  # each query sees key 0, which causality allows
        return [f(N, T, 32), keep, f(T, T)]
    if name == "Grouped":
        return [f(N, T, 32), padding(N, T, rng)]
    if name == "HandRope":
        return [f(N, T, 32), f(N, 1, T, T)]
    return [f(N, 4, T, 8), f(N, 2, S, 8), f(N, 2, S, 8), padding(N, S, rng)]


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    path = tmp_path_factory.mktemp("attn") / "attn.net"
    path.write_text(SPEC)
    return netc.compile_file(path)


def rel(got, want) -> float:
    return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(want).max())


@pytest.mark.parametrize("name", ["Padded", "Masked", "Grouped", "HandRope", "GroupedOp"])
def test_torch_numpy_and_optimised_agree(prog, name):
    torch.manual_seed(0)
    xs = inputs(name)
    m0 = prog.to_torch(name).eval()
    weights = m0.state_dict()
    with torch.no_grad():
        want = m0(*map(torch.from_numpy, xs)).numpy()
        m2 = prog.to_torch(name, opt=2).eval()
        m2.load_state_dict(prog.convert_weights(name, weights, 2))
        assert rel(m2(*map(torch.from_numpy, xs)).numpy(), want) <= 1e-5
    ex = prog.to_numpy(name, weights={k: v.numpy() for k, v in weights.items()})
    assert rel(ex(*xs), want) <= 1e-5
    assert np.isfinite(want).all()


def test_masks_change_the_result(prog):
    """The padding mask is not ignored: unmasking the padding changes the real positions."""
    xs = inputs("Padded")
    ex = prog.to_numpy("Padded", weights={k: v.numpy() for k, v in prog.to_torch("Padded").state_dict().items()})
    opened = [xs[0], np.ones_like(xs[1]), xs[2], xs[3]]
    assert not np.allclose(ex(*xs)[0, :4], ex(*opened)[0, :4], atol=1e-4)


@pytest.mark.parametrize("name", ["Padded", "Masked", "Grouped", "HandRope", "GroupedOp"])
def test_one_sdpa_call_per_attention_at_O2(prog, name):
    """Each attention is one SDPA call: one of the model's own, or a layer of the prelude's
    Attention class, which makes exactly one."""
    src = prog.optimized(2).torch_source(name)
    model = src[src.rindex("\nclass "):]  # the model's class, after the prelude
    calls = model.count("F.scaled_dot_product_attention(") + model.count(" = Attention(")
    assert calls == {"Padded": 2, "Masked": 2}.get(name, 1), model
    assert "softmax" not in model and " @ " not in model
    if " = Attention(" in model:
        prelude = src[src.index("class Attention("):src.rindex("\nclass ")]
        assert prelude.count("F.scaled_dot_product_attention(") == 1


def test_attention_dropout_only_while_training(prog):
    q, k, v, pad = map(torch.from_numpy, inputs("GroupedOp"))
    m = prog.to_torch("GroupedOp")
    m.train()
    assert not torch.allclose(m(q, k, v, pad), m(q, k, v, pad))
    m.eval()
    assert torch.equal(m(q, k, v, pad), m(q, k, v, pad))


def test_grouped_attention_params_and_macs(prog):
    """GQA's in-projection holds q (32 rows) and k, v (2 heads of 4: 8 rows each)."""
    m = prog.to_torch("Grouped")
    assert m.self_attention.in_proj_weight.shape == (48, 32)
    want = 48 * 32 + 48 + 32 * 32 + 32
    assert sum(p.numel() for p in m.parameters()) == want
    summary = prog.summary("Grouped")
    assert summary.params == want
    # projections: q and out 32 * 32 each, k and v 32 * 8 each, per position; scores 2 * T * 32
    assert str(summary.macs) == "2560*N*T + 64*N*T*T"
