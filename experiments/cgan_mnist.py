"""Conditional GAN on MNIST: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets",
arXiv:1411.1784, as the user ran it: MLPs with a learned 10 -> 10 label embedding, D with
LeakyReLU(0.2) and Dropout(0.3), BCE (the non-saturating loss), Adam 1e-4, batch 64, 30 epochs.
Unlike the user's listing, G really trains (the listing forgot its backward pass).

Command:
    python experiments/cgan_mnist.py --data-dir ../shared/data/mnist
    jaxgan sample --checkpoint runs/mnist-nsgan -n 64 --label 7 --out sevens.png
Expected: a grid whose row k shows digit k; conditioning works with every objective
(`--objective lsgan` etc.).
"""

import sys

from jaxgan.cli import run_config
from jaxgan.configs import CGANMnistConfig

CONFIG = CGANMnistConfig()

if __name__ == "__main__":
    sys.exit(run_config(CONFIG, sys.argv[1:], prog="cgan_mnist.py"))
