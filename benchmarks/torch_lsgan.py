"""PyTorch reference step of jaxgan's ``lsgan_mnist`` and ``cgan_mlp`` configurations, for
``jaxgan bench --vs-torch``: layer for layer the models of ``../shared/bench/torch_lsgan.py``
(``benchmarks/check_torch_refs.py`` shows the parameter counts match), one D update and one G
update a step on random data, Adam 2e-4 / beta1 0.5.

    python benchmarks/torch_lsgan.py [--arch lsgan|mlp] [--batch 64] [--steps 50]
                                     [--no-d-fc-batchnorm]

``lsgan``: LSGAN's MNIST G (z 62, FC 1024 and FC 7x7x128 with batch norm, two 4x4 stride-2
transposed convs) and D (two 4x4 stride-2 convs, FC 1024, linear output), least-squares
loss. ``--no-d-fc-batchnorm`` drops the batch norm of D's FC 1024 layer, as jaxgan's
``lsgan_mnist`` D does (see `jaxgan.nets.lsgan`), so the two time the same network.
``mlp``: the cGAN MLPs (label embeddings of 10, G 110-256-512-1024-784, D 794-1024-512-256-1
with dropout 0.3). Prints ``params_g=<int> params_d=<int>`` and ``steps_per_s=<float>``.
"""

import argparse

import torch
import torch.nn as nn
from torch_timing import print_params, print_steps_per_s  # this folder


class Generator(nn.Module):
    def __init__(self, z_dim: int = 62):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(z_dim, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
            nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.up(self.fc(z).view(-1, 128, 7, 7))


class Discriminator(nn.Module):
    def __init__(self, fc_batchnorm: bool = True):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2))
        norm = [nn.BatchNorm1d(1024)] if fc_batchnorm else []
        self.fc = nn.Sequential(nn.Linear(128 * 7 * 7, 1024), *norm, nn.LeakyReLU(0.2),
                                nn.Linear(1024, 1))

    def forward(self, x):
        return self.fc(self.conv(x).view(-1, 128 * 7 * 7))


class MLPGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 10)
        self.body = nn.Sequential(
            nn.Linear(110, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784), nn.Tanh())

    def forward(self, z, y):
        return self.body(torch.cat([z, self.embed(y)], 1)).view(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 10)
        self.body = nn.Sequential(
            nn.Linear(794, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(256, 1))

    def forward(self, x, y):
        return self.body(torch.cat([x.view(-1, 784), self.embed(y)], 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=("lsgan", "mlp"), default="lsgan")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--no-d-fc-batchnorm", action="store_true")
    a = p.parse_args()
    torch.manual_seed(0)
    conditional = a.arch == "mlp"
    if conditional:
        g, d, z_dim = MLPGenerator(), MLPDiscriminator(), 100
    else:
        g, d, z_dim = Generator(), Discriminator(not a.no_d_fc_batchnorm), 62
    print_params(g, d)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    x = torch.rand(a.batch, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (a.batch,))
    ones, zeros = torch.ones(a.batch, 1), torch.zeros(a.batch, 1)
    mse = nn.MSELoss()
    gen = (lambda z: g(z, y)) if conditional else g
    disc = (lambda x: d(x, y)) if conditional else d

    def step():
        z = torch.randn(a.batch, z_dim)
        opt_d.zero_grad()
        loss_d = mse(disc(x), ones) + mse(disc(gen(z).detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = mse(disc(gen(z)), ones)
        loss_g.backward()
        opt_g.step()

    print_steps_per_s(step, a.steps, warmup=5)


if __name__ == "__main__":
    main()
