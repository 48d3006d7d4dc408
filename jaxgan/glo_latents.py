"""GLO's latent numerics (Bojanowski et al. 2017, arXiv:1707.05776): the latent table's
projection and PCA initialisation, the Gaussian (mixture) fitted to learned latents as a
sampler, interpolation, and fitting latents of held-out images with the generator frozen.

Pure numpy / JAX on arrays; the GLO step and run live in `jaxgan.methods.glo`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.configs import GLO_INITS as INITS
from jaxgan.configs import GLO_PROJECTIONS as PROJECTIONS
from jaxgan.progress import bar as progress_bar

Array = jax.Array


def project(z: Array, kind: str = "sphere") -> Array:
    """Rows of ``z`` onto the unit l2 sphere (``z / ||z||``) or ball (``z / max(||z||, 1)``)."""
    norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
    if kind == "sphere":
        return z / jnp.maximum(norm, 1e-12)
    if kind == "ball":
        return z / jnp.maximum(norm, 1.0)
    raise ValueError(f"projection must be one of {PROJECTIONS}, got {kind!r}")


class PCA(NamedTuple):
    """Principal components of flattened images: ``x ~ mean + coeffs @ components``."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (d, D), orthonormal rows, largest variance first
    variances: np.ndarray  # (d,)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float32).reshape(len(x), -1) - self.mean) @ self.components.T

    def decode(self, coeffs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return (coeffs @ self.components + self.mean).reshape((len(coeffs), *shape))


def fit_pca(x: np.ndarray, d: int, *, seed: int = 0) -> PCA:
    """The top ``d`` principal components of ``(N, ...)`` images.

    Fewer images than pixels: the thin SVD of the data. Up to 1,024 pixels (MNIST's 784):
    eigenvectors of the D x D covariance. Both exact. Larger images: randomized subspace
    iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4: 10 extra
    directions, 6 power iterations), O(N D d) instead of the O(D^3) of a 12,288-pixel
    eigendecomposition.
    """
    flat = np.asarray(x, np.float32).reshape(len(x), -1)
    n, dim = flat.shape
    if d > min(n, dim):
        raise ValueError(f"z_dim {d} exceeds the rank of {n} images of {dim} pixels")
    mean = flat.mean(0, dtype=np.float64).astype(np.float32)
    centred = flat - mean
    if n <= dim and n <= 4096:
        # Fewer images than pixels: the thin SVD of the data is exact and cheap.
        _, sv, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        components, variances = vt[:d], sv[:d] ** 2 / max(n - 1, 1)
    elif dim <= 1024:
        cov = (centred.T @ centred).astype(np.float64) / max(n - 1, 1)
        values, vectors = np.linalg.eigh(cov)
        top = np.argsort(values)[::-1][:d]
        components, variances = vectors[:, top].T, values[top]
    else:
        q = np.random.default_rng(seed).normal(size=(dim, min(d + 10, n, dim)))
        q = np.linalg.qr(centred @ q.astype(np.float32))[0]
        for _ in range(6):
            q = np.linalg.qr(centred.T @ q)[0]
            q = np.linalg.qr(centred @ q)[0]
        _, sv, vt = np.linalg.svd(q.T @ centred, full_matrices=False)
        components, variances = vt[:d], sv[:d] ** 2 / max(n - 1, 1)
    return PCA(mean, np.asarray(components, np.float32), np.asarray(variances, np.float32))


def init_latents(key: Array, n: int, d: int, kind: str, projection: str,
                 x: np.ndarray | None = None, pca: PCA | None = None) -> Array:
    """The initial ``(n, d)`` table: PCA coefficients of ``x`` or N(0, I), then projected."""
    if kind == "pca":
        if x is None:
            raise ValueError("init 'pca' needs the training images")
        pca = pca if pca is not None else fit_pca(x, d)
        z = jnp.asarray(pca.encode(x))
    elif kind == "normal":
        z = jax.random.normal(key, (n, d))
    else:
        raise ValueError(f"init must be one of {INITS}, got {kind!r}")
    return project(z, projection)


class Gaussian(NamedTuple):
    """A full-covariance Gaussian in latent space (the paper's sampler, Sec. 4), or a mixture.

    ``k = 1`` component is the paper's single Gaussian; ``k > 1`` (`fit_gaussian`'s
    ``components``) is an extension, not in the paper.
    """

    weights: np.ndarray  # (k,)
    mean: np.ndarray  # (k, d)
    chol: np.ndarray  # (k, d, d) lower Cholesky factors of the covariances


def _kmeans(z: np.ndarray, k: int, seed: int, iters: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = z[rng.choice(len(z), k, replace=False)]
    for _ in range(iters):
        d2 = np.sum(z * z, 1)[:, None] - 2 * z @ centres.T + np.sum(centres * centres, 1)
        assign = np.argmin(d2, axis=1)
        for j in range(k):
            members = z[assign == j]
            if len(members):
                centres[j] = members.mean(0)
    return assign


def fit_gaussian(z: Array | np.ndarray, components: int = 1, *, seed: int = 0,
                 iters: int = 25) -> Gaussian:
    """Full-covariance Gaussian(s) fitted to the learned latents ``(N, d)``.

    ``components = 1``: mean and covariance of all latents (the paper's). ``components = k``:
    k-means (Lloyd, ``iters`` rounds) then one Gaussian per cluster, weighted by its size.
    """
    z = np.asarray(z, np.float64)
    n, d = z.shape
    assign = np.zeros(n, int) if components == 1 else _kmeans(z, components, seed, iters)
    weights, means, chols = [], [], []
    for j in range(components):
        members = z[assign == j]
        if len(members) < 2:
            continue
        # Jitter keeps a cluster with fewer than d + 1 points positive definite.
        cov = np.cov(members, rowvar=False) + 1e-6 * np.eye(d)
        weights.append(len(members) / n)
        means.append(members.mean(0))
        chols.append(np.linalg.cholesky(cov))
    weights = np.asarray(weights)
    return Gaussian((weights / weights.sum()).astype(np.float32),
                    np.asarray(means, np.float32), np.asarray(chols, np.float32))


def sample_latents(gaussian: Gaussian, key: Array, n: int, projection: str = "sphere") -> Array:
    """``n`` latents: a component by weight, ``mean + chol @ eps``, projected like the training
    latents. The same key gives the same latents (figures use a fixed one)."""
    return _sample_latents(Gaussian(*map(jnp.asarray, gaussian)), key, n, projection)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _sample_latents(gaussian: Gaussian, key: Array, n: int, projection: str) -> Array:
    k_comp, k_eps = jax.random.split(key)
    comp = jax.random.choice(k_comp, len(gaussian.weights), (n,), p=gaussian.weights)
    eps = jax.random.normal(k_eps, (n, gaussian.mean.shape[-1]))
    z = gaussian.mean[comp] + jnp.einsum("nij,nj->ni", gaussian.chol[comp], eps)
    return project(z, projection)


def interpolate(z0: Array, z1: Array, points: int, projection: str = "sphere") -> Array:
    """``points`` latents on the segment from each row of ``z0`` to ``z1``, then projected:
    ``(k, d), (k, d) -> (k * points, d)``. On the sphere the projected segment is the great-circle
    arc between the endpoints (the paper interpolates linearly)."""
    t = jnp.linspace(0.0, 1.0, points)[None, :, None]
    z = (1 - t) * z0[:, None, :] + t * z1[:, None, :]
    return project(z.reshape(-1, z0.shape[-1]), projection)


def make_latent_fitter(generate: Callable, loss_fn: Callable, *, steps: int, lr: float,
                       projection: str) -> Callable:
    """``fit(g, z0, x) -> (z, losses)``: latents of held-out images with the generator frozen.

    ``generate(g, z) -> x_hat`` is the generator in inference mode with its arrays ``g``;
    ``loss_fn(x_hat, x) -> (N,)`` each image's loss. ``steps`` projected SGD steps of rate
    ``lr`` on each image's own loss, all in one jitted ``lax.scan``. ``losses`` is
    ``(steps + 1,)``: the mean loss before each step and at the end.
    """

    @jax.jit
    def fit(g, z0: Array, x: Array):
        def total(z):
            # Inference-mode G treats images independently: the sum's gradient for row i is
            # image i's own gradient.
            return jnp.sum(loss_fn(generate(g, z), x))

        def body(z, _):
            value, grad = jax.value_and_grad(total)(z)
            return project(z - lr * grad, projection), value / x.shape[0]

        z, losses = jax.lax.scan(body, project(z0, projection), None, length=steps)
        return z, jnp.append(losses, total(z) / x.shape[0])

    return fit


def held_out_init(latents: Array, pca: PCA, x: np.ndarray, *, projection: str = "sphere",
                  kind: str = "nearest", train_codes: np.ndarray | None = None) -> np.ndarray:
    """Starting latents for held-out images ``x``.

    ``"pca"``: their PCA coefficients, projected (how the training latents started).
    ``"nearest"``: the learned latent of the training image nearest in PCA space (``d``-dim
    codes ``train_codes = pca.encode(x_train)``, cheap to search), a start already on the
    learned manifold.
    """
    codes = pca.encode(x)
    if kind == "pca":
        return np.asarray(project(jnp.asarray(codes), projection))
    if kind == "nearest":
        if train_codes is None:
            raise ValueError("held_out_init 'nearest' needs train_codes = pca.encode(x_train)")
        train_codes = jnp.asarray(train_codes)

        @jax.jit
        def nearest(c):
            d2 = (jnp.sum(c * c, 1)[:, None] - 2 * c @ train_codes.T
                  + jnp.sum(train_codes * train_codes, 1)[None, :])
            return jnp.argmin(d2, axis=1)

        idx = np.concatenate([np.asarray(nearest(jnp.asarray(codes[i : i + 1000])))
                              for i in range(0, len(codes), 1000)])
        return np.asarray(latents)[idx]
    raise ValueError(f"held_out_init kind must be 'pca' or 'nearest', got {kind!r}")


def fit_latents(fit: Callable, g, x: np.ndarray, z0: np.ndarray, *, chunk: int = 1000,
                progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Fits latents to images ``x`` from ``z0`` with ``fit`` (`make_latent_fitter`) and the
    generator's arrays ``g``, in chunks; ``progress``: a bar over the images (a fit of 10,000
    MNIST images at the paper's settings takes minutes on a CPU).

    Returns ``(z, losses)``: the fitted ``(n, d)`` latents and the mean loss curve ``(steps + 1,)``.
    """
    zs, curves = [], []
    with progress_bar(total=len(x), desc="fitting latents", unit="image",
                      enabled=progress) as bar:
        for i in range(0, len(x), chunk):
            z, losses = fit(g, jnp.asarray(z0[i : i + chunk]), jnp.asarray(x[i : i + chunk]))
            zs.append(np.asarray(z))
            curves.append(np.asarray(losses) * len(z))
            bar.update(len(z))
    return np.concatenate(zs), np.sum(curves, axis=0) / len(x)


def save_pca(path: Path, pca: PCA) -> None:
    np.savez(path, mean=pca.mean, components=pca.components, variances=pca.variances)


def load_pca(path: Path) -> PCA:
    with np.load(path) as f:
        return PCA(f["mean"], f["components"], f["variances"])
