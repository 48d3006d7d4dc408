"""A user's own code named on the command line: ``package.module:attribute``.

`jaxgan.objectives.get_objective` accepts such a path beside the registered names, so
``--objective mypkg.losses:relativistic`` and ``--objectives nsgan,mypkg.losses:relativistic``
train and compare a researcher's objective with the same seeds, data and budget as the built-in
ones. A config saves the path, so ``--resume``, ``jaxgan sample`` and ``jaxgan eval`` import it
again.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def is_path(name: str) -> bool:
    """Whether ``name`` names an object by import path (``module:attribute``)."""
    return ":" in name


def load(path: str, what: str) -> Any:
    """The object ``module:attribute`` names (the attribute may be dotted: ``m:Class.x``).

    ``what`` says what it should be, for the errors, which say what to fix: the module that
    does not import (and the error it raised), or the attribute it lacks.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{what} {path!r}: expected module:attribute, e.g. "
                         "mypkg.losses:my_objective")
    # The current folder, as `python -m` would have it: a module next to the user's command.
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{what} {path!r}: module {module_name!r} does not import ({e}); "
                         "is it installed, or in the current folder?") from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{what} {path!r}: module {module_name!r} has no "
                             f"{attribute!r}") from None
    return obj
