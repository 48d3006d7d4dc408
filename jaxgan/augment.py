"""Differentiable Augmentation (DiffAugment) of the images D sees (Zhao et al. 2020).

Trained on a few hundred images, D memorises them: its accuracy on the training set goes
to 1 while its feedback to G degrades. DiffAugment shows D only randomly transformed
images, ``D(T(x))`` and ``D(T(G(z)))``, through transformations ``T`` differentiable in
their input, so that G's gradient reaches G through ``T``:

    L_D = f(-D(T(x))) + f(D(T(G(z))))        L_G = f(-D(T(G(z))))

Both halves of that matter (the paper's Sec. 3.1):

- The same family on real and fake. Augmenting only the reals changes the target: G then
  matches the augmented distribution ``T(x)``, and its samples show the augmentation
  (shifted, cut-out images).
- In D's and G's updates. Augmenting real and fake only in D's update breaks the balance
  between the players: D classifies augmented images well but misjudges the unaugmented
  ``G(z)`` that G's update shows it, and training degrades.

Hence Sec. 3.2: ``T`` on real and fake, in both updates, differentiable, so that G can be
trained through it.

Every function here is pure: the randomness comes from the caller's key (`jaxgan.step`
derives it from ``fold_in(state.key, state.step)``), one draw per example, so the same key
gives the same images, a resumed run continues exactly, and nothing is hidden in global
state. The official code draws afresh at every call; the caller should likewise give the
real and the fake batch keys of their own.

Images are NHWC floats in [-1, 1] (jaxgan's convention, and the official code's, whose
brightness range is for that scale). Ranges, rounding and positions follow the official code
(mit-han-lab/data-efficient-gans, ``DiffAugment_pytorch.py``); where it is more specific
than the paper, the code wins (noted at each function).

References:
  Zhao, Liu, Lin, Zhu & Han, Differentiable Augmentation for Data-Efficient GAN Training,
  NeurIPS 2020, https://arxiv.org/abs/2006.10738
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.configs import DIFFAUG_POLICIES, parse_diffaug

Array = jax.Array

# The paper's three policies, in the order its best setting applies them; configs hold
# them and parse the strings users write, so there is one list and one parser.
POLICIES = DIFFAUG_POLICIES
# Translation by up to 1/8 of the side, cutout of a square of half the side (Sec. 3.2 and
# the official defaults).
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _per_example(key: Array, x: Array, low: float, high: float) -> Array:
    """``U[low, high)`` of shape ``(N, 1, 1, 1)`` in ``x``'s dtype: one draw per image."""
    return jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype, low, high)


def _round_half_up(side: int, ratio: float) -> int:
    # The official code's ``int(side * ratio + 0.5)``: 1/8 of 12 is 2 pixels, not 1.
    return int(side * ratio + 0.5)


# --- colour ----------------------------------------------------------------------------


def brightness(x: Array, key: Array) -> Array:
    """``x + b`` with ``b ~ U[-0.5, 0.5)`` per image (a quarter of the [-1, 1] range)."""
    return x + _per_example(key, x, -0.5, 0.5)


def saturation(x: Array, key: Array) -> Array:
    """``(x - m_c) * s + m_c`` with ``s ~ U[0, 2)`` per image, ``m_c`` each pixel's mean
    over channels: ``s = 0`` is greyscale, ``s > 1`` oversaturates. The channel mean of
    every pixel is unchanged, and a grey (or single-channel) image is left as it is."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    return (x - mean) * _per_example(key, x, 0.0, 2.0) + mean


def contrast(x: Array, key: Array) -> Array:
    """``(x - m) * c + m`` with ``c ~ U[0.5, 1.5)`` per image, ``m`` the image's mean over
    pixels and channels, which is unchanged."""
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * _per_example(key, x, 0.5, 1.5) + mean


def color(x: Array, key: Array) -> Array:
    """The ``color`` policy: `brightness`, `saturation`, `contrast`, in the official order,
    each with its own key (``split(key, 3)``)."""
    kb, ks, kc = jax.random.split(key, 3)
    return contrast(saturation(brightness(x, kb), ks), kc)


# --- translation ---------------------------------------------------------------------


def translate(x: Array, dy: Array, dx: Array) -> Array:
    """Each image ``n`` moved by ``(dy[n], dx[n])`` whole pixels, the vacated border zero.

    ``out[n, i, j] = x[n, i - dy[n], j - dx[n]]`` where that lies inside the image, else 0
    (positive shifts move the content down / right). The official code pads the image by
    one zero pixel on each side and reads ``x_pad[clip(i - dy + 1, 0, H + 1)]``, which sends
    every index outside the image to the zero padding; so does this. It is a gather: pixel
    values are moved, never interpolated or rounded, so each output pixel's gradient goes,
    unchanged, to the one input pixel it came from.

    Args:
      x: ``(N, H, W, C)``.
      dy, dx: ``(N,)`` integer shifts (any size: beyond the side the image is all zero).
    """
    n, h, w = x.shape[0], x.shape[1], x.shape[2]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = jnp.clip(jnp.arange(h)[None, :] - dy[:, None] + 1, 0, h + 1)  # (N, H)
    cols = jnp.clip(jnp.arange(w)[None, :] - dx[:, None] + 1, 0, w + 1)  # (N, W)
    return padded[jnp.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def translation_shifts(key: Array, shape: tuple[int, ...], *,
                       ratio: float = TRANSLATION_RATIO) -> tuple[Array, Array]:
    """The ``(dy, dx)`` that `translation` draws: integers uniform in ``[-s, s]`` per image
    and axis, ``s = int(side * ratio + 0.5)`` (the official rounding)."""
    n, sy, sx = shape[0], _round_half_up(shape[1], ratio), _round_half_up(shape[2], ratio)
    ky, kx = jax.random.split(key)
    return (jax.random.randint(ky, (n,), -sy, sy + 1),
            jax.random.randint(kx, (n,), -sx, sx + 1))


def translation(x: Array, key: Array, *, ratio: float = TRANSLATION_RATIO) -> Array:
    """The ``translation`` policy: `translate` by `translation_shifts`, padded with zeros.

    The paper: "translation within [-1/8, 1/8] of the image size, padded with zeros"; the
    official code rounds that to whole pixels as `translation_shifts` does. The shift
    distribution is symmetric, so our sign convention draws the same transformations as
    the official ``x[i + t]``.
    """
    return translate(x, *translation_shifts(key, x.shape, ratio=ratio))


# --- cutout --------------------------------------------------------------------------


def cutout_size(shape: tuple[int, ...], *, ratio: float = CUTOUT_RATIO) -> tuple[int, int]:
    """The side lengths ``(int(H * ratio + 0.5), int(W * ratio + 0.5))`` of the square (a
    rectangle for non-square images), as the official code rounds them."""
    return _round_half_up(shape[1], ratio), _round_half_up(shape[2], ratio)


def cut(x: Array, cy: Array, cx: Array, *, size: tuple[int, int]) -> Array:
    """Zero, in each image ``n``, rows ``[cy - size_h // 2, cy - size_h // 2 + size_h)`` and
    columns likewise around ``cx``, clipped to the image; the other pixels are untouched.

    ``jnp.where`` rather than the official multiplication by a 0/1 mask: the same values
    and gradients (1 for kept pixels, 0 for erased ones) for finite inputs, but the erased
    pixels are exactly +0 and a non-finite input there does not leak into the output.

    Args:
      x: ``(N, H, W, C)``.
      cy, cx: ``(N,)`` integer centres.
      size: ``(size_h, size_w)``, e.g. `cutout_size`.
    """
    h, w = x.shape[1], x.shape[2]
    top, left = cy[:, None] - size[0] // 2, cx[:, None] - size[1] // 2
    rows = (jnp.arange(h)[None, :] >= top) & (jnp.arange(h)[None, :] < top + size[0])
    cols = (jnp.arange(w)[None, :] >= left) & (jnp.arange(w)[None, :] < left + size[1])
    erased = rows[:, :, None, None] & cols[:, None, :, None]  # (N, H, W, 1)
    return jnp.where(erased, jnp.zeros((), x.dtype), x)


def cutout_centres(key: Array, shape: tuple[int, ...], *,
                   ratio: float = CUTOUT_RATIO) -> tuple[Array, Array]:
    """The centres ``(cy, cx)`` that `cutout` draws: integers uniform in
    ``[0, side - size % 2]`` per image and axis, the official range.

    The square may therefore hang over the border (it is clipped): at the extremes exactly
    half of it, in that axis, is inside. The range is symmetric (even sizes: centres
    ``0..side``, the square covering ``[c - size/2, c + size/2)``; odd sizes: ``0..side-1``),
    so each pixel is erased with the same probability as its mirror image.
    """
    sh, sw = cutout_size(shape, ratio=ratio)
    ky, kx = jax.random.split(key)
    n = shape[0]
    return (jax.random.randint(ky, (n,), 0, shape[1] + 1 - sh % 2),
            jax.random.randint(kx, (n,), 0, shape[2] + 1 - sw % 2))


def cutout(x: Array, key: Array, *, ratio: float = CUTOUT_RATIO) -> Array:
    """The ``cutout`` policy: `cut` a square of half the side at `cutout_centres`.

    The paper: "masking with a random square of half image size"; the official code, which
    this follows, lets the square's centre reach the border, so near an edge less than
    ``size_h * size_w`` pixels are erased (at least a quarter of it).
    """
    cy, cx = cutout_centres(key, x.shape, ratio=ratio)
    return cut(x, cy, cx, size=cutout_size(x.shape, ratio=ratio))


# --- the policy ----------------------------------------------------------------------

_OPS = {"color": color, "translation": translation, "cutout": cutout}


def policy_key(key: Array, name: str) -> Array:
    """The key policy ``name`` uses: ``fold_in(key, POLICIES.index(name))``.

    Derived from the name, not from the position in the caller's policy, so switching one
    policy on or off leaves the others' draws as they were.
    """
    return jax.random.fold_in(key, POLICIES.index(name))


def diff_augment(x: Array, key: Array, *,
                 policy: tuple[str, ...] | str = POLICIES) -> Array:
    """DiffAugment: ``T(x)``, the policies' random transformations applied in turn.

    Apply it, with fresh keys, to the real and the fake batch before D in D's update and
    to the fake batch in G's update (see the module docstring: augmenting only the reals,
    or only in D's update, fails). Each transformation is differentiable in ``x``: pixel
    values are only shifted, scaled, moved (gathered) or erased, never rounded.

    Args:
      x: ``(N, H, W, C)`` float images in [-1, 1].
      key: PRNG key; each policy uses `policy_key` ``(key, name)`` and draws per example.
      policy: names from `POLICIES`, applied in the order given (the official code's
        behaviour; the default is the paper's order), as a tuple or a comma-separated
        string (`jaxgan.configs.parse_diffaug`). Static under ``jax.jit``. ``()`` or
        ``""``: ``x`` itself.

    Returns:
      The augmented images, shape and dtype of ``x``.

    Raises:
      ValueError: an unknown or repeated policy name; with a non-empty policy, an ``x``
        that is not a 4-D float array (DiffAugment is for images, not e.g. the 2-D points
        of a Gaussian mixture).
    """
    names = parse_diffaug(policy)
    if not names:
        return x
    if x.ndim != 4:
        raise ValueError(
            f"DiffAugment is for images (N, H, W, C); got an array of shape {x.shape} "
            f"(e.g. 2-D mixture points have nothing to translate or cut out): set the "
            f"policy to '' for non-image data")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"DiffAugment expects float images in [-1, 1]; got dtype {x.dtype}")
    for name in names:
        x = _OPS[name](x, policy_key(key, name))
    return x
