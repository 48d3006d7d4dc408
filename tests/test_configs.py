"""Configs: saved and loaded as JSON unchanged, and told apart setting by setting."""

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan.configs import CONFIGS, differences, load_config


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(CONFIGS)), d_lr=st.floats(1e-6, 1.0),
       seed=st.integers(0, 2**31 - 1))
def test_a_saved_config_loads_back_equal(tmp_path_factory, name, d_lr, seed):
    cfg = dataclasses.replace(CONFIGS[name](), d_lr=d_lr, seed=seed)
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
