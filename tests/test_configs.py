"""Configs: saved and loaded as JSON unchanged, and told apart setting by setting."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import configs
from jaxgan.configs import CONFIGS, differences, load_config


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
