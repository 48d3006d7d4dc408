"""LSGAN on MNIST: Mao et al. 2017, "Least Squares Generative Adversarial Networks",
arXiv:1611.04076, with the user's networks (z 62, BN on the middle layers, linear D output),
Adam 2e-4 / beta1 0.5, batch 64.

Command:
    python experiments/lsgan_mnist.py --data-dir ../shared/data/mnist --epochs 3
    python experiments/lsgan_mnist.py --objective lsgan-pearson   # the a=-1, b=1, c=0 coding
Expected: digits recognisable by eye by epoch 3; near-real after about 30 epochs (the user's
report). Every flag of `jaxgan train` applies.
"""

import sys

from jaxgan.cli import run_config
from jaxgan.configs import LSGANMnistConfig

CONFIG = LSGANMnistConfig(objective="lsgan")  # the 0-1 coding, as the paper's experiments

if __name__ == "__main__":
    sys.exit(run_config(CONFIG, sys.argv[1:], prog="lsgan_mnist.py"))
