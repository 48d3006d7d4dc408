"""A user's own objective by import path: found, checked, trained and compared beside the
built-in ones; every way the path can be wrong is a message that says so."""

import json
import sys
import textwrap

import pytest

from jaxgan import cli, objectives

MODULE = textwrap.dedent('''
    import jax
    import jax.numpy as jnp
    from jaxgan.objectives import Objective

    def _d(real, fake):  # relativistic average GAN (Jolicoeur-Martineau 2018)
        return (jax.nn.softplus(-(real - jnp.mean(fake))) + jax.nn.softplus(fake - jnp.mean(real)))

    def _g(fake):
        return jax.nn.softplus(-fake)

    rel = Objective("rel", _d, _g, "relativistic average (G side simplified)", "a test")
    not_an_objective = 3
    wrong_shape = Objective("ws", lambda r, f: jnp.mean(r - f), _g, "scalar D loss", "a test")
''')


def importable(name, text, tmp_path, monkeypatch):
    """A module ``name`` with ``text`` that the test can import, forgotten afterwards."""
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    yield from importable("my_losses", MODULE, tmp_path, monkeypatch)


def test_an_objective_is_found_by_import_path(user_module):
    objective = objectives.get_objective(f"{user_module}:rel")
    assert objective.name == "rel" and objective.summary.startswith("relativistic")


@pytest.mark.parametrize("path, said", [
    ("no_such_module:rel", "module 'no_such_module' does not import"),
    ("my_losses:nope", "module 'my_losses' has no 'nope'"),
    ("my_losses:not_an_objective", "is a int, not a jaxgan.objectives.Objective"),
    ("my_losses:wrong_shape", "d_loss must give one loss per example (shape (4,) for logits "
     "of shape (4,)), got ()"),
    ("my_losses:", "expected module:attribute"),
])
def test_a_wrong_path_says_what_is_wrong(user_module, path, said):
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
        objectives.get_objective(path)


def test_register_adds_a_name_and_refuses_to_shadow_a_built_in(user_module):
    rel = objectives.get_objective(f"{user_module}:rel")
    try:
        assert objectives.register(rel) is rel and objectives.get_objective("rel") is rel
        with pytest.raises(ValueError, match="already registered"):
            objectives.register(rel)
    finally:
        objectives.OBJECTIVES.pop("rel", None)


def test_compare_runs_a_users_objective_beside_a_built_in_one(user_module, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli.main(["compare", "--objectives", f"nsgan,{user_module}:rel", "--seeds", "1",
                     "--steps", "4", "--log-every", "2", "--set", "hidden=16",
                     "--set", "z_dim=4", "--set", "batch_size=32", "--out", str(out),
                     "--no-progress"]) == 0
    assert f"| {user_module}:rel |" in capsys.readouterr().out
    assert set(json.loads((out / "per_seed.json").read_text())) >= {
        "nsgan", f"{user_module}:rel"}


NETS = textwrap.dedent('''
    import math
    from flax import nnx

    class G(nnx.Module):
        def __init__(self, z_dim, out_shape, rngs):
            self.out = nnx.Linear(z_dim, math.prod(out_shape), rngs=rngs)
            self.shape = tuple(out_shape)

        def __call__(self, z):
            return nnx.tanh(self.out(z)).reshape(z.shape[0], *self.shape)

    class D(nnx.Module):
        def __init__(self, in_shape, rngs):
            self.hidden = nnx.Linear(math.prod(in_shape), 16, rngs=rngs)
            self.out = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(nnx.relu(self.hidden(x.reshape(x.shape[0], -1))))[:, 0]

    class TwoLogits(D):
        def __call__(self, x):
            return self.out(nnx.relu(self.hidden(x.reshape(x.shape[0], -1))))

    class NoRngs(nnx.Module):
        def __init__(self, in_shape):
            pass
''')


@pytest.fixture
def user_nets(tmp_path, monkeypatch):
    yield from importable("my_nets", NETS, tmp_path, monkeypatch)


def test_a_users_networks_train_sample_and_resume(user_nets, tmp_path, capsys):
    flags = ["train", "--dataset", "ring8", "--arch", f"{user_nets}:G,D", "--z-dim", "4",
             "--batch-size", "32", "--log-every", "2", "--num-samples", "50", "--no-progress"]
    out = tmp_path / "run"
    assert cli.main([*flags, "--steps", "4", "--out", str(out)]) == 0
    assert cli.main([*flags, "--steps", "6", "--out", str(out), "--resume"]) == 0
    assert cli.main(["sample", "--checkpoint", str(out), "--out", str(tmp_path / "s.png")]) == 0
    assert "(the run at step 6)" in capsys.readouterr().out


@pytest.mark.parametrize("arch, said", [
    ("my_nets:G", "expected module:Generator,Discriminator"),
    ("my_nets:G,TwoLogits", "the Discriminator maps 2 examples to (2, 1); one logit per "
     "example, (2,), was expected"),
    ("my_nets:G,NoRngs", "build as Generator(z_dim=, out_shape=, rngs=) and "
     "Discriminator(in_shape=, rngs=)"),
    ("my_nets:G,Nope", "module 'my_nets' has no 'Nope'"),
])
def test_wrong_networks_say_what_is_wrong(user_nets, arch, said, tmp_path, capsys):
    assert cli.main(["train", "--dataset", "ring8", "--arch", arch, "--steps", "2",
                     "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert said in capsys.readouterr().err
