"""PyTorch reference step of jaxgan's ``ring8`` bench configuration, for ``jaxgan bench
--vs-torch``: layer for layer the model of ``../shared/bench/torch_ring.py``
(``benchmarks/check_torch_refs.py`` shows the parameter counts match). G and D are MLPs of 3
ReLU hidden layers of 128 (G from z 256), batch 512, least squares, Adam 1e-4 / beta1 0.5; a
step samples the 8-mode ring and the noise, then one D and one G update.

    python benchmarks/torch_ring.py [--batch 512] [--steps 500]

Prints ``params_g=<int> params_d=<int>`` and ``steps_per_s=<float>``.
"""

import argparse
import math

import torch
import torch.nn as nn
from torch_timing import print_params, print_steps_per_s  # this folder


def mlp(d_in: int, d_out: int, hidden: int = 128, depth: int = 3) -> nn.Sequential:
    layers, width = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, d_out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=500)
    a = p.parse_args()
    torch.manual_seed(0)
    g, d = mlp(256, 2), mlp(2, 1)
    print_params(g, d)
    opt_g = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.5, 0.999))
    angles = torch.arange(8) * 2 * math.pi / 8
    centres = 2 * torch.stack([angles.cos(), angles.sin()], 1)

    def step():
        x = centres[torch.randint(0, 8, (a.batch,))] + 0.02 * torch.randn(a.batch, 2)
        z = torch.randn(a.batch, 256)
        opt_d.zero_grad()
        loss_d = ((d(x) - 1) ** 2).mean() + (d(g(z).detach()) ** 2).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = ((d(g(z)) - 1) ** 2).mean()
        loss_g.backward()
        opt_g.step()

    print_steps_per_s(step, a.steps, warmup=20)


if __name__ == "__main__":
    main()
