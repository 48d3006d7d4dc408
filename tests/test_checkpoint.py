"""Checkpoints: the round trip, checksums and the fallback past damaged checkpoints, a state
of another structure or version, failed saves (the previous checkpoint stays intact), and
max_to_keep. Small pytrees: each test saves a few kilobytes."""

import errno
import json
import resource
import shutil
import signal
import warnings

import chex
import jax
import jax.numpy as jnp
import pytest
from orbax.checkpoint._src.handlers import json_checkpoint_handler

from jaxgan import checkpoint
from jaxgan.checkpoint import (
    CHECKSUMS,
    Checkpointer,
    CheckpointError,
    CheckpointSaveError,
    CheckpointWarning,
    saved_steps,
)


def make_state(step: int, width: int = 3) -> dict:
    # Distinct values per step, so a fallback to another step is visible in the bits.
    k = jax.random.fold_in(jax.random.PRNGKey(0), step)
    return {
        "step": jnp.int32(step),
        "key": jax.random.PRNGKey(step),
        "g": {"kernel": jax.random.normal(k, (4, width)), "bias": jnp.full((width,), step,
                                                                           jnp.float32)},
        "d": {"kernel": jax.random.uniform(k, (width, 2))},
        # Large enough for a data file of its own, where Orbax restores a flipped byte
        # without noticing (smaller arrays sit in OCDBT's checksummed index).
        "w": jax.random.normal(k, (32, 64)),
    }


def saved(directory, steps, **kw) -> Checkpointer:
    ckpt = Checkpointer(directory, **kw)
    for s in steps:
        ckpt.save(s, make_state(s), {"step": s})
    ckpt.wait()
    return ckpt


def restore_quietly(ckpt, like=None, **kw):
    """A restore that fails the test on any CheckpointWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        return ckpt.restore(make_state(0) if like is None else like, **kw)


def data_file(step_dir):
    """The largest file of array data (in the ``d/`` folders of tensorstore's OCDBT)."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    return max(files, key=lambda p: p.stat().st_size)


def test_round_trip_with_checksums_and_version(tmp_path):
    ckpt = saved(tmp_path, [1, 2])
    state, meta = restore_quietly(ckpt)
    chex.assert_trees_all_equal(state, make_state(2))
    assert meta == {"step": 2, "jaxgan_version": checkpoint.jaxgan_version()}
    state, meta = restore_quietly(ckpt, step=1)
    chex.assert_trees_all_equal(state, make_state(1))
    # The checksums sit inside each step's folder, which Orbax does not mind; the steps
    # are what they were.
    record = json.loads((tmp_path / "2" / CHECKSUMS).read_text())
    assert {"state/_METADATA", "meta/metadata", "_CHECKPOINT_METADATA"} <= set(record["files"])
    meta_file = tmp_path / "2" / "meta" / "metadata"
    assert record["files"]["meta/metadata"]["bytes"] == meta_file.stat().st_size
    assert saved_steps(tmp_path) == [1, 2] and ckpt.latest_step() == 2
    ckpt.close()
    # Another Checkpointer (a resume, `jaxgan sample`) verifies the same checksums.
    again = Checkpointer(tmp_path)
    chex.assert_trees_all_equal(restore_quietly(again)[0], make_state(2))
    again.close()


def test_a_synchronous_save_returns_with_its_checksums_written(tmp_path):
    ckpt = Checkpointer(tmp_path, async_save=False)
    ckpt.save(5, make_state(5), {})
    assert (tmp_path / "5" / CHECKSUMS).is_file()
    ckpt.close()


def flip_a_byte(step_dir):
    path = data_file(step_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(step_dir):
    path = data_file(step_dir)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def drop_state(step_dir):
    shutil.rmtree(step_dir / "state")


def garble_meta(step_dir):
    (step_dir / "meta" / "metadata").write_text('{"step": 2, "win')


DAMAGE = {
    "flipped byte": (flip_a_byte, "does not match its checksum"),
    "truncated file": (truncate, "(truncated)"),
    "missing state/": (drop_state, "its state/ folder is missing"),
    "unreadable meta": (garble_meta, "meta/metadata"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
    corrupt, why = DAMAGE[damage]
    ckpt = saved(tmp_path, [1, 2])
    corrupt(tmp_path / "2")
    with pytest.warns(CheckpointWarning) as record:
        state, meta = ckpt.restore(make_state(0))
    assert len(record) == 1
    message = str(record[0].message)
    assert "step 2" in message and why in message and "restored step 1 instead" in message
    assert "moved aside to 2.damaged-1" in message
    chex.assert_trees_all_equal(state, make_state(1))
    assert meta["step"] == 1
    # The damaged folder is kept for a look, under a name neither Orbax nor jaxgan lists,
    # and the run can save step 2 again.
    assert (tmp_path / "2.damaged-1").is_dir()
    assert saved_steps(tmp_path) == [1] and ckpt.latest_step() == 1
    ckpt.save(2, make_state(22), {"step": 2})
    chex.assert_trees_all_equal(restore_quietly(ckpt)[0], make_state(22))
    ckpt.close()


@pytest.mark.parametrize("damage", ["truncated file", "missing state/", "unreadable meta"])
def test_damage_is_found_without_checksums_too(tmp_path, damage):
    """A checkpoint of an older jaxgan (no checksums): what Orbax cannot read is damage, said
    in one line rather than tensorstore's hundred."""
    corrupt, _ = DAMAGE[damage]
    ckpt = saved(tmp_path, [1, 2])
    for step in (1, 2):
        (tmp_path / str(step) / CHECKSUMS).unlink()
    corrupt(tmp_path / "2")
    with pytest.warns(CheckpointWarning) as record:
        state, _ = ckpt.restore(make_state(0))
    chex.assert_trees_all_equal(state, make_state(1))
    messages = [str(w.message) for w in record]
    assert any("step 2" in m and "restored step 1 instead" in m for m in messages)
    assert all(len(m) < 600 and "\n" not in m for m in messages)
    assert any("step 1" in m and "has no checksums" in m for m in messages)
    ckpt.close()


def test_a_checkpoint_without_checksums_is_restored_with_a_warning(tmp_path):
    # A run killed between the end of a save and its checksums, or an older jaxgan.
    ckpt = saved(tmp_path, [1, 2])
    (tmp_path / "2" / CHECKSUMS).unlink()
    with pytest.warns(CheckpointWarning, match="step 2 .* has no checksums"):
        state, _ = ckpt.restore(make_state(0))
    chex.assert_trees_all_equal(state, make_state(2))
    assert saved_steps(tmp_path) == [1, 2]
    ckpt.close()


def test_no_intact_checkpoint_raises_listing_each_and_moves_nothing(tmp_path):
    ckpt = saved(tmp_path, [1, 2])
    flip_a_byte(tmp_path / "2")
    drop_state(tmp_path / "1")
    with pytest.raises(CheckpointError, match=r"no intact checkpoint .*step 2: .*checksum"
                                              r".*; step 1: its state/ folder is missing"):
        ckpt.restore(make_state(0))
    assert saved_steps(tmp_path) == [1, 2]
    ckpt.close()


def test_an_explicit_damaged_step_raises_without_falling_back(tmp_path):
    ckpt = saved(tmp_path, [1, 2])
    truncate(tmp_path / "1")
    with pytest.raises(CheckpointError, match=r"step 1 .* is damaged: state/.*\(truncated\)"):
        ckpt.restore(make_state(0), step=1)
    with pytest.raises(FileNotFoundError, match="no checkpoint of step 7 .*saved: 1, 2"):
        ckpt.restore(make_state(0), step=7)
    assert saved_steps(tmp_path) == [1, 2]
    ckpt.close()


def test_a_state_of_another_structure_is_refused_naming_the_leaves(tmp_path, monkeypatch):
    ckpt = saved(tmp_path, [1])
    with pytest.raises(CheckpointError, match=r"does not match the networks of this config "
                                              r"\(3 leaves differ: d\.kernel: saved \(3, 2\), "
                                              r"expected \(5, 2\); g\.bias: saved \(3,\)"):
        ckpt.restore(make_state(0, width=5))
    like = make_state(0)
    like["g"]["scale"] = jnp.ones(3)
    with pytest.raises(CheckpointError, match=r"g\.scale \(3,\) not in the checkpoint"):
        ckpt.restore(like)
    # Mismatched and saved by another version: both versions are named.
    monkeypatch.setattr(checkpoint, "jaxgan_version", lambda: "0.0.1")
    ckpt.save(2, make_state(2), {})
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"saved by jaxgan 0\.0\.1, this is jaxgan "):
        ckpt.restore(make_state(0, width=5))
    ckpt.close()


def test_another_version_restores_with_a_warning_naming_both(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "jaxgan_version", lambda: "0.0.1")
    ckpt = saved(tmp_path, [1])
    monkeypatch.setattr(checkpoint, "jaxgan_version", lambda: "0.2.0")
    with pytest.warns(CheckpointWarning, match=r"saved by jaxgan 0\.0\.1, this is jaxgan "
                                               r"0\.2\.0: restored"):
        state, _ = ckpt.restore(make_state(0))
    chex.assert_trees_all_equal(state, make_state(1))
    ckpt.close()


def full_disk(monkeypatch):
    """The metadata's write fails as on a full disk (in Orbax's background thread)."""
    async def write(self, x, directory):
        raise OSError(errno.ENOSPC, "No space left on device", str(directory / "metadata"))

    monkeypatch.setattr(json_checkpoint_handler.JsonCheckpointHandler, "_save_fn", write)


def test_a_failed_save_raises_with_the_path_and_keeps_the_previous_checkpoint(
        tmp_path, monkeypatch):
    ckpt = saved(tmp_path, [1])
    bits = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    full_disk(monkeypatch)
    ckpt.save(2, make_state(2), {})  # the write fails in the background...
    with pytest.raises(CheckpointSaveError) as failure:  # ... and is raised by the next call
        ckpt.wait()
    e = failure.value
    assert isinstance(e, OSError) and e.errno == errno.ENOSPC
    assert e.strerror == ("the checkpoint of step 2 could not be saved: No space left on "
                          "device; the checkpoint of step 1 is intact")
    assert e.filename.startswith(str(tmp_path)) and e.filename.endswith("metadata")
    ckpt.close()  # reported once: closing after it does not raise it again
    # Step 2 never became a checkpoint; step 1 is as it was, bit for bit.
    assert saved_steps(tmp_path) == [1]
    assert {p.relative_to(tmp_path): p.read_bytes()
            for p in (tmp_path / "1").rglob("*") if p.is_file()} == {
        k: v for k, v in bits.items() if k.parts[0] == "1"}
    monkeypatch.undo()
    again = Checkpointer(tmp_path)
    chex.assert_trees_all_equal(restore_quietly(again)[0], make_state(1))
    again.save(2, make_state(2), {})  # the disk has room again: the same step saves
    chex.assert_trees_all_equal(restore_quietly(again)[0], make_state(2))
    again.close()


def test_close_raises_a_failure_nobody_waited_for(tmp_path, monkeypatch):
    ckpt = saved(tmp_path, [1])
    full_disk(monkeypatch)
    ckpt.save(2, make_state(2), {})
    with pytest.raises(CheckpointSaveError, match="step 2 could not be saved"):
        ckpt.close()


def test_the_next_save_raises_a_background_failure(tmp_path, monkeypatch):
    ckpt = saved(tmp_path, [1])
    full_disk(monkeypatch)
    ckpt.save(2, make_state(2), {})
    monkeypatch.undo()
    with pytest.raises(CheckpointSaveError, match="step 2 could not be saved"):
        ckpt.save(3, make_state(3), {})
    # The error was reported; the Checkpointer goes on, the failed step included.
    ckpt.save(2, make_state(2), {})
    ckpt.save(3, make_state(3), {})
    chex.assert_trees_all_equal(restore_quietly(ckpt, step=2)[0], make_state(2))
    chex.assert_trees_all_equal(restore_quietly(ckpt)[0], make_state(3))
    ckpt.close()


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_failed_array_write_is_an_os_error_too(tmp_path):
    """Tensorstore, which writes the arrays, reports a failed write as a ValueError; a file
    size limit makes one really fail (root ignores read-only permissions)."""
    ckpt = saved(tmp_path, [1])
    big = {**make_state(2), "w": jax.random.normal(jax.random.PRNGKey(1), (256, 1024))}
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, hard))  # below the 1 MiB array
    try:
        ckpt.save(2, big, {})
        with pytest.raises(CheckpointSaveError) as failure:
            ckpt.wait()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert failure.value.errno == errno.EFBIG
    assert "step 2 could not be saved: File too large" in failure.value.strerror
    assert failure.value.filename.startswith(str(tmp_path / "2."))
    assert saved_steps(tmp_path) == [1]
    chex.assert_trees_all_equal(restore_quietly(ckpt)[0], make_state(1))
    ckpt.close()


def test_a_folder_that_cannot_be_created_is_an_os_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointSaveError, match="cannot create the checkpoint folder") as e:
        Checkpointer(tmp_path / "file" / "checkpoints")
    assert e.value.errno == errno.ENOTDIR and "file" in e.value.filename


def test_max_to_keep_keeps_the_latest_and_ignores_damaged_folders(tmp_path):
    ckpt = saved(tmp_path, [1, 2, 3], max_to_keep=2)
    assert saved_steps(tmp_path) == [2, 3]
    flip_a_byte(tmp_path / "3")
    with pytest.warns(CheckpointWarning, match="moved aside"):
        ckpt.restore(make_state(0))
    for s in (3, 4, 5):
        ckpt.save(s, make_state(s), {})
    ckpt.wait()
    assert saved_steps(tmp_path) == [4, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.damaged-1", "4", "5"]
    assert all((tmp_path / s / CHECKSUMS).is_file() for s in ("4", "5"))
    with pytest.raises(ValueError, match="max_to_keep must be at least 1"):
        Checkpointer(tmp_path, max_to_keep=0)
    ckpt.close()

