"""``randn_like``'s train/eval contract (specs/ops/random.py): fresh torch noise while
training, the counter-based draw in eval mode, equal to the NumPy program's; and the
optimiser keeps each call site (no CSE, no folding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import netc

VAE = """
model VAE(x: float[N, 16]) -> (z: float[N, 4], w: float[N, 4]) {
    h = x -> linear(32) -> relu
    mu = h -> linear(4)
    logvar = h -> linear(4)
    z = mu + exp(0.5 * logvar) * randn_like(mu, seed=7)
    w = mu + exp(0.5 * logvar) * randn_like(mu, seed=7)
    return z, w
}
"""


def program(tmp_path):
    spec = tmp_path / "vae.net"
    spec.write_text(VAE)
    return netc.compile_file(spec)


def test_eval_is_reproducible_and_equals_numpy(tmp_path):
    prog = program(tmp_path)
    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    base = prog.to_torch("VAE").eval()
    for opt in (0, 2):
        m = prog.to_torch("VAE", opt=opt).eval()
        m.load_state_dict(prog.convert_weights("VAE", base.state_dict(), opt=opt))
        torch.manual_seed(opt)  # torch's generator plays no part in eval mode
        with torch.no_grad():
            z, w = m(x)
            z2, _ = m(x)
        assert torch.equal(z, z2) and torch.equal(z, w)  # same seed, same positions: same noise
        nz, nw = prog.to_numpy("VAE", weights=m.state_dict(), opt=opt)(x.numpy())
        np.testing.assert_allclose(nz, z.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(nw, w.numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        z0, _ = base(x)
        base.train()
        zt, _ = base(x)
    assert not torch.allclose(z0, zt)  # the eval draw is not switched off: noise is added


def test_verify_compares_the_draws_exactly(tmp_path, capsys):
    from netc.cli import main

    spec = tmp_path / "vae.net"
    spec.write_text(VAE)
    assert main(["verify", str(spec)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("VAE (float32") and out.splitlines()[0].endswith("ok"), out


def test_training_draws_fresh_noise(tmp_path):
    m = program(tmp_path).to_torch("VAE").train()
    x = torch.randn(3, 16)
    z1, w1 = m(x)
    z2, _ = m(x)
    assert not torch.equal(z1, z2) and not torch.equal(z1, w1)


def test_optimiser_keeps_each_draw(tmp_path):
    source = program(tmp_path).torch_source("VAE")
    prog = program(tmp_path).optimized(2)
    assert [n.op for n in prog.graph("VAE").nodes()].count("randn_like") == 2
    assert source.count("counter_randn(") == 3  # the helper and two calls


def test_counter_draw_is_standard_normal():
    from netc.backends.numpy.kernels.random import randn_like

    z = randn_like(np.zeros((400, 500), np.float32), seed=3)
    assert z.dtype == np.float32 and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs((np.abs(z) < 1).mean() - 0.6827) < 0.005  # its shape, not only two moments
    other = randn_like(np.zeros((400, 500), np.float32), seed=4)
    assert abs(np.corrcoef(z.ravel(), other.ravel())[0, 1]) < 0.01  # seeds give independent noise


def test_vae_example_matches_pytorch_examples():
    """examples/vae.net against pytorch/examples' VAE given netc's eval-mode noise; NumPy too."""
    import references as ref
    from netc.backends.numpy.kernels.random import randn_like

    prog = netc.compile_file(Path(__file__).resolve().parents[1] / "examples" / "vae.net")
    torch.manual_seed(0)
    reference = ref.VAE().eval()
    net = prog.to_torch("VAE").eval()
    src, dst = reference.state_dict(), net.state_dict()
    assert [v.shape for v in src.values()] == [v.shape for v in dst.values()]
    net.load_state_dict(dict(zip(dst, src.values())))
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    eps = torch.from_numpy(randn_like(np.zeros((3, 20), np.float32), seed=0))
    with torch.no_grad():
        want, got = reference(x, eps), net(x)
    assert want[0].std() > 0.01
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    for g, w in zip(prog.to_numpy("VAE", weights=dst)(x.numpy()), want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the noise matters: other noise, other reconstructions
        assert not torch.allclose(reference(x, torch.zeros_like(eps))[0], want[0])
