"""A discriminator's features at a chosen layer: what feature matching matches."""

import chex
import jax.numpy as jnp
import pytest
from flax import nnx

from jaxgan import nets
from jaxgan.nets import MLPDiscriminator, features


def test_feature_layer_by_path():
    d = MLPDiscriminator(in_dim=2, hidden=8, rngs=nnx.Rngs(0))
    x = jnp.ones((3, 2))
    assert features.feature_layers(d, x) == ["features", "hidden/0", "hidden/1"]
    chex.assert_trees_all_equal(features.layer_features(d, "features", x), d.features(x))
    chex.assert_trees_all_close(features.layer_features(d, "hidden/0", x), d.hidden[0](x))
    with pytest.raises(ValueError, match="hidden/1"):
        features.layer_features(d, "out", x)


def test_image_features_are_flattened_per_example():
    d = nets.DCGANDiscriminator(resolution=28, channels=1, width=4, rngs=nnx.Rngs(0))
    x = jnp.ones((3, 28, 28, 1))
    layers = features.feature_layers(d, x)
    assert layers[0] == features.FEATURES and len(layers) > 1
    for layer in layers:
        f = features.layer_features(d, layer, x)
        assert f.ndim == 2 and f.shape[0] == 3, layer
    chex.assert_trees_all_equal(features.layer_features(d, "features", x),
                                d.features(x).reshape(3, -1))
