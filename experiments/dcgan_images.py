"""DCGAN: Radford et al. 2015, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", arXiv:1511.06434, trained with the GAN objective of
Goodfellow et al. 2014 (non-saturating by default; `--objective gan` for minimax).

Command:
    python experiments/dcgan_images.py --dataset PATH/TO/PHOTOS --resolution 256
    python experiments/dcgan_images.py --dataset mnist --data-dir ../shared/data/mnist
Expected: at 64 px on a few thousand photos of one subject, faces/shapes emerge after a few
thousand steps; on MNIST (28 px) digits within 2-3 epochs. Batch 128, Adam 2e-4 / 0.5,
z ~ U[-1, 1]^100, weights ~ N(0, 0.02), as the paper.
"""

import sys

from jaxgan.cli import run_config
from jaxgan.configs import DCGANConfig

CONFIG = DCGANConfig()

if __name__ == "__main__":
    sys.exit(run_config(CONFIG, sys.argv[1:], prog="dcgan_images.py"))
