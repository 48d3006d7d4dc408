"""Short runs of every method whose outputs must not change when code moves.

``python tests/golden_runs.py --write`` records them in ``tests/data/golden.json`` (done once,
on the code before a refactor); ``tests/test_golden.py`` reruns them and compares. Each run
is a few steps: enough for every code path of the step (techniques, n_critic, labels, the
latent table, the K+1 losses, the seed stack) to leave its mark on the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

GOLDEN = Path(__file__).parent / "data" / "golden.json"

# Arrays that moved to another path of their state since the recording, with the same values:
# the K+1 GAN's SSLState became a GANState with its D average in ``extra``.
MOVED = {"ssl_mnist": (".d_avg", ".extra['d_avg']")}


def recorded() -> dict:
    """golden.json, with the state paths of `MOVED` renamed."""
    out = json.loads(GOLDEN.read_text())
    for name, (old, new) in MOVED.items():
        state = out[name]["state"]
        out[name]["state"] = {(new + k[len(old):] if k.startswith(old) else k): v
                              for k, v in state.items()}
    return out


def fingerprint(tree) -> dict:
    """Per-leaf float64 sums and sums of squares of a state: any changed bit shows up."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        a = np.asarray(jax.device_get(leaf))
        if a.dtype.kind == "V" or a.dtype == object:
            continue
        a = a.astype(np.float64) if a.dtype.kind in "fiub" else a
        out[jax.tree_util.keystr(path)] = [float(a.sum()), float(np.square(a).sum())]
    return out


def _metrics(run_dir: Path) -> list[dict]:
    rows = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        r.pop("time", None)
        r.pop("elapsed", None)
        rows.append(r)
    return rows


def capture(mnist_dir: str, tmp: Path, only: list[str] | None = None) -> dict:
    from jaxgan import comparison, configs, runs
    from jaxgan.configs import Techniques

    out: dict = {}

    def want(name):
        return only is None or name in only

    if want("compare_ring8"):
        cc = comparison.CompareConfig(objectives="gan,nsgan+fm+historical_avg=0.001+ls,lsgan", seeds=2, steps=60,
                                      eval_every=30, log_every=20)
        res = comparison.compare(cc, tmp / "compare", progress=False)
        # A record's wall-clock time is not a result.
        out["compare_ring8"] = {
            e: {"losses": [{k: v for k, v in rec.items() if k != "time"} for rec in r["losses"]],
                "evals": r["evals"]}
            for e, r in res["runs"].items()}

    gan_runs = {
        "lsgan_mnist": configs.LSGANMnistConfig(data_dir=mnist_dir, steps=12, log_every=4,
                                                num_samples=16),
        "cgan_mnist_mbd": configs.CGANMnistConfig(data_dir=mnist_dir, steps=6, log_every=2,
                                                  num_samples=20, techniques=Techniques(
                                                      minibatch_disc=True, mbd_kernels=8)),
        "dcgan_wgangp_vbn": configs.DCGANConfig(data_dir=mnist_dir, objective="wgan-gp",
                                                width=8, batch_size=16, steps=4, log_every=2,
                                                num_samples=16, d_norm="batch",
                                                techniques=Techniques(vbn=True)),
        "ring8_techniques": configs.MixtureConfig(
            objective="nsgan", steps=30, log_every=10, num_samples=100, techniques=Techniques(
                feature_matching=True, fm_layer="base/hidden/0", historical_avg=1e-3,
                label_smoothing=0.9, minibatch_disc=True, mbd_kernels=10)),
        "ring8_cond_hinge": configs.MixtureConfig(objective="hinge", conditional=True,
                                                  steps=20, log_every=10, eval_every=1,
                                                  num_samples=100),
    }
    for name, cfg in gan_runs.items():
        if want(name):
            state = runs.train(cfg, tmp / name, progress=False).state
            out[name] = {"metrics": _metrics(tmp / name), "state": fingerprint(state)}

    if want("glo_mnist"):
        cfg = configs.GLOConfig(data_dir=mnist_dir, width=8, z_dim=8, steps=10, log_every=5,
                            num_samples=16)
        state = runs.train(cfg, tmp / "glo", progress=False).state
        out["glo_mnist"] = {"metrics": _metrics(tmp / "glo"), "state": fingerprint(state)}

    if want("ssl_mnist"):
        cfg = configs.SSLConfig(data_dir=mnist_dir, labels=20, steps=10, log_every=5,
                            d_hidden="64,32", g_hidden="32", num_samples=16, g_steps=2)
        state = runs.train(cfg, tmp / "ssl", progress=False).state
        out["ssl_mnist"] = {"metrics": _metrics(tmp / "ssl"), "state": fingerprint(state)}
    return out


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--mnist-dir", default=os.environ.get(
        "JAXGAN_TEST_MNIST", str(Path(__file__).resolve().parents[2] / "shared/data/mnist")))
    p.add_argument("--write", action="store_true", help=f"record into {GOLDEN.name}")
    p.add_argument("--only", nargs="*")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        got = capture(args.mnist_dir, Path(tmp), args.only)
    if args.write:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True))
        print(f"wrote {GOLDEN}")
        return 0
    want = recorded()
    bad = [k for k in got if json.dumps(got[k], sort_keys=True) != json.dumps(want[k], sort_keys=True)]
    print("bit-identical:", [k for k in got if k not in bad], "differ:", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
