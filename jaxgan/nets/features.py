"""A discriminator's features at a chosen layer: what feature matching matches (Salimans et
al. 2016, Sec. 3.1) and what the K+1 GAN's generator is trained on."""

from __future__ import annotations

import jax
from flax import nnx

Array = jax.Array

FEATURES = "features"  # D's own ``features(x)``: its last hidden layer, after the activation


def _captured(discriminator: nnx.Module, *args, **kwargs) -> dict:
    _, inter = nnx.capture(
        discriminator.features, nnx.Intermediate, method_outputs=nnx.Intermediate
    )(*args, **kwargs)
    return {
        "/".join(str(p) for p in path[:-1]): v
        for path, v in nnx.to_flat_state(inter)
        if path[-1] == "__call__"
    }


def feature_layers(discriminator: nnx.Module, *args, **kwargs) -> list[str]:
    """The ``fm_layer`` paths of a D: submodules whose output its ``features`` computes
    (``args`` an example batch; run eagerly)."""
    return [FEATURES, *_captured(discriminator, *args, **kwargs)]


def layer_features(discriminator: nnx.Module, layer: str, *args, **kwargs) -> Array:
    """D's features of a batch at ``layer``, ``(N, F)``: ``"features"`` (D's ``features``)
    or the path of a submodule of D, e.g. ``"hidden/0"``, whose output (before the
    activation D applies to it) is flattened."""
    if layer == FEATURES:
        f = discriminator.features(*args, **kwargs)
        return f.reshape(f.shape[0], -1)
    captured = _captured(discriminator, *args, **kwargs)
    if layer not in captured:
        raise ValueError(
            f"fm_layer {layer!r} is not a submodule D's features run; valid: "
            f"{', '.join([FEATURES, *captured])}"
        )
    value = captured[layer].get_value()
    out = value[0] if isinstance(value, tuple) else value
    return out.reshape(out.shape[0], -1)
