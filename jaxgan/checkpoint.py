"""Orbax checkpoints of a run: the whole state pytree (step and key included) and metadata,
each checked against a checksum when it is restored.

The data position needs no iterator state: batches are indexed by the global step (see
`jaxgan.data`), so restoring ``state.step`` restores the data stream too. The metadata keeps
that step, the epoch, what the loop needs to continue its figures, and the jaxgan version
that saved it.

Layout of ``directory``::

  <step>/                    one Orbax checkpoint (``state/``, ``meta/``, Orbax's own files)
  <step>/jaxgan.sha256.json  the size and SHA-256 of every other file of that folder
  <step>.damaged-<n>/        a checkpoint found damaged and moved aside (kept for inspection;
                             delete it when done)

Orbax lists only folders named by a bare step number, so it ignores the ``.damaged-<n>``
folders; the checksum file inside a step folder is not one of its items and is deleted with
the folder when ``max_to_keep`` drops it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import json
import os
import re
import threading
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

import jax
import orbax.checkpoint as ocp

CHECKSUMS = "jaxgan.sha256.json"
VERSION_KEY = "jaxgan_version"
# Differing leaves named in a mismatch error: enough to recognise the network that changed.
_SHOWN = 3
_barrier_ids = itertools.count()


class CheckpointError(ValueError):
    """A checkpoint cannot be restored: damaged (and no intact one to fall back to), or saved
    from a state of another structure (another config)."""


class CheckpointWarning(UserWarning):
    """A checkpoint was restored, but something about it deserves a look: a damaged newer one
    was moved aside, it has no checksum, or another jaxgan version saved it."""


class CheckpointSaveError(OSError):
    """A save failed (a full disk, a folder that cannot be written): ``errno``, ``strerror``
    (what failed and why) and ``filename`` (where) as for any `OSError`."""


class _Damaged(Exception):
    """Internal: what is wrong with one checkpoint (its message names it)."""


def saved_steps(directory: str | Path) -> list[int]:
    """The steps with a complete checkpoint under ``directory``, without opening a manager
    (which would create the folder). Orbax writes a checkpoint under a temporary name and
    renames it to its step when it is complete, so a step-named folder is a whole one (a
    damaged one is renamed ``<step>.damaged-<n>`` when found, and is not listed)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


def jaxgan_version() -> str:
    try:
        return importlib.metadata.version("jaxgan")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was not installed
        return "unknown"


class Checkpointer:
    """Saves and restores a state pytree plus a JSON dict under ``directory``.

    Each save runs in the background (Orbax's async save) while training goes on. Once a save
    is complete, process 0 writes the size and SHA-256 of each of its files into the step's
    folder: when the next save starts, or on `wait` / `close`, so the save still overlaps
    training (the hashing takes about 1 ms per MB of checkpoint). `restore` checks them: a
    damaged newest checkpoint (changed or truncated bytes, a missing file or folder,
    unreadable metadata) is moved aside and the previous intact one is restored instead,
    with a warning.

    Args:
      directory: the checkpoints' folder (created if missing).
      max_to_keep: how many of the latest checkpoints to keep; older ones are deleted.
      async_save: save in the background (default); ``False`` makes `save` return only once
        the checkpoint and its checksums are written. Either way the final save is always
        waited for: `wait` and `close` return once it is complete, and raise its error if it
        failed.

    A failed save raises `CheckpointSaveError` (an `OSError` naming the path and the reason)
    from `save`, `wait` or `close`, whichever comes first after it failed; the checkpoint
    it was writing is left under a temporary name that `saved_steps` and `restore` ignore,
    so the previous checkpoints stay as they were.
    """

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2, async_save: bool = True):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be at least 1, got {max_to_keep}")
        self.directory = Path(directory).absolute()
        self.max_to_keep = max_to_keep
        self.async_save = async_save
        self._unsealed: list[int] = []  # saved steps whose checksums are not written yet
        self._threads_before_save: set[threading.Thread] = set()
        self._manager = self._open()

    def _open(self) -> ocp.CheckpointManager:
        try:
            return ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=self.max_to_keep,
                    # Saves are always asynchronous inside Orbax; `async_save=False` waits
                    # after each one, so both ways run (and fail) the same code.
                    enable_async_checkpointing=True,
                ),
            )
        except OSError as e:
            raise CheckpointSaveError(
                e.errno, f"cannot create the checkpoint folder {self.directory}: "
                f"{e.strerror or e}", e.filename or str(self.directory)) from e

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Starts saving ``state`` and ``meta`` (a JSON dict, to which the jaxgan version is
        added under ``"jaxgan_version"``) as the checkpoint of ``step``.

        Raises:
          CheckpointSaveError: this save, or the previous one still in the background,
            failed (see the class).
        """
        self.wait()  # the previous save's errors surface here, and its checksums are written
        self._threads_before_save = set(threading.enumerate())
        try:
            saved = self._manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    meta=ocp.args.JsonSave({**meta, VERSION_KEY: jaxgan_version()}),
                ),
            )
        except Exception as e:  # noqa: BLE001 - re-raised, as an OSError when it is one
            self._raise_failed(step, e)
        if saved:
            self._unsealed.append(step)
        if not self.async_save:
            self.wait()

    def wait(self) -> None:
        """Blocks until the save in the background is complete and its checksums are written.

        Raises:
          CheckpointSaveError: the save failed.
        """
        step = self._unsealed[-1] if self._unsealed else None
        try:
            self._manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001 - re-raised, as an OSError when it is one
            self._unsealed.clear()
            self._raise_failed(step, e)
        while self._unsealed:
            step = self._unsealed.pop(0)
            if jax.process_index() == 0:
                self._seal(step)

    def close(self) -> None:
        """Waits for the save in the background (raising its error), then releases Orbax."""
        try:
            self.wait()
        finally:
            self._manager.close()

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restores into the structure of ``like`` (a state or its ``jax.eval_shape``).

        Without ``step``, the newest intact checkpoint: newer damaged ones are moved aside
        (renamed ``<step>.damaged-<n>``, so that this run can save those steps again) and
        named in a `CheckpointWarning`. A checkpoint without checksums (saved by an older
        jaxgan, or by a run killed between the end of a save and the checksums) is restored
        with a warning; one whose checksums match but whose restore fails raises that error,
        since its files are as they were saved.

        Returns:
          The state and the metadata dict saved with it.

        Raises:
          FileNotFoundError: no checkpoint (or none of ``step``) in the folder.
          CheckpointError: no intact checkpoint (each step and its problem are listed;
            nothing is moved); ``step`` given and that checkpoint damaged; or the saved state
            does not match ``like`` (its differing leaves are named).
        """
        self.wait()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        steps = sorted(self._manager.all_steps(), reverse=True)
        if step is not None:
            if step not in steps:
                raise FileNotFoundError(
                    f"no checkpoint of step {step} in {self.directory} (saved: "
                    f"{', '.join(map(str, sorted(steps))) or 'none'})")
            try:
                return self._restore(step, abstract)
            except _Damaged as e:
                raise CheckpointError(
                    f"the checkpoint of step {step} in {self.directory} is damaged: {e}; "
                    "restore without a step to fall back to the newest intact one") from None
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        damaged: list[tuple[int, str]] = []
        for s in steps:
            try:
                out = self._restore(s, abstract)
            except _Damaged as e:
                damaged.append((s, str(e)))
                continue
            if damaged:
                moved = self._move_aside([d for d, _ in damaged])
                self._warn(
                    "; ".join(f"the checkpoint of step {d} in {self.directory} is damaged "
                              f"({why}), {moved[d]}" for d, why in damaged)
                    + f"; restored step {s} instead", stacklevel=3)
            return out
        raise CheckpointError(
            f"no intact checkpoint in {self.directory}: "
            + "; ".join(f"step {d}: {why}" for d, why in damaged)
            + ". The folders are left as they are: restore a copy of the run if there is "
            "one, or start the run over in another folder")

    # -- restoring one checkpoint --------------------------------------------------------

    def _restore(self, step: int, abstract: Any) -> tuple[Any, dict]:
        folder = self.directory / str(step)
        for item in ("state", "meta"):
            if not (folder / item).is_dir():
                raise _Damaged(f"its {item}/ folder is missing")
        verified = self._verify(folder)
        # With matching checksums the files are as saved: a failure to read them is not
        # damage (a bug, a full memory, a flaky disk) and is raised as it is, rather than
        # moving a good checkpoint aside.
        try:
            meta = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:  # noqa: BLE001 - damage unless the checksums say otherwise
            if verified:
                raise
            raise _Damaged(f"its metadata (meta/) cannot be read: {_first_line(e)}") from e
        if not isinstance(meta, dict):
            raise _Damaged(f"its metadata (meta/) is not a JSON object: {meta!r:.80}")
        saved_version = meta.get(VERSION_KEY)
        try:
            saved_tree = _saved_shapes(folder / "state")
        except Exception as e:  # noqa: BLE001 - damage unless the checksums say otherwise
            if verified:
                raise
            raise _Damaged(f"its state cannot be read: {_first_line(e)}") from e
        self._check_structure(step, saved_tree, abstract, saved_version)
        try:
            state = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
        except Exception as e:  # noqa: BLE001 - damage unless the checksums say otherwise
            if verified:
                raise
            raise _Damaged(f"its state cannot be read: {_first_line(e)}") from e
        if not verified:
            self._warn(f"the checkpoint of step {step} in {self.directory} has no checksums "
                       "(saved by an older jaxgan, or the run stopped before they were "
                       "written): restored without checking its bytes")
        current = jaxgan_version()
        if saved_version not in (None, "unknown", current) and current != "unknown":
            self._warn(f"the checkpoint of step {step} was saved by jaxgan {saved_version}, "
                       f"this is jaxgan {current}: restored (its state's structure matches)")
        return state, meta

    def _verify(self, folder: Path) -> bool:
        """Whether ``folder``'s checksums were found and match (`_Damaged` if they do not)."""
        record = folder / CHECKSUMS
        if not record.exists():
            return False
        try:
            files = json.loads(record.read_text())["files"]
            expected = {rel: (int(f["bytes"]), str(f["sha256"])) for rel, f in files.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise _Damaged(f"its checksum file {CHECKSUMS} cannot be read: "
                           f"{_first_line(e)}") from e
        problems = []
        for rel, (size, digest) in expected.items():
            path = folder / rel
            try:
                have = path.stat().st_size
                if have != size:
                    problems.append(f"{rel} has {have} bytes, {size} when saved"
                                    + (" (truncated)" if have < size else ""))
                elif _sha256(path) != digest:
                    problems.append(f"{rel} does not match its checksum (bytes changed since "
                                    "it was saved)")
            except FileNotFoundError:
                problems.append(f"{rel} is missing")
            except OSError as e:
                problems.append(f"{rel} cannot be read ({e.strerror or e})")
        if problems:
            more = f", and {len(problems) - 1} more file(s)" if len(problems) > 1 else ""
            raise _Damaged(problems[0] + more)
        return True

    def _check_structure(self, step: int, saved: dict, abstract: Any,
                         saved_version: str | None) -> None:
        expected = {k: tuple(v.shape) for k, v in ocp.tree.to_flat_dict(
            ocp.tree.serialize_tree(abstract, keep_empty_nodes=True)).items()}
        diffs = []
        for key in sorted(set(saved) | set(expected), key=str):
            name = ".".join(map(str, key))
            if key not in expected:
                diffs.append(f"{name} {saved[key]} only in the checkpoint")
            elif key not in saved:
                diffs.append(f"{name} {expected[key]} not in the checkpoint")
            elif saved[key] != expected[key]:
                diffs.append(f"{name}: saved {saved[key]}, expected {expected[key]}")
        if not diffs:
            return
        current = jaxgan_version()
        versions = ("" if saved_version == current else
                    f" It was saved by jaxgan {saved_version or '(version not recorded)'}, "
                    f"this is jaxgan {current}.")
        shown = "; ".join(diffs[:_SHOWN]) + (f"; and {len(diffs) - _SHOWN} more"
                                             if len(diffs) > _SHOWN else "")
        raise CheckpointError(
            f"the checkpoint of step {step} in {self.directory} does not match the networks "
            f"of this config ({len(diffs)} leaves differ: {shown}).{versions} Restore it "
            "with the config it was saved with (its run's config.json)")

    # -- writing checksums, moving damaged checkpoints aside -----------------------------

    def _seal(self, step: int) -> None:
        folder = self.directory / str(step)
        if not folder.is_dir():  # dropped by max_to_keep already
            return
        files = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            if not rel.startswith(CHECKSUMS):  # the record itself, and its temporary file
                files[rel] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        record, tmp = folder / CHECKSUMS, folder / (CHECKSUMS + ".tmp")
        try:
            # Written whole then renamed, so a reader never sees half a record; synced,
            # so a power cut leaves no empty one that would mark a good checkpoint damaged.
            with open(tmp, "w") as f:
                json.dump({"algorithm": "sha256", "files": files}, f, indent=0)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, record)
        except OSError as e:
            raise CheckpointSaveError(
                e.errno, f"the checkpoint of step {step} was saved but its checksums could "
                f"not be written: {e.strerror or e}", e.filename or str(record)) from e

    def _move_aside(self, steps: list[int]) -> dict[int, str]:
        """Renames each damaged step's folder so that Orbax forgets it and the run can save
        that step again; returns what became of each, for the warning."""
        self._barrier("verified")  # no process still reads a folder about to move
        moved = {}
        for step in steps:
            folder = self.directory / str(step)
            n = 1
            while folder.with_name(f"{step}.damaged-{n}").exists():
                n += 1
            aside = folder.with_name(f"{step}.damaged-{n}")
            if jax.process_index() == 0:
                try:
                    folder.rename(aside)
                except OSError as e:
                    moved[step] = (f"left in place (moving it to {aside.name} failed: "
                                   f"{e.strerror or e})")
                    continue
            moved[step] = f"moved aside to {aside.name}"
        self._barrier("moved")  # every process sees the new names before it reloads
        self._manager.reload()
        return moved

    def _barrier(self, name: str) -> None:
        if jax.process_count() > 1:
            ocp.multihost.sync_global_processes(
                f"jaxgan-checkpoint-{name}-{next(_barrier_ids)}")

    def _warn(self, message: str, stacklevel: int = 4) -> None:
        if jax.process_index() == 0:  # one copy of each warning, not one per process
            warnings.warn(message, CheckpointWarning, stacklevel=stacklevel)

    # -- failed saves --------------------------------------------------------------------

    def _raise_failed(self, step: int | None, e: Exception) -> NoReturn:
        """Raises a failed save's error: a `CheckpointSaveError` with the path and the reason
        when the failure came from the file system, else ``e`` itself (a bug)."""
        # Orbax reports the first failed write while the save's other writers go on; saving
        # the same step again then failed 1 time in 3 ("Directory not empty": they still
        # wrote into its temporary folder, which the new save deletes) and left threads that
        # held the process 5 minutes at exit. Waiting for them, and a fresh manager, avoid
        # both (35 runs in 35 of the test that saves it again). With several processes, reopening is a collective step that some processes
        # (those which did not see the failure) would not take: the run stops there.
        self._join_writers()
        if jax.process_count() == 1:
            try:
                self._manager.close()
                self._manager = self._open()
            except Exception:  # noqa: BLE001 - the save's failure is what is reported
                pass
        code, path = _os_error(e)
        if code is None:
            raise e
        which = f"the checkpoint of step {step}" if step is not None else "a checkpoint"
        complete = saved_steps(self.directory)
        kept = (f"the checkpoint of step {complete[-1]} is intact" if complete
                else "no checkpoint was saved before")
        reason = os.strerror(code) if code else _first_line(e)
        raise CheckpointSaveError(
            code, f"{which} could not be saved: {reason}; {kept}",
            path or str(self.directory)) from e


    def _join_writers(self, timeout: float = 30.0) -> None:
        """Waits (at most ``timeout`` seconds) for the threads started since the last save."""
        deadline = time.monotonic() + timeout
        for t in threading.enumerate():
            if (t not in self._threads_before_save and not t.daemon
                    and t is not threading.current_thread()):
                t.join(max(0.0, deadline - time.monotonic()))


def _saved_shapes(state_dir: Path) -> dict[tuple, tuple]:
    handler = ocp.PyTreeCheckpointHandler()
    try:
        tree = handler.metadata(state_dir).tree
    finally:
        handler.close()
    return {k: tuple(v.shape) for k, v in ocp.tree.to_flat_dict(tree).items()}


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# Tensorstore (which reads and writes the arrays) reports a failure as a ValueError whose
# message starts with a status code (`OUT_OF_RANGE: Error reading "w/0.0" ...`) and, for a
# failed write, ends in the OS error: `Failed writing: "<path>": ... [os_error_code='28']`.
# Orbax wraps it in an error whose message is a 60-line spec of the array.
_TS_STATUS = re.compile(r"[A-Z][A-Z_]{3,}: ")
_TS_CODE = re.compile(r"os_error_code='?(\d+)")
_TS_PATH = re.compile(r'"([^"]*/[^"]*)"')


def _chain(e: BaseException | None):
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _os_error(e: BaseException) -> tuple[int | None, str | None]:
    """The errno and path of the file-system failure behind ``e``, if there is one."""
    for err in _chain(e):
        if isinstance(err, OSError) and err.errno is not None:
            return err.errno, err.filename
        if m := _TS_CODE.search(str(err)):
            paths = _TS_PATH.findall(str(err))
            return int(m.group(1)), paths[-1] if paths else None
    return None, None


def _first_line(e: BaseException) -> str:
    """What went wrong in one line: tensorstore's status line if there is one."""
    lines = [str(err).strip().splitlines() for err in _chain(e)]
    status = [ls[0] for ls in lines if ls and _TS_STATUS.match(ls[0])]
    text = status[0] if status else (lines[0][0] if lines[0] else type(e).__name__)
    return text if len(text) <= 300 else text[:297] + "..."
