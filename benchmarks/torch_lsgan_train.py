"""PyTorch reference for `benchmarks/quality.py`: LSGAN on real MNIST for a wall-clock budget,
then samples for jaxgan's evaluator.

    PYTHON benchmarks/torch_lsgan_train.py --images PATH/TO/train-images-idx3-ubyte.gz \\
        [--seconds 600] [--samples 10000] [--out torch_samples.npz]

PYTHON is a venv with torch (``pip install torch==2.13.0 numpy``); torch is not a dependency
of jaxgan, and this script does not import jaxgan. `benchmarks/quality.py` runs it with the
hyperparameters of jaxgan's ``lsgan_mnist`` config passed as flags, beside a jaxgan run of the
same budget, and scores both sample files with the same evaluator.

What it trains is what ``jaxgan train --config lsgan_mnist`` trains, so that the comparison is
of the two frameworks and not of two models:

* the networks of ``../shared/bench/torch_lsgan.py`` (z 62, BatchNorm on the middle layers,
  linear D output), layer for layer, except D's BatchNorm on its FC-1024 layer, which jaxgan's
  ``lsgan_mnist`` D leaves out by default (`jaxgan.nets.lsgan.LSGANMnistDiscriminator`
  explains why: G gets no gradient to move its batch's mean image); ``--d-fc-batchnorm``
  puts it back;
* jaxgan's initialisation, weights N(0, 0.02) and zero biases (PyTorch's default saturates
  G's tanh, see `jaxgan.nets.lsgan`); BatchNorm momentum 0.1, epsilon 1e-5 on both sides;
* the data: the IDX file's images scaled by ``x / 127.5 - 1``, reshuffled every epoch,
  batches of 64 with each epoch's remainder dropped;
* the step of `jaxgan.step`: G draws one batch of fakes (train mode, its running BatchNorm
  statistics advanced once a step), D scores a real and that fake batch passed separately
  (its loss ``1/2 (D(x) - b)^2 + 1/2 (D(G(z)) - a)^2``), then the G update scores the same
  fakes with the updated D (``1/2 (D(G(z)) - c)^2``), backpropagating through the forward
  pass G already ran, as jaxgan's step and the official DCGAN code do; Adam for each.

What still differs: the random numbers (initial weights, noise, data order), and PyTorch's
running variance, which uses the unbiased batch variance where Flax uses the biased one.
Checked once by hand: with jaxgan's initial weights copied in (``Linear.weight = kernel.T``,
``ConvTranspose2d.weight = kernel.transpose(2, 3, 0, 1)``, ``Conv2d.weight =
kernel.transpose(3, 2, 0, 1)``), G and D here give jaxgan's outputs to 1e-6 in both modes.

The clock starts at the first step and stops at the first step that ends past ``--seconds``;
reading the data and building the networks are timed apart (``startup_s``), importing torch
too (``import_s``). Samples come from G in inference mode (running statistics), written as
``jaxgan sample -n N --out x.npz`` writes them: key ``x``, float32 ``(N, 28, 28, 1)`` in
[-1, 1], which ``jaxgan eval --samples x.npz --dataset mnist`` scores. The last line printed
is one JSON object (steps, seconds, versions).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np


def read_idx_images(path: str | Path) -> np.ndarray:
    """uint8 images ``(N, H, W)`` from an IDX file (gzip or not, as jaxgan reads them)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
        raw = f.read()
    if raw[:3] != b"\x00\x00\x08" or raw[3] != 3:
        raise ValueError(f"{path}: not an IDX file of uint8 images (magic {raw[:4].hex()})")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:16], ">u4"))
    return np.frombuffer(raw, np.uint8, count=int(np.prod(shape)), offset=16).reshape(shape)


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1], jaxgan's pipeline's arithmetic (255 / 127.5 is exactly 2)."""
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def save_samples(path: str | Path, x_nchw: np.ndarray) -> Path:
    """Writes samples ``(N, 1, H, W)`` as ``jaxgan sample`` does: key ``x``, NHWC float32."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=np.ascontiguousarray(
        np.asarray(x_nchw, np.float32).transpose(0, 2, 3, 1)))
    return path


def generator(z_dim: int = 62):
    """``torch_lsgan.py``'s G: FC 1024, BN, ReLU, FC 128*7*7, BN, ReLU, ConvTranspose 64, BN,
    ReLU, ConvTranspose 1, tanh (the bench reference's class, `benchmarks/torch_lsgan.py`)."""
    from torch_lsgan import Generator  # this folder; torch is the reference's dependency

    return Generator(z_dim)


def discriminator(fc_batchnorm: bool = False):
    """``torch_lsgan.py``'s D: Conv 64, LReLU, Conv 128, BN, LReLU, FC 1024, [BN,] LReLU,
    FC 1 (linear output, shape ``(N, 1)``)."""
    from torch_lsgan import Discriminator

    return Discriminator(fc_batchnorm)


def init_like_jaxgan(net) -> None:
    """Weights N(0, 0.02), zero biases (`jaxgan.nets.lsgan`); BatchNorm scale 1, bias 0."""
    from torch import nn

    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="the IDX file of MNIST training images")
    p.add_argument("--seconds", type=float, default=600.0, help="training budget (wall clock)")
    p.add_argument("--samples", type=int, default=10_000, help="samples to write")
    p.add_argument("--out", default="torch_samples.npz", help="the .npz of samples")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--z-dim", type=int, default=62)
    p.add_argument("--g-lr", type=float, default=2e-4)
    p.add_argument("--d-lr", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--beta2", type=float, default=0.999)
    # LSGAN's a-b-c coding (fake target, real target, G's target); 0-1-1 is jaxgan's "lsgan".
    p.add_argument("--a", type=float, default=0.0)
    p.add_argument("--b", type=float, default=1.0)
    p.add_argument("--c", type=float, default=1.0)
    p.add_argument("--d-fc-batchnorm", action="store_true",
                   help="BatchNorm on D's FC-1024 layer, as torch_lsgan.py has it")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    t = time.perf_counter()
    import torch

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    torch.manual_seed(a.seed)
    images = read_idx_images(a.images)
    steps_per_epoch = len(images) // a.batch
    if steps_per_epoch == 0:
        raise ValueError(f"{a.images} holds {len(images)} images, fewer than a batch of {a.batch}")
    g, d = generator(a.z_dim), discriminator(a.d_fc_batchnorm)
    init_like_jaxgan(g)
    init_like_jaxgan(d)
    g_opt = torch.optim.Adam(g.parameters(), a.g_lr, betas=(a.beta1, a.beta2))
    d_opt = torch.optim.Adam(d.parameters(), a.d_lr, betas=(a.beta1, a.beta2))
    rng = np.random.default_rng(a.seed)
    startup_s = time.perf_counter() - t

    steps, order = 0, None
    t = time.perf_counter()
    deadline = t + a.seconds
    while time.perf_counter() < deadline:
        i = steps % steps_per_epoch
        if i == 0:
            order = rng.permutation(len(images))
        real = torch.from_numpy(scale(images[order[i * a.batch:(i + 1) * a.batch]])[:, None])
        # One G forward pass a step, kept for the G update's gradient.
        fake = g(torch.randn(a.batch, a.z_dim))
        d_loss = ((0.5 * (d(real) - a.b) ** 2).mean()
                  + (0.5 * (d(fake.detach()) - a.a) ** 2).mean())
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        # D's weights need no gradient in the G update (jaxgan differentiates G's only).
        d.requires_grad_(False)
        g_loss = (0.5 * (d(fake) - a.c) ** 2).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        d.requires_grad_(True)
        steps += 1
    train_s = time.perf_counter() - t
    if not (np.isfinite(d_loss.item()) and np.isfinite(g_loss.item())):
        raise FloatingPointError(f"non-finite loss after {steps} steps: training diverged")

    g.eval()
    noise = torch.Generator().manual_seed(a.seed + 1)
    with torch.no_grad():
        x = torch.cat([g(torch.randn(min(1000, a.samples - s), a.z_dim, generator=noise))
                       for s in range(0, a.samples, 1000)])
    out = save_samples(a.out, x.numpy())
    result = {
        "framework": "torch", "steps": steps, "train_s": train_s, "steps_per_s": steps / train_s,
        "startup_s": startup_s, "import_s": import_s, "d_loss": d_loss.item(),
        "g_loss": g_loss.item(), "samples": str(out), "n": len(x), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "images": len(images),
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
