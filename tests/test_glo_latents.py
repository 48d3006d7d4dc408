"""GLO's latent numerics (`jaxgan.glo_latents`): projection, PCA, the Gaussian sampler,
interpolation, the held-out latent fitter and its starting latents."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from images import blobs

from jaxgan import glo_latents as gl

N, D = 32, 4


def test_project_onto_sphere_and_ball():
    z = jnp.array([[3.0, 4.0], [0.3, 0.4]])
    chex.assert_trees_all_close(gl.project(z, "sphere"), jnp.array([[0.6, 0.8], [0.6, 0.8]]))
    chex.assert_trees_all_close(gl.project(z, "ball"), jnp.array([[0.6, 0.8], [0.3, 0.4]]))
    with pytest.raises(ValueError, match="projection"):
        gl.project(z, "cube")


def test_pca_is_the_principal_components_and_init_projects_its_codes(tmp_path):
    x = blobs(N)
    pca = gl.fit_pca(x, D)
    flat = x.reshape(N, -1)
    _, _, vt = np.linalg.svd(flat - flat.mean(0), full_matrices=False)
    chex.assert_trees_all_close(np.abs(pca.components @ vt[:D].T), np.eye(D), atol=1e-4)
    codes = pca.encode(x)
    z = gl.init_latents(jax.random.PRNGKey(0), N, D, "pca", "sphere", x)
    chex.assert_trees_all_close(z, codes / np.linalg.norm(codes, axis=1, keepdims=True),
                                atol=1e-5)
    # decode inverts encode on the principal subspace.
    chex.assert_trees_all_close(pca.encode(pca.decode(codes, (28, 28, 1))), codes, atol=1e-3)
    gl.save_pca(tmp_path / "pca.npz", pca)
    chex.assert_trees_all_equal(tuple(gl.load_pca(tmp_path / "pca.npz")), tuple(pca))
    with pytest.raises(ValueError, match="rank"):
        gl.fit_pca(x[:3], D)


def _low_rank(n: int, side: int, seed: int = 0):
    """``n`` images of ``side**2`` pixels, exactly ``mean + u diag(s) v`` with orthonormal
    centred columns ``u`` and orthonormal rows ``v``: their principal components are ``v``'s
    rows and the variances ``s**2 / (n - 1)``, known without an SVD."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(np.concatenate([np.ones((n, 1)), rng.normal(size=(n, 4))], 1))[0][:, 1:]
    v = np.linalg.qr(rng.normal(size=(side * side, 4)))[0].T
    s = np.array([40.0, 30.0, 20.0, 10.0])
    flat = 0.3 + (u * s) @ v
    return flat.reshape(n, side, side, 1).astype(np.float32), v, s**2 / (n - 1)


# Fewer images than pixels: thin SVD; more, up to 1,024 pixels: covariance; more pixels:
# randomized subspace iteration.
@pytest.mark.parametrize("n, side", [(300, 20), (500, 20), (1100, 33)])
def test_every_pca_path_finds_the_principal_components(n, side):
    x, v, variances = _low_rank(n, side)
    pca = gl.fit_pca(x, 4)
    chex.assert_trees_all_close(np.abs(pca.components @ v.T), np.eye(4), atol=1e-3)
    chex.assert_trees_all_close(pca.variances, variances, rtol=1e-3)
    chex.assert_trees_all_close(pca.mean, np.full(side * side, 0.3), atol=1e-4)


def test_init_latents_normal_and_refusals():
    z = gl.init_latents(jax.random.PRNGKey(0), 10, D, "normal", "ball")
    assert z.shape == (10, D) and np.all(np.linalg.norm(z, axis=1) <= 1 + 1e-6)
    with pytest.raises(ValueError, match="training images"):
        gl.init_latents(jax.random.PRNGKey(0), 10, D, "pca", "sphere")
    with pytest.raises(ValueError, match="init"):
        gl.init_latents(jax.random.PRNGKey(0), 10, D, "uniform", "sphere")


def test_gaussian_fit_sampling_and_interpolation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    z = rng.normal(size=(20000, 4)) @ a.T + np.array([1.0, 0, 0, -1])
    g = gl.fit_gaussian(z)
    chex.assert_trees_all_close(g.weights, np.ones(1))
    chex.assert_trees_all_close(g.mean[0], z.mean(0), atol=1e-5)
    chex.assert_trees_all_close(g.chol[0] @ g.chol[0].T, np.cov(z, rowvar=False), rtol=1e-4,
                                atol=1e-4)
    s = gl.sample_latents(g, jax.random.PRNGKey(0), 100)
    chex.assert_trees_all_close(jnp.linalg.norm(s, axis=1), jnp.ones(100), atol=1e-6)
    chex.assert_trees_all_equal(s, gl.sample_latents(g, jax.random.PRNGKey(0), 100))
    # Two far-apart clusters: the mixture finds both, with their weights and spreads.
    two = np.concatenate([rng.normal(size=(300, 4)) * 0.1 + 5, rng.normal(size=(100, 4)) * 0.1])
    mix = gl.fit_gaussian(two, 2)
    order = np.argsort(mix.weights)
    chex.assert_trees_all_close(mix.weights[order], np.array([0.25, 0.75]))
    chex.assert_trees_all_close(mix.mean[order], np.array([[0.0] * 4, [5.0] * 4]), atol=0.05)
    z0, z1 = gl.project(jnp.asarray(z[:3])), gl.project(jnp.asarray(z[3:6]))
    path = gl.interpolate(z0, z1, 5).reshape(3, 5, 4)
    chex.assert_trees_all_close(path[:, 0], z0, atol=1e-6)
    chex.assert_trees_all_close(path[:, -1], z1, atol=1e-6)


def _linear_problem(n: int = 5, seed: int = 0):
    """A frozen linear "generator" ``x_hat = z @ w`` and images it can reproduce."""
    rng = np.random.default_rng(seed)
    w = jnp.asarray(rng.normal(size=(D, 12)), jnp.float32)
    target = gl.project(jnp.asarray(rng.normal(size=(n, D)), jnp.float32))
    x = target @ w
    z0 = np.asarray(gl.project(jnp.asarray(rng.normal(size=(n, D)), jnp.float32)))
    return w, x, z0


def _generate(w, z):
    return z @ w


def _loss(x_hat, x):
    return jnp.mean(jnp.square(x_hat - x), axis=-1)  # (N,): each example's own loss


def test_the_latent_fitter_is_projected_sgd_on_each_examples_loss():
    w, x, z0 = _linear_problem()
    lr = 0.05
    one = gl.make_latent_fitter(_generate, _loss, steps=1, lr=lr, projection="sphere")
    z1, curve = one(w, jnp.asarray(z0), x)
    # By hand: each row steps along the gradient of its own image's loss, then projected.
    grad = jax.grad(lambda z: jnp.sum(_loss(_generate(w, z), x)))(jnp.asarray(z0))
    chex.assert_trees_all_close(z1, gl.project(z0 - lr * grad), atol=1e-6)
    chex.assert_trees_all_close(curve, jnp.array([jnp.mean(_loss(z0 @ w, x)),
                                                  jnp.mean(_loss(z1 @ w, x))]), rtol=1e-5)

    fit = gl.make_latent_fitter(_generate, _loss, steps=40, lr=lr, projection="sphere")
    z, curve = gl.fit_latents(fit, w, np.asarray(x), z0)
    assert curve.shape == (41,) and curve[-1] < 0.5 * curve[0]
    chex.assert_trees_all_close(np.linalg.norm(z, axis=1), np.ones(len(z)), atol=1e-6)
    # In chunks (the last one short): the same latents, the same mean curve.
    z_c, curve_c = gl.fit_latents(fit, w, np.asarray(x), z0, chunk=2)
    chex.assert_trees_all_close(z_c, z, atol=1e-6)
    chex.assert_trees_all_close(curve_c, curve, rtol=1e-5)


def test_held_out_init_pca_and_nearest():
    x = blobs(N)
    pca = gl.fit_pca(x, D)
    latents = gl.init_latents(jax.random.PRNGKey(1), N, D, "normal", "sphere")
    held_out = blobs(6, seed=1)
    z0 = gl.held_out_init(latents, pca, held_out, kind="pca")
    codes = pca.encode(held_out)
    chex.assert_trees_all_close(z0, codes / np.linalg.norm(codes, axis=1, keepdims=True),
                                atol=1e-5)
    ball = gl.held_out_init(latents, pca, held_out, projection="ball", kind="pca")
    chex.assert_trees_all_close(ball, np.asarray(gl.project(jnp.asarray(codes), "ball")))
    near = gl.held_out_init(latents, pca, x[:5], kind="nearest", train_codes=pca.encode(x))
    chex.assert_trees_all_close(near, latents[:5])  # a training image is its own nearest
    # A held-out image gets the latent of the training image nearest in PCA space.
    train_codes = pca.encode(x)
    nearest = np.argmin(((codes[:, None] - train_codes[None]) ** 2).sum(-1), axis=1)
    got = gl.held_out_init(latents, pca, held_out, kind="nearest", train_codes=train_codes)
    chex.assert_trees_all_close(got, np.asarray(latents)[nearest])
    with pytest.raises(ValueError, match="train_codes"):
        gl.held_out_init(latents, pca, held_out, kind="nearest")
    with pytest.raises(ValueError, match="kind"):
        gl.held_out_init(latents, pca, held_out, kind="zeros")
