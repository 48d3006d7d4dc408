"""PyTorch reference step of jaxgan's DCGAN (``jaxgan.configs.DCGANConfig``, the ``dcgan64``
bench configuration and ``jaxgan bench --scaling``), for ``jaxgan bench --vs-torch``.

    python benchmarks/torch_dcgan.py [--resolution 32|64|128|256] [--batch 128] [--steps 20]

The PyTorch DCGAN example's G and D (``pytorch/examples``, ``dcgan/main.py``: ngf = ndf = 64,
z 100, 4x4 stride-2 (transposed) convolutions, BatchNorm everywhere but G's output and D's
input, ReLU / LeakyReLU(0.2), tanh), grown to any resolution the way
`jaxgan.nets.dcgan` grows it: ``n = log2(resolution / 4)`` stages, channels doubling from 64
towards the 4x4 map and capped at 512. Layer for layer jaxgan's networks, whose parameter
counts this prints for ``jaxgan bench`` to check; where jaxgan differs from the example,
this follows jaxgan, so both sides time the same model:

* G's output layer and D's first conv carry a bias (the example has none anywhere); layers
  followed by BatchNorm carry none, as in both;
* D's last layer is a linear logit on the 4x4 map with a bias (the example: a 4x4 valid conv
  without one, then a sigmoid that the loss takes here, as ``BCEWithLogitsLoss``);
* G's first layer is the example's 4x4 transposed conv of z as a 1x1 map, which is jaxgan's
  linear projection to 4x4xC (same weights, same function), then BatchNorm2d per channel;
* z uniform on [-1, 1] (the paper's, ``DCGANConfig.z_dist``), Adam 2e-4 / beta1 0.5, the
  non-saturating loss; one D update on a real and a fake batch, then one G update on fresh
  noise, as `jaxgan.step` does (the example reuses D's fake batch for G's update).

Random images stand in for data. Prints ``params_g=<int> params_d=<int>`` and
``steps_per_s=<float>``.
"""

import argparse
import itertools
import math

import torch
from torch import nn
from torch_timing import print_params, print_steps_per_s  # this folder


def widths(resolution: int, width: int = 64) -> list[int]:
    """Channels per map size, smallest map first (`jaxgan.nets.dcgan._plan`)."""
    n = round(math.log2(resolution // 4))
    if resolution != 4 * 2**n:
        raise SystemExit(f"--resolution must be 4 * 2^n (32, 64, 128, 256), got {resolution}")
    return [min(width * 2 ** (n - 1 - level), width * 8) for level in range(n)]


class Generator(nn.Module):
    def __init__(self, resolution: int, z_dim: int = 100, channels: int = 3):
        super().__init__()
        w = widths(resolution)
        layers = [nn.ConvTranspose2d(z_dim, w[0], 4, 1, 0, bias=False), nn.BatchNorm2d(w[0]),
                  nn.ReLU()]
        for c_in, c_out in itertools.pairwise(w):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU()]
        self.main = nn.Sequential(*layers, nn.ConvTranspose2d(w[-1], channels, 4, 2, 1),
                                  nn.Tanh())

    def forward(self, z):
        return self.main(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, resolution: int, channels: int = 3):
        super().__init__()
        w = widths(resolution)[::-1]  # largest map first
        layers = [nn.Conv2d(channels, w[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(w):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2)]
        self.main = nn.Sequential(*layers, nn.Conv2d(w[-1], 1, 4, 1, 0))

    def forward(self, x):
        return self.main(x).view(-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    torch.manual_seed(0)
    g, d = Generator(a.resolution), Discriminator(a.resolution)
    print_params(g, d)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    x = torch.rand(a.batch, 3, a.resolution, a.resolution) * 2 - 1
    ones, zeros = torch.ones(a.batch), torch.zeros(a.batch)
    bce = nn.BCEWithLogitsLoss()

    def noise():
        return torch.rand(a.batch, 100) * 2 - 1

    def step():
        with torch.no_grad():  # D's update needs no gradient through G
            fake = g(noise())
        opt_d.zero_grad()
        loss_d = bce(d(x), ones) + bce(d(fake), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(d(g(noise())), ones)
        loss_g.backward()
        opt_g.step()

    # A short warm-up: a 128 px step can take seconds.
    print_steps_per_s(step, a.steps, warmup=2)


if __name__ == "__main__":
    main()
