"""Weights for ``netc verify`` that keep signals at their scale through deep networks.

torch's default initialisers draw a layer's weights uniform in ±1/sqrt(fan_in), a variance
of 1/(3 fan_in): each conv -> relu shrinks the signal by about 1/sqrt(6), and a batch norm in
eval mode with its fresh statistics (mean 0, variance 1) does not restore it. Thirty layers
on, the features are ~1e-12 and a classifier's output is its bias, so comparing torch with
NumPy compares nothing. Here:

- convolutions and linear layers get He's fan-in scaled normal weights, N(0, 2 / fan_in)
  (for a transposed convolution the fan-in of one output: in * kernel / stride), which keep
  the scale of a signal through relu layers;
- batch norms get scales near 1 and small shifts, and running statistics measured on the
  inputs themselves (one forward pass in training mode), then randomised around them (mean
  moved by up to a tenth of a standard deviation, variance scaled by 0.8..1.25), so that
  each one normalises what reaches it, as a trained network's do;
- everything else (embeddings, recurrent layers, attention, layer norms) keeps torch's own
  initialisation, which already keeps its scale.

    >>> import netc, torch
    >>> prog = netc.compile_file("examples/lenet.net")
    >>> _ = torch.manual_seed(0)
    >>> net = prog.to_torch("LeNet").eval()
    >>> scale_weights(net, [torch.randn(2, 1, 28, 28)], seed=0)
"""

from __future__ import annotations

import math


def scale_weights(module, inputs: list, seed: int) -> None:
    """Draw ``module``'s weights as above (seeded), calibrating its batch norms on ``inputs``
    (a list of tensors, the module's arguments). Leaves the module in eval mode."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    norms = []
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                _he(m.weight, m.weight[0].numel(), gen)
            elif isinstance(m, nn.modules.conv._ConvTransposeNd):
                kernel, stride = math.prod(m.kernel_size), math.prod(m.stride)
                _he(m.weight, max(1, m.weight.shape[0] * kernel // (stride * m.groups)), gen)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                norms.append(m)
                if m.affine:
                    m.weight.copy_(_uniform(m.weight.shape, 0.8, 1.2, gen))
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    module.eval()
    if norms:
        _calibrate(module, norms, inputs, gen)


def _he(weight, fan_in: int, gen) -> None:
    import torch

    weight.copy_(torch.randn(weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))


def _uniform(shape, lo: float, hi: float, gen):
    import torch

    return lo + (hi - lo) * torch.rand(shape, generator=gen)


def _calibrate(module, norms: list, inputs: list, gen) -> None:
    """Running statistics of each batch norm measured on ``inputs``, then perturbed. Where they
    cannot be measured (one value per channel: a batch of one without positions), they are
    drawn around mean 0, variance 1."""
    import torch

    saved = [(m, m.momentum) for m in norms]
    try:
        for m, _ in saved:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: one batch gives its own statistics
            m.train()
        with torch.no_grad():
            module(*inputs)
    except (ValueError, RuntimeError):  # "Expected more than 1 value per channel when training"
        for m, _ in saved:
            m.reset_running_stats()
    finally:
        for m, momentum in saved:
            m.momentum = momentum
            m.eval()
    with torch.no_grad():
        for m in norms:
            if m.running_mean is None:
                continue
            std = m.running_var.clamp_min(1e-6).sqrt()
            m.running_mean.add_(0.1 * std * (2 * torch.rand(std.shape, generator=gen) - 1))
            m.running_var.mul_(torch.exp(math.log(1.25) * (2 * torch.rand(std.shape, generator=gen) - 1)))
            m.num_batches_tracked.fill_(1)
