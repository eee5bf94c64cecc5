"""Reference parity of the vision-transformer-era examples: ViT-B/16 and ConvNeXt-Tiny
(torchvision, random init, nothing downloaded). The reference's state_dict is copied into
netc's module by structure (the spec follows the reference's order, so the i-th tensors pair
up, with equal shapes); its biases, norms, LayerScale gains and zero-started head are drawn
at random first, so that a wrong copy or epsilon shows. In eval mode the outputs agree within
1e-5 relative. ConvNeXt's NumPy program gives the same numbers too (ViT-B's 86 M weights
through NumPy would take the test past its time budget)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

import netc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Every 1-d weight (biases, norm scales and shifts), the LayerScale gains and the head
    drawn at random: the reference's own initialisers leave them at 0, 1 or 1e-6."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1 or "layer_scale" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if name.endswith("weight") else 0.0))
            elif name.startswith("heads.") or name == "class_token":
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return module


def copy_by_structure(reference: nn.Module, net: nn.Module) -> None:
    src, dst = list(reference.state_dict().items()), list(net.state_dict().items())
    assert len(src) == len(dst), f"{len(src)} reference tensors, {len(dst)} netc tensors"
    with torch.no_grad():
        for (a, x), (b, y) in zip(src, dst):
            assert x.shape == y.shape, f"{a} {tuple(x.shape)} -> {b} {tuple(y.shape)}"
            assert a.rsplit(".", 1)[-1].split("_")[-1] == b.rsplit(".", 1)[-1].split("_")[-1], f"{a} -> {b}"
            y.copy_(x)


def assert_close(got, want, what: str) -> None:
    scale = want.abs().max().item()
    assert scale > 1e-2, f"{what}: the reference's outputs are too small to compare ({scale:.2e})"
    err = (got - want).abs().max().item()
    assert err <= 1e-5 * scale, f"{what}: max abs diff {err:.3e} over outputs up to {scale:.3e}"


def test_vit_b16_matches_torchvision():
    torch.manual_seed(0)
    reference = randomize(torchvision.models.vit_b_16(), seed=1).eval()
    net = netc.compile_file(EXAMPLES / "vit_b16.net").to_torch("ViTB16").eval()
    assert sum(p.numel() for p in net.parameters()) == 86_567_656
    copy_by_structure(reference, net)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert_close(net(x), reference(x), "ViT-B/16")


def test_convnext_tiny_matches_torchvision_and_numpy():
    torch.manual_seed(0)
    reference = randomize(torchvision.models.convnext_tiny(), seed=1).eval()
    prog = netc.compile_file(EXAMPLES / "convnext_tiny.net")
    net = prog.to_torch("ConvNeXtTiny").eval()
    copy_by_structure(reference, net)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = reference(x)
        assert_close(net(x), want, "ConvNeXt-Tiny")
        net2 = prog.to_torch("ConvNeXtTiny", opt=2).eval()
        net2.load_state_dict(prog.convert_weights("ConvNeXtTiny", net.state_dict(), opt=2))
        assert_close(net2(x), want, "ConvNeXt-Tiny -O2")
    got = prog.to_numpy("ConvNeXtTiny", weights=net.state_dict())(x.numpy())
    got = got[0] if isinstance(got, (list, tuple)) else got
    assert_close(torch.from_numpy(np.asarray(got)), want, "ConvNeXt-Tiny in NumPy")


def test_convnext_starts_as_torchvision_does():
    torch.manual_seed(0)
    sd = netc.compile_file(EXAMPLES / "convnext_tiny.net").to_torch("ConvNeXtTiny").state_dict()
    w = next(v for k, v in sd.items() if k.endswith("linear.weight"))  # 384 x 96, trunc_normal(0.02)
    assert abs(w.std().item() - 0.02) < 0.001 and w.abs().max().item() <= 2
    assert all(torch.equal(v, torch.zeros_like(v)) for k, v in sd.items() if k.endswith("linear.bias"))
    assert all(torch.equal(v, torch.full_like(v, 1e-6)) for k, v in sd.items() if k.endswith("layer_scale"))
