import contextlib
import fcntl
import os
from pathlib import Path

import pytest

from jaxgan import scoring
from jaxgan.metrics import get_evaluator

# Real MNIST (IDX files): $JAXGAN_TEST_MNIST, else ../shared/data/mnist beside the repository
# (where CI clones the project).
# Non-fixture code can import this; tests take the `mnist_dir` fixture, which skips (or, with
# JAXGAN_REQUIRE_MNIST=1, fails) when the folder is missing.
MNIST_DIR = Path(os.environ.get("JAXGAN_TEST_MNIST")
                 or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
                 ).expanduser().resolve()


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not MNIST_DIR.is_dir():
        message = (f"real MNIST not found at {MNIST_DIR}; point JAXGAN_TEST_MNIST at a folder "
                   "of MNIST IDX files")
        # CI has the data beside it: a missing folder there is a failure, not a skip.
        if os.environ.get("JAXGAN_REQUIRE_MNIST") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return MNIST_DIR


@pytest.fixture
def fast_evaluator(tmp_path_factory, monkeypatch):
    """Image metrics with a 1-epoch evaluator in a cache private to this test session: fast
    enough for end-to-end tests of `jaxgan eval`. test_evaluate and the metrics' own tests
    cover the real evaluator."""
    base = tmp_path_factory.getbasetemp()
    # xdist's workers each have a folder in the session's: they share one evaluator, trained
    # by whichever asks first while the other waits on the lock (about 12 s saved).
    cache = (base.parent if base.name.startswith("popen-gw") else base) / "evaluator-cache"
    cache.mkdir(exist_ok=True)

    def shared(*args, **kwargs):
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return get_evaluator(*args, **{"epochs": 1, "cache_dir": cache, "progress": False,
                                           **kwargs})

    monkeypatch.setattr(scoring, "get_evaluator", shared)
    scoring.evaluator_for.cache_clear()
    yield
    scoring.evaluator_for.cache_clear()


def pytest_configure(config):
    """One persistent XLA compilation cache for the whole session, in a temporary folder.

    The suite is mostly compilation, and many tests compile the same programs: the same tiny
    configs in fresh closures, and the subprocesses of the interruption tests compiling what
    their parent did. JAX's cache keys on the program, its options and the devices, so a hit
    is the same executable a fresh compilation gives. The controller creates the folder and
    passes it to the xdist workers and to every subprocess through the environment; it is
    removed when the session ends, so no run starts from an earlier one's cache.
    """
    import jax

    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        import tempfile
        os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxgan-xla-cache-")
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        config._jaxgan_xla_cache = os.environ["JAX_COMPILATION_CACHE_DIR"]
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")))
    # Most tests compile a program and run it for a step or a few: XLA's optimisation costs
    # more than it saves there (2026-12-06, 2 workers on 2 cores: the suite 746 -> 634 s).
    # JAX's switch for that trade keeps the HLO passes that decide what the tests check
    # (fusions, copies, collectives, library calls) and turns off LLVM's optimisation and XLA's
    # rematerialisation. It changes float rounding, so it goes to every subprocess too (through
    # the environment): an interrupted run resumed in another process must compile as this one
    # (with it here only, the resumed runs of tests/test_runs.py differed in the last bits).
    # A test whose time is in running its programs, not compiling them, takes `optimized`.
    # Set in the environment already, JAX read it at import, its own way.
    if "JAX_DISABLE_MOST_OPTIMIZATIONS" not in os.environ:
        os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
        jax.config.update("jax_disable_most_optimizations", True)
    _use_legacy_cpu_emitters()


# XLA:CPU generates each fusion's code with its MLIR "fusion emitters" by default; its older
# elemental emitters, still behind this flag, compile about twice as fast (2026-12-06, the
# compiled steps of tests/multidevice.py's cGAN, DCGAN, K+1 GAN and LSGAN cases: 9.8 -> 4.1 s;
# the suite on 2 workers 593 -> 430 s) and run the same arithmetic, rounded differently in
# places: the golden runs stay within their tolerance. Users' programs keep the default, which
# runs faster (`jaxgan bench`: the cGAN MLPs 0.7x, ring8 0.9x with the flag); the tests judge
# numbers, not speed. XLA aborts on a flag it does not know, so only on the jaxlib it was
# measured with.
LEGACY_EMITTERS = "--xla_cpu_use_fusion_emitters=false"


def _use_legacy_cpu_emitters():
    import jaxlib
    from jax._src import xla_bridge

    flags = os.environ.get("XLA_FLAGS", "")
    if ("xla_cpu_use_fusion_emitters" in flags or not jaxlib.__version__.startswith("0.10.")
            or xla_bridge.backends_are_initialized()):
        # Set after the backend started, the flag would reach the subprocesses only, and an
        # interrupted run resumed here would compile otherwise than the process it came from.
        return
    # Through the environment, as above: the subprocesses compile as this process does.
    os.environ["XLA_FLAGS"] = f"{flags} {LEGACY_EMITTERS}".strip()


@contextlib.contextmanager
def _optimizing():
    import jax

    before = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture
def optimized():
    """Programs compiled as users get them (`pytest_configure` turns most optimisation off),
    for a test whose run time is in running them and that compares them with no program
    compiled elsewhere. Drawing LSGAN's 13 M initial weights is such a run: 6.8 s compiled
    without optimisation, 2.2 s with (0.4 s against 5.0 s the second time)."""
    with _optimizing():
        yield


@pytest.fixture(scope="session")
def optimizing():
    """`optimized` as a context manager, for the part of a module-scoped fixture that runs."""
    return _optimizing


def pytest_unconfigure(config):
    folder = getattr(config, "_jaxgan_xla_cache", None)
    if folder:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
