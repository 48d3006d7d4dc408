"""The public API: what `import jaxgan` gives, and that it does not hide a submodule."""

import importlib
import inspect
import json
import pkgutil

import pytest

import jaxgan


def test_the_public_names_exist_and_hide_no_submodule():
    for name in jaxgan.__all__:
        assert hasattr(jaxgan, name), name
    submodules = {m.name for m in pkgutil.iter_modules(jaxgan.__path__)}
    assert not submodules & set(jaxgan.__all__) - {"losses"}
    for name in submodules:  # each is still reachable as jaxgan.<name>
        assert importlib.import_module(f"jaxgan.{name}").__name__ == f"jaxgan.{name}"


def test_every_public_function_and_base_type_documents_an_example():
    documented = [getattr(jaxgan, name) for name in jaxgan.__all__
                  if callable(getattr(jaxgan, name)) and not inspect.isclass(getattr(jaxgan, name))]
    documented += [jaxgan.TrainConfig, jaxgan.CompareConfig, jaxgan.Objective]
    assert len(documented) >= 10
    for obj in documented:
        assert "Example" in (obj.__doc__ or ""), obj.__name__


def test_a_run_trains_and_samples_from_python(tmp_path):
    cfg = jaxgan.MixtureConfig(objective="nsgan", hidden=16, z_dim=4, batch_size=32, steps=4,
                               log_every=2, num_samples=50)
    run = jaxgan.train(cfg, tmp_path / "run", progress=False)
    assert int(run.state.step) == 4
    assert jaxgan.sample(run, n=8, out=tmp_path / "s.npz").exists()
    assert jaxgan.load_run(tmp_path / "run").cfg == cfg
    # evaluate: a run (its own data), or samples from anywhere with the data they imitate.
    scores = jaxgan.evaluate(run)["samples"]  # reverse KL is NaN when no mode is hit
    assert scores.keys() == json.loads((tmp_path / "run" / "eval.json").read_text())["samples"].keys()
    assert jaxgan.evaluate(tmp_path / "s.npz", dataset="ring8")["samples"]
    with pytest.raises(ValueError, match="needs the dataset"):
        jaxgan.evaluate(tmp_path / "s.npz")
    with pytest.raises(ValueError, match="a run on ring8, not mnist"):
        jaxgan.evaluate(run, dataset="mnist")
