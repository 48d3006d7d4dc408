from pathlib import Path

import pytest

# CI clones the project with ../shared beside it; real MNIST (IDX) lives there.
MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not MNIST_DIR.is_dir():
        pytest.skip(f"real MNIST not found at {MNIST_DIR}")
    return MNIST_DIR
