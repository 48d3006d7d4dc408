"""Runs in a subprocess with 8 CPU devices (``tests/test_mesh.py`` starts it): every method's
step on a 1-device mesh and on an 8-device mesh, from the same initial state on the same
global batch, and what differs between them.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/multidevice.py MNIST_DIR OUT

writes into ``OUT``:
  steps.json      per case, the largest difference of each state leaf and metric (absolute,
                  and relative to the leaf's scale), and whether the 8-device program
                  all-reduces; and two ring8 steps as one call against two calls, on 8
  compare.json    compare's per-seed losses and evaluations on 8 devices and on 1
  resumed.json    a straight ring8 run against runs saved on 8 (1) devices, resumed on 1 (8)
  placement.json  the errors and defaults of device counts, and a state's local copy
and the run folders behind ``resumed.json`` (``saved_on_1`` is continued by the test).
"""

from __future__ import annotations

import json
import re
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np

from jaxgan import comparison, configs, mesh, methods, runs
from jaxgan.data import load_dataset


def cases(mnist: str) -> dict:
    """Small configs of every method: a DCGAN pair with BatchNorm, an MLP GAN, the K+1 GAN,
    GLO, and the cGAN MLPs (labels, dropout, two D updates a step)."""
    return {
        "dcgan_bn": configs.DCGANConfig(dataset="mnist", data_dir=mnist, batch_size=16,
                                        width=8),
        "mlp_ring8": configs.MixtureConfig(batch_size=64),
        "cgan_mlp_dropout_ncritic2": configs.CGANMnistConfig(
            data_dir=mnist, batch_size=16, objective="hinge", n_critic=2),
        # The K+1 GAN's code paths on narrower layers than the official 1000-500-250-250-250.
        "ssl": configs.SSLConfig(data_dir=mnist, batch_size=16, d_hidden="64,32,16",
                                 g_hidden="32,32", z_dim=16, init_examples=64),
        "glo": configs.GLOMnistConfig(data_dir=mnist, batch_size=16),
    }


def run_step(place: mesh.Placement, step_fn, state, batch) -> tuple[dict, dict, str]:
    """One step on ``place``: the new state, the metrics and the compiled program's text."""
    state, batch = place.put_state(state), place.put_batch(batch)
    compiled = place.jit(step_fn, like=state).lower(state, batch).compile()
    state, metrics = compiled(state, batch)
    return jax.device_get(state), jax.device_get(metrics), compiled.as_text()


def differences(a, b) -> dict:
    """Per leaf: the largest absolute difference and that over the leaf's largest value."""
    out = {}
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        d = float(np.max(np.abs(x - y))) if x.size else 0.0
        out[jax.tree_util.keystr(path)] = [d, d / max(float(np.max(np.abs(x))), 1e-12)]
    return out


def compare_steps(name: str, cfg) -> dict:
    method = methods.for_config(cfg)
    data = method.load_data(cfg)
    nets, state = method.init(cfg, method.describe(cfg, data), data)
    state = jax.device_get(state)  # host arrays: each mesh gets its own copy to donate
    step_fn, per_step = method.make_step(cfg, nets)
    batch = next(method.batches(cfg, nets, data, per_step, 0, (0, 1)))
    one = run_step(mesh.placement(1), step_fn, state, batch)
    eight = run_step(mesh.placement(8), step_fn, state, batch)
    # Adam's first update is about lr * sign(gradient): where a gradient is rounding noise (a
    # bias before BatchNorm) the two meshes may step opposite ways, 2 lr apart.
    lr = [getattr(cfg, k) for k in ("g_lr", "d_lr", "lr", "theta_lr") if hasattr(cfg, k)]
    # The 8-device program's collective ops (op names, as ``all-gather(`` in the HLO text).
    collectives = re.findall(r" (all-reduce|all-gather|all-to-all|collective-permute|"
                             r"reduce-scatter)(?:-start)?\(", eight[2])
    return {"state": differences(one[0], eight[0]), "metrics": differences(one[1], eight[1]),
            "all_reduce": "all-reduce" in eight[2], "collectives": sorted(set(collectives)),
            "lr": max(lr)}


def two_a_call(cfg) -> dict:
    """Two steps as one call (`mesh.Placement.jit` with ``steps=2``) on 8 devices against two
    calls of one step, from the same state on the same batches."""
    method = methods.for_config(cfg)
    data = method.load_data(cfg)
    nets, state = method.init(cfg, method.describe(cfg, data), data)
    state = jax.device_get(state)
    step_fn, per_step = method.make_step(cfg, nets)
    stream = method.batches(cfg, nets, data, per_step, 0, (0, 1))
    batches = [next(stream), next(stream)]
    place = mesh.placement(8)
    singles, s = [], place.put_state(state)
    one = place.jit(step_fn, like=state)
    for b in batches:
        s, m = one(s, place.put_batch(b))
        singles.append(jax.device_get(m))
    # Host arrays stacked, as `jaxgan.loop` stacks a CPU run's batches: the program's input
    # sharding (`Placement.jit`'s) splits them.
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *batches)
    two = place.jit(step_fn, like=state, steps=2)
    s2, m2 = two(place.put_state(state), stacked)
    m2 = jax.device_get(m2)
    return {"state": differences(jax.device_get(s), jax.device_get(s2)),
            "metrics": differences(singles, [{k: v[i] for k, v in m2.items()} for i in (0, 1)])}


def compare_tables() -> dict:
    """`jaxgan compare`'s seeds (8 of ring8's nsgan) on 8 devices and on 1: the per-seed
    losses and evaluations its table is made of."""
    data = load_dataset("ring8")
    evaluate = comparison.make_evaluator("ring8", None)
    out = {}
    for n in (8, 1):
        _, _, losses, evals, _ = comparison.train_seeds(
            comparison.parse_entry("nsgan", comparison.base_config("ring8")), data, 8, 20,
            log_every=5, eval_every=10,
            evaluate=evaluate, devices=n)
        out[n] = {"nsgan": {"losses": losses, "evals": evals}}
    return out


def resumed_across(out: Path) -> dict:
    """ring8 for 12 steps: straight on 1 device, and saved at step 6 on 8 devices (on 1)
    then resumed on 1 (on 8); the final states."""
    cfg = configs.MixtureConfig(batch_size=64, log_every=3)
    states = {"straight": runs.train(configs.replace(cfg, steps=12), out / "straight",
                                     progress=False, devices=1).state}
    for first, then in ((8, 1), (1, 8)):
        run = out / f"saved_on_{first}"
        runs.train(configs.replace(cfg, steps=6), run, progress=False, devices=first)
        resumed = runs.train(configs.replace(cfg, steps=12), run, progress=False,
                             devices=then, resume=True)
        states[f"saved_on_{first}_resumed_on_{then}"] = resumed.state
    return {k: jax.device_get(v) for k, v in states.items()}


def main(mnist: str, out: str) -> None:
    assert jax.device_count() == 8, jax.devices()
    result = {}
    for name, cfg in cases(mnist).items():
        t = time.perf_counter()
        result[name] = compare_steps(name, cfg)
        result[name]["seconds"] = time.perf_counter() - t
    result["two_a_call"] = two_a_call(cases(mnist)["mlp_ring8"])
    Path(out, "steps.json").write_text(json.dumps(result, indent=1))
    Path(out, "compare.json").write_text(json.dumps(compare_tables()))
    states = resumed_across(Path(out))
    Path(out, "resumed.json").write_text(json.dumps(
        {k: differences(states["straight"], v) for k, v in states.items()}))
    errors = {}
    for name, attempt in (("batch_12", lambda: mesh.placement(8).check_batch(12, "--batch-size")),
                          ("devices_9", lambda: mesh.placement(9))):
        try:
            attempt()
        except ValueError as e:
            errors[name] = str(e)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        errors["default_for_batch_100"] = [mesh.data_placement(100).size,
                                           [str(w.message) for w in caught]]
    eight = mesh.placement(8)
    local = eight.local(eight.put_state({"w": np.arange(6.0)}))["w"]
    errors["local_copy"] = [len(local.devices()), local.tolist()]
    Path(out, "placement.json").write_text(json.dumps(errors))


if __name__ == "__main__":
    main(*sys.argv[1:])
