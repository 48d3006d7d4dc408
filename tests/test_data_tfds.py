"""(Fashion-)MNIST through TFDS: the mocked data source, and failing fast offline."""

import socket
import time

import numpy as np
import pytest

from jaxgan.data import DatasetError, load_dataset, tfds_source

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture(autouse=True)
def _no_local_idx(monkeypatch):
    monkeypatch.delenv("JAXGAN_DATA_DIR", raising=False)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mock_data_source(monkeypatch, name):
    # Under mock_data nothing is prepared; the (mocked, no-op) download path must be taken.
    monkeypatch.setattr(tfds_source, "internet_available", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=20):
        ds = load_dataset(name, split="test")
        assert ds.num_examples == 20 and ds.example_shape == (28, 28, 1)
        assert ds.num_classes == 10 and "TFDS" in ds.description
        batch = next(ds.batches(8, seed=0))
        x, y = ds.arrays()
    assert batch["x"].shape == (8, 28, 28, 1) and batch["x"].dtype == np.float32
    assert batch["y"].dtype == np.int32 and batch["index"].dtype == np.int32
    assert x.shape == (20, 28, 28, 1) and -1 <= x.min() <= x.max() <= 1
    assert y.min() >= 0 and y.max() <= 9


def test_unprepared_and_offline_fails_fast_with_help(tmp_path, monkeypatch):
    probes = []

    def refuse(*args, **kwargs):
        probes.append(args)
        raise OSError("network is unreachable (simulated)")

    # The probe fails without touching the network; TFDS must not get further.
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        lambda *a, **k: pytest.fail("tried to download while offline"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(DatasetError) as e:
        load_dataset("mnist")
    assert time.perf_counter() - start < 5
    assert probes, "the connectivity probe was not tried"
    message = str(e.value)
    for text in ("--data-dir DIR", "JAXGAN_DATA_DIR=DIR", "train-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz", str(tmp_path), "With internet, TFDS downloads"):
        assert text in message


def test_probe_timeout_is_bounded(monkeypatch):
    def hang(*args, **kwargs):  # a connection that never answers, then times out
        time.sleep(10)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    assert not tfds_source.internet_available("example.invalid", 443, timeout=0.2)
    assert time.perf_counter() - start < 1


def test_probe_goes_through_the_proxy(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert tfds_source.probe_address("https://storage.googleapis.com/x/") == (
        "proxy.internal", 3128)
    monkeypatch.delenv("https_proxy")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    assert tfds_source.probe_address("https://storage.googleapis.com/x/") == (
        "storage.googleapis.com", 443)
