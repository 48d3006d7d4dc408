"""The public API: what `import jaxgan` gives, and that it does not hide a submodule."""

import importlib
import pkgutil

import jaxgan


def test_the_public_names_exist_and_hide_no_submodule():
    for name in jaxgan.__all__:
        assert hasattr(jaxgan, name), name
    submodules = {m.name for m in pkgutil.iter_modules(jaxgan.__path__)}
    assert not submodules & set(jaxgan.__all__) - {"losses"}
    for name in submodules:  # each is still reachable as jaxgan.<name>
        assert importlib.import_module(f"jaxgan.{name}").__name__ == f"jaxgan.{name}"


def test_a_run_trains_and_samples_from_python(tmp_path):
    cfg = jaxgan.MixtureConfig(objective="nsgan", hidden=16, z_dim=4, batch_size=32, steps=4,
                               log_every=2, num_samples=50)
    run = jaxgan.train(cfg, tmp_path / "run", progress=False)
    assert int(run.state.step) == 4
    assert jaxgan.sample(run, n=8, out=tmp_path / "s.npz").exists()
    assert jaxgan.load_run(tmp_path / "run").cfg == cfg
