"""`jaxgan bench`: what it reports for a configuration (no timing is asserted: speed is
measured by running it, not tested)."""

import io
import json

import pytest

from jaxgan import bench, cli


def test_a_configuration_reports_its_rate_flops_memory_and_environment():
    out = io.StringIO()
    (result,) = bench.run(["ring8"], windows=2, seconds=0.05, as_json=True, out=out)
    line = json.loads(out.getvalue())
    assert line == json.loads(json.dumps(result))
    for key in ("name", "steps_per_s", "torch_steps_per_s", "ratio", "compile_s",
                "gflop_per_step", "flops_fraction", "step_device_bytes", "jax", "backend",
                "device_count"):
        assert key in line, key
    assert line["name"] == "ring8" and line["steps_per_s"] > 0 and len(line["steps_per_s_windows"]) == 2
    # XLA's count for torch_ring.py's networks at batch 512: ~0.5 GFLOP a step (G and D,
    # forward and backward), far more than zero and far less than an image step.
    assert 0.1 < line["gflop_per_step"] < 2 and 0 < line["flops_fraction"]
    assert line["step_device_bytes"] > 0 and line["matmul_peak_flops"] > 0


def test_the_table_and_unknown_names(capsys):
    with pytest.raises(ValueError, match="unknown bench configuration nope; valid: lsgan_mnist"):
        bench.run(["nope"])
    assert cli.main(["bench", "--which", "nope"]) == 2
    assert "valid: lsgan_mnist" in capsys.readouterr().err
    assert set(bench.CASES) == {"lsgan_mnist", "cgan_mlp", "ring8", "dcgan64", "glo_mnist",
                                "ssl_mnist", "ring8_x10"}
