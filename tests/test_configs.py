"""Configs: saved and loaded as JSON unchanged, told apart setting by setting, and the
Improved Techniques nested in every GAN config (validated, reachable by their flat names)."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import configs
from jaxgan.configs import (
    CONFIGS,
    GLOConfig,
    MixtureConfig,
    SSLConfig,
    Techniques,
    TrainConfig,
    differences,
    load_config,
)


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(CONFIGS)), lr=st.floats(1e-6, 1.0),
       seed=st.integers(0, 2**31 - 1), smoothing=st.floats(0.5, 1.0))
def test_a_saved_config_loads_back_equal(tmp_path_factory, name, lr, seed, smoothing):
    # Every method's config, a nested technique included where the config has them.
    cls = CONFIGS[name]
    field = next(f for f in ("d_lr", "theta_lr", "lr") if f in configs.field_types(cls))
    changes = {field: lr, "seed": seed}
    if "label_smoothing" in configs.field_types(cls):
        changes["label_smoothing"] = smoothing
    cfg = configs.replace(cls(), **changes)
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(cfg.to_json())
    loaded = load_config(path)
    assert loaded == cfg and type(loaded) is type(cfg)


def test_differences_names_each_changed_added_or_dropped_setting():
    saved = {"d_lr": 1e-4, "steps": 100, "seeds": 10, "only_saved": 1}
    now = {"d_lr": 1e-4, "steps": 200, "seeds": 3, "only_now": 2}
    assert differences(saved, now) == {
        "only_now": (None, 2), "only_saved": (1, None), "seeds": (10, 3), "steps": (100, 200)}
    assert differences(now, now) == {}


def test_every_config_names_a_method_and_a_config_of_each_method_exists():
    assert {cls.method for cls in CONFIGS.values()} == {"gan", "glo", "ssl"}
    assert CONFIGS["glo_mnist"].method == "glo" and CONFIGS["ssl_mnist"].method == "ssl"


def test_an_unknown_config_class_or_field_is_named():
    with pytest.raises(ValueError, match="unknown config class 'Nope'"):
        configs.from_dict({"config": "Nope"})
    with pytest.raises(ValueError, match="no field"):
        configs.replace(CONFIGS["mixture"](), hiddn=3)
    assert dataclasses.is_dataclass(CONFIGS["mixture"]().techniques)


# --------------------------------------------------------------------------------------
# The Improved Techniques, nested in every GAN config
# --------------------------------------------------------------------------------------


def test_techniques_names_and_validation():
    t = Techniques(feature_matching=True, historical_avg=0.1, label_smoothing=0.9)
    assert t.names == ("fm", "ha", "ls") and Techniques().names == ()
    assert Techniques(minibatch_disc=True, vbn=True).names == ("mbd", "vbn")
    assert configs.FM_REDUCTIONS == ("mean", "sum")
    with pytest.raises(ValueError, match="fm_reduce"):
        Techniques(fm_reduce="max")
    with pytest.raises(ValueError, match="label_smoothing"):
        Techniques(label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        Techniques(label_smoothing=0.0)
    with pytest.raises(ValueError, match="historical_avg"):
        Techniques(historical_avg=-0.1)
    with pytest.raises(ValueError, match="mbd_kernels"):
        Techniques(mbd_kernel_dim=0)
    with pytest.raises(ValueError, match="vbn_ref_size"):
        Techniques(vbn_ref_size=0)
    # A config validates its techniques however they are set.
    with pytest.raises(ValueError, match="fm_reduce"):
        configs.replace(MixtureConfig(), fm_reduce="max")


def test_every_technique_is_a_flat_config_field():
    # The CLI's flags and compare's +switches name the nested techniques by their own names.
    types = configs.field_types(TrainConfig)
    for f in dataclasses.fields(Techniques):
        assert f.name in types, f.name
    assert "techniques" not in types
    assert types["label_smoothing"] is float and types["vbn_ref_size"] is int
    cfg = configs.replace(MixtureConfig(), feature_matching=True, steps=3)
    assert cfg.techniques.feature_matching and cfg.steps == 3
    assert cfg.techniques == Techniques(feature_matching=True)  # the others untouched
    assert not MixtureConfig().techniques.feature_matching
    flat = configs.flat_dict(cfg)
    assert flat["feature_matching"] is True and flat["steps"] == 3 and "techniques" not in flat
    with pytest.raises(ValueError, match="no field"):
        configs.replace(cfg, feature_matchin=True)


OLD_MIXTURE_JSON = """{"config": "MixtureConfig", "objective": "lsgan", "dataset": "ring8",
 "data_dir": null, "arch": "mlp", "conditional": false, "embed_dim": 10, "dropout": 0.3,
 "resolution": null, "width": 64, "d_norm": null, "hidden": 16, "depth": 2,
 "activation": "tanh", "z_dim": 256, "z_dist": "normal", "batch_size": 512, "g_lr": 0.001,
 "d_lr": 0.0001, "beta1": 0.5, "beta2": 0.999, "n_critic": null, "epochs": 10,
 "steps": 35000, "seed": 0, "log_every": 100, "num_samples": 2500, "eval_every": 1,
 "feature_matching": true, "fm_layer": "features", "fm_reduce": "mean",
 "minibatch_disc": false, "mbd_kernels": 100, "mbd_kernel_dim": 5, "mbd_self_term": true,
 "historical_avg": 0.1, "label_smoothing": 0.9, "vbn": false, "vbn_ref_size": null}"""


def test_an_old_flat_config_json_folds_its_techniques_in(tmp_path):
    # A config.json written before the techniques were nested still loads.
    t = Techniques(feature_matching=True, historical_avg=0.1, label_smoothing=0.9)
    cfg = MixtureConfig(techniques=t, hidden=16)
    flat = json.loads(cfg.to_json())
    flat.update(flat.pop("techniques"))
    flat.pop("stabilisers")  # the stabilisers came later still: their defaults fill in
    assert flat == {"config": "MixtureConfig",
                    **{k: v for k, v in configs.flat_dict(cfg).items()
                       if k not in configs.field_types(configs.Stabilisers)}}
    assert configs.from_dict(flat).techniques == t
    assert configs.from_dict(flat) == cfg
    path = tmp_path / "config.json"
    path.write_text(json.dumps(flat))
    assert load_config(path) == cfg
    # A config.json as jaxgan wrote it before the refactor (commit ce641d8).
    written = json.loads(OLD_MIXTURE_JSON)
    assert "techniques" not in written and written["feature_matching"] is True
    assert configs.from_dict(written) == configs.replace(
        MixtureConfig(hidden=16), feature_matching=True, historical_avg=0.1, label_smoothing=0.9)
    # Only the technique keys given are set; the rest keep their defaults.
    partial = {"config": "TrainConfig", "objective": "lsgan", "vbn": True}
    assert configs.from_dict(partial) == TrainConfig(objective="lsgan",
                                                     techniques=Techniques(vbn=True))


@pytest.mark.parametrize("cfg", [
    TrainConfig(objective="hinge", n_critic=2, steps=7,
                techniques=Techniques(minibatch_disc=True, mbd_kernels=7, vbn=True,
                                      vbn_ref_size=9, fm_layer="hidden/0")),
    GLOConfig(z_dim=12, projection="ball", fit_lr=0.5, sampler_components=3),
    SSLConfig(labels=20, label_seed=4, unlabelled="all", d_hidden="30,20", ema_rate=0.0),
], ids=["TrainConfig", "GLOConfig", "SSLConfig"])
def test_to_json_and_load_config_round_trip(tmp_path, cfg):
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json())
    loaded = load_config(path)
    assert loaded == cfg and type(loaded) is type(cfg)
    assert json.loads(path.read_text())["config"] == type(cfg).__name__
    assert configs.from_dict(json.loads(cfg.to_json())) == cfg


def test_a_config_json_with_an_unknown_field_is_refused_naming_it_and_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"config": "MixtureConfig", "hiden": 3}')
    with pytest.raises(ValueError, match=r"config.json: MixtureConfig has no field hiden"):
        load_config(path)
