"""Conditional GAN on MNIST: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets",
arXiv:1411.1784, as the user ran it: MLPs with a learned 10 -> 10 label embedding, D with
LeakyReLU(0.2) and Dropout(0.3), BCE (the non-saturating loss), Adam 1e-4, batch 64, 30 epochs.
Unlike the user's listing, G really trains (the listing forgot its backward pass).

Command:
    python experiments/cgan_mnist.py --data-dir ../shared/data/mnist
    jaxgan sample --checkpoint runs/mnist-nsgan -n 64 --label 7 --out sevens.png
Expected: a grid whose row k shows digit k; conditioning works with every objective
(`--objective lsgan` etc.). Measured on the 22,699-image partial MNIST split (2-core CPU, ~10 s
an epoch): the 30 epochs are 10,620 steps, a third of the user's 28,000 on full MNIST, and
leave the rows weakly conditioned (evaluator agreement with the label ~50%); 60 epochs (12
minutes) give rows that mostly show their digit (the 3s and 4s still rough) and 80%;
``--epochs 200`` (34 minutes) 95.9% on 10,000 samples, FID 13.3
(`jaxgan eval --checkpoint`; ``--eval-every 10`` writes the course to metrics.jsonl).
"""

import sys

from jaxgan.cli import run_config
from jaxgan.configs import CGANMnistConfig

CONFIG = CGANMnistConfig()

if __name__ == "__main__":
    sys.exit(run_config(CONFIG, sys.argv[1:], prog="cgan_mnist.py"))
