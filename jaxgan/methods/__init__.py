"""Training methods: the GAN variants, GLO and the semi-supervised K+1 GAN, each a `Method`
(`jaxgan.methods.base`) that `jaxgan.runs` trains, loads, samples and evaluates the same way.

A config's class names its method (``cfg.method``); `for_config` finds it.
"""

from __future__ import annotations

from jaxgan.methods import gan, glo, ssl
from jaxgan.methods.base import Method, Run, Samples

METHODS: dict[str, Method] = {m.name: m for m in (gan.METHOD, glo.METHOD, ssl.METHOD)}

__all__ = ["METHODS", "Method", "Run", "Samples", "for_config"]


def for_config(cfg) -> Method:
    """The method that trains ``cfg`` (by its class's ``method``)."""
    name = getattr(type(cfg), "method", None)
    if name not in METHODS:
        raise ValueError(f"{type(cfg).__name__} names no training method; known: "
                         f"{', '.join(METHODS)}")
    return METHODS[name]
