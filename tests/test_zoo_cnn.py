"""Reference parity of the CNN examples: MobileNetV2 and EfficientNet-B0 (torchvision) and
U-Net (milesial's Pytorch-UNet layout, written out in ``references.py``).

Each reference is built with random weights (its own initialisers), then its batch-norm
affine parameters and running statistics and its biases are randomised too, so that a
wrong copy or a wrong epsilon shows. Its state_dict is copied into the module netc builds
by structure: both list the same weights in the same order (the spec follows the
reference's layer order), so the i-th tensors pair up and must have equal shapes. Then, in
eval mode, the outputs must agree within 1e-5 relative at -O0 and at -O2 (batch norm
folded, activations fused), and the NumPy program must give the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import references as ref
import torch
import torchvision
from torch import nn

import netc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

CASES = {  # example -> (model, reference constructor, input size)
    "mobilenet_v2.net": ("MobileNetV2", torchvision.models.mobilenet_v2, (64, 64)),
    "efficientnet_b0.net": ("EfficientNetB0", torchvision.models.efficientnet_b0, (64, 64)),
    "unet.net": ("UNet", lambda: ref.UNet(3, 2), (67, 45)),
}


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Batch-norm scales, shifts and statistics and the biases drawn at random."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return module


def copy_by_structure(reference: nn.Module, net: nn.Module) -> None:
    """The i-th tensor of the reference's state_dict into the i-th of netc's."""
    src, dst = list(reference.state_dict().items()), list(net.state_dict().items())
    assert len(src) == len(dst), f"{len(src)} reference tensors, {len(dst)} netc tensors"
    with torch.no_grad():
        for (a, x), (b, y) in zip(src, dst):
            assert x.shape == y.shape, f"{a} {tuple(x.shape)} -> {b} {tuple(y.shape)}"
            assert a.rsplit(".", 1)[1] == b.rsplit(".", 1)[1], f"{a} -> {b}: different kinds of weight"
            y.copy_(x)


def assert_close(got, want, what: str) -> None:
    scale = want.abs().max().item()
    assert scale > 1e-2, f"{what}: the reference's outputs are too small to compare ({scale:.2e})"
    err = (got - want).abs().max().item()
    assert err <= 1e-5 * scale, f"{what}: max abs diff {err:.3e} over outputs up to {scale:.3e}"


@pytest.fixture(autouse=True)
def _threads():
    torch.manual_seed(0)


@pytest.mark.parametrize("example", sorted(CASES))
def test_matches_reference(example):
    name, build, (h, w) = CASES[example]
    reference = randomize(build(), seed=1).eval()
    prog = netc.compile_file(EXAMPLES / example)
    net = prog.to_torch(name).eval()
    copy_by_structure(reference, net)
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = reference(x)
        assert_close(net(x), want, f"{name} -O0")
        fused = prog.to_torch(name, opt=2).eval()
        fused.load_state_dict(prog.convert_weights(name, net.state_dict(), opt=2))
        assert_close(fused(x), want, f"{name} -O2")
    numpy = prog.to_numpy(name, weights=net.state_dict())
    assert_close(torch.from_numpy(np.asarray(numpy(x.numpy()))), want, f"{name} NumPy")
