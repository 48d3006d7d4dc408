"""`jaxgan bench`: what it reports for a configuration (no timing is asserted: speed is
measured by running it, not tested)."""

import io
import json
import sys

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


def fake_torch_python(tmp_path, steps_per_s: float, params_g: int, params_d: int) -> str:
    """A stand-in for a torch venv's python: answers the version probe and prints what a
    reference script prints (CI has no torch)."""
    path = tmp_path / "python"
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then echo 9.9.9; exit 0; fi\n'
        f'echo "params_g={params_g} params_d={params_d}"\n'
        f'echo "steps_per_s={steps_per_s}"\n')
    path.chmod(0o755)
    return str(path)


def test_vs_torch_gives_the_median_ratio_and_checks_the_parameter_counts(tmp_path):
    # torch_ring.py's networks: G 256-128-128-128-2, D 2-128-128-128-1.
    python = fake_torch_python(tmp_path, 1e-3, 66178, 33537)
    out = io.StringIO()
    (r,) = bench.run(["ring8"], windows=1, seconds=0.05, as_json=True, torch_python=python,
                     repeats=3, out=out)
    assert r["torch"] == "9.9.9" and r["torch_steps_per_s_runs"] == [1e-3] * 3
    assert len(r["steps_per_s_windows"]) == 3  # the repeats, not --windows 1
    assert r["ratio"] == pytest.approx(sorted(x / 1e-3 for x in r["steps_per_s_windows"])[1])
    assert r["params"] == {"g": 66178, "d": 33537} and r["params_match"]

    other = fake_torch_python(tmp_path, 1e-3, 66178, 1)
    table = io.StringIO()
    bench.run(["ring8"], windows=1, seconds=0.05, torch_python=other, out=table)
    assert "| ring8 |" in table.getvalue() and "not the same model" in table.getvalue()


def test_vs_torch_needs_a_python_with_torch(tmp_path, capsys):
    with pytest.raises(ValueError, match="cannot import torch"):
        bench.run(["ring8"], torch_python=sys.executable)
    assert cli.main(["bench", "--which", "ring8", "--vs-torch", str(tmp_path / "nope")]) == 2
    assert "cannot run it" in capsys.readouterr().err


def test_scaling_times_each_size_and_draws_the_figure(tmp_path):
    out = io.StringIO()
    python = fake_torch_python(tmp_path, 2.0, 1, 1)
    rows = bench.scaling(resolutions=(32,), batches=(8, 16), seeds=(1, 2), seconds=0.01,
                         figure=tmp_path / "scaling.png", torch_python=python, out=out)
    assert [(r["family"], r["size"], r["batch"]) for r in rows] == [
        ("dcgan", 32, 8), ("dcgan", 32, 16), ("compare", 1, 512), ("compare", 2, 512)]
    # The work grows with the batch and the seeds, and so do XLA's FLOPs and memory.
    assert rows[1]["gflop_per_step"] == pytest.approx(2 * rows[0]["gflop_per_step"], rel=0.05)
    assert rows[3]["gflop_per_step"] == pytest.approx(2 * rows[2]["gflop_per_step"], rel=0.05)
    assert rows[1]["step_device_bytes"] > rows[0]["step_device_bytes"]
    assert rows[3]["examples_per_s"] == pytest.approx(rows[3]["steps_per_s"] * 2 * 512)
    # DCGAN has a PyTorch reference (benchmarks/torch_dcgan.py); compare's seeds have none.
    assert [r["torch_steps_per_s"] for r in rows] == [2.0, 2.0, None, None]
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
    assert "| DCGAN 32 px | 16 |" in out.getvalue() and "| 32 | " in out.getvalue()


def test_glo_has_no_discriminator_to_count():
    r = bench.measure(bench.CASES["glo_mnist"], windows=1, seconds=0.01)
    assert set(r["params"]) == {"g"} and r["params"]["g"] > 0 and r["ratio"] is None
