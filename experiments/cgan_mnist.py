"""Conditional GAN on MNIST: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets",
arXiv:1411.1784, as the user ran it: MLPs with a learned 10 -> 10 label embedding, D with
LeakyReLU(0.2) and Dropout(0.3), BCE (the non-saturating loss), Adam 1e-4, batch 64, 30 epochs.
Unlike the user's listing, G really trains (the listing forgot its backward pass).

Command:
    python experiments/cgan_mnist.py --data-dir ../shared/data/mnist
    jaxgan sample --checkpoint runs/mnist-nsgan -n 64 --label 7 --out sevens.png
Expected: a grid whose row k shows digit k; conditioning works with every objective
(`--objective lsgan` etc.). Measured on the 22,699-image partial MNIST split (2-core CPU, 20 s
an epoch): the 30 epochs are 10,620 steps, a third of the user's 28,000 on full MNIST, and
leave the rows weakly conditioned (evaluator agreement with the label 49%); ``--epochs 55``
(18 minutes) gives a digit per row and 79% agreement, FID 101; 80 epochs (the user's ~28,000
steps) 86%, FID 68; 140 epochs (~50 minutes) 93.9%, FID 24 (`jaxgan eval --checkpoint`).
"""

import sys

from jaxgan.cli import run_config
from jaxgan.configs import CGANMnistConfig

CONFIG = CGANMnistConfig()

if __name__ == "__main__":
    sys.exit(run_config(CONFIG, sys.argv[1:], prog="cgan_mnist.py"))
