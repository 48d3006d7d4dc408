"""Generators and discriminators (Flax NNX, NHWC images), used functionally by the steps.

Generators map (N, z_dim) noise to (N, *out_shape); discriminators expose
``features(x) -> (N, F)`` (last hidden layer, after its activation), ``head(f) -> (N,)``
logits and ``__call__ = head . features``.
"""

from jaxgan.nets.dcgan import RESOLUTIONS, DCGANDiscriminator, DCGANGenerator
from jaxgan.nets.layers import Upsample2x
from jaxgan.nets.lsgan import LSGANMnistDiscriminator, LSGANMnistGenerator
from jaxgan.nets.mlp import MaxoutDiscriminator, MLPDiscriminator, MLPGenerator, PacGANGenerator

__all__ = [
    "RESOLUTIONS",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "LSGANMnistDiscriminator",
    "LSGANMnistGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "MaxoutDiscriminator",
    "PacGANGenerator",
    "Upsample2x",
]
