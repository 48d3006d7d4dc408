"""MNIST and Fashion-MNIST through TFDS's array-record data source (no TensorFlow needed to
read; TFDS's MNIST builders need TensorFlow's ``tf.io.gfile`` to *prepare* a download).

Offline machines must not hang on a download: if the dataset is not prepared, a short socket
probe of the download host (or of the configured proxy) decides, within ``probe_timeout``
seconds, between downloading and failing with a message that points at local IDX files.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
import urllib.request

from jaxgan.data.errors import DatasetError
from jaxgan.data.idx import expected_files

_DOWNLOAD_URLS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}


def probe_address(url: str) -> tuple[str, int]:
    """The (host, port) a download of ``url`` first connects to: the proxy if one is set."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return proxy_parts.hostname or "", proxy_parts.port or 80
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def internet_available(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    The connection runs in a daemon thread because the name lookup ignores socket timeouts
    and can block for tens of seconds on a machine without DNS.
    """
    done = threading.Event()
    opened = []

    def connect():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                opened.append(True)
        except OSError:
            pass
        finally:
            done.set()

    threading.Thread(target=connect, daemon=True, name="jaxgan-probe").start()
    done.wait(timeout)
    return bool(opened)


def offline_message(name: str, split: str, tfds_dir: str, reason: str) -> str:
    url = _DOWNLOAD_URLS.get(name, "")
    return (
        f"Cannot load {name!r} (split {split!r}): TFDS has not prepared it in {tfds_dir} and "
        f"{reason}.\n"
        f"Use local IDX files instead: pass `--data-dir DIR` or set `JAXGAN_DATA_DIR=DIR`, "
        f"where DIR or DIR/{name}/ holds {expected_files(name)}"
        + (f", as downloaded from {url}" if url else "") + ".\n"
        f"With internet, TFDS downloads and prepares {name} into {tfds_dir} on first use "
        "(preparing needs the `importlib_resources` package and, for TFDS's MNIST builders, "
        "TensorFlow).")


def load_tfds(name: str, split: str, *, tfds_data_dir: str | None = None,
              probe_timeout: float = 2.0):
    """``tfds.data_source(name, split=split)``, downloading only if the network answers.

    Args:
        name: a TFDS dataset name.
        split: a TFDS split ("train", "test", "train[:10%]", ...).
        tfds_data_dir: TFDS's data directory; default ``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``.
        probe_timeout: seconds to wait for the connectivity probe.

    Returns:
        ``(source, description)``; items of ``source`` are ``{"image": uint8 (H, W, C),
        "label": int, ...}``.

    Raises:
        DatasetError: not prepared and offline (within about ``probe_timeout`` seconds), or the
            download, preparation or reading failed.
    """
    # Imported here, not at the top: TFDS is only the fallback when no IDX folder is given,
    # and importing it costs seconds that every other run would pay.
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    tfds_data_dir = tfds_data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(name, data_dir=tfds_data_dir)
    except Exception as e:  # TFDS raises several types for an unknown or broken name.
        raise DatasetError(f"TFDS has no usable builder for {name!r}: {e}") from e
    where = str(builder.data_dir_root)
    if not builder.is_prepared():
        host, port = probe_address(_DOWNLOAD_URLS.get(name, "https://storage.googleapis.com/"))
        if not internet_available(host, port, probe_timeout):
            raise DatasetError(offline_message(
                name, split, where, f"{host}:{port} is unreachable (no internet?)"))
        try:
            # data_source reads array_record; TFDS's default format, tfrecord, needs TensorFlow.
            builder.download_and_prepare(file_format="array_record")
        except ImportError as e:
            raise DatasetError(offline_message(
                name, split, where, f"preparing the download failed for lack of a package ({e})")
            ) from e
        except Exception as e:
            raise DatasetError(offline_message(
                name, split, where, f"downloading or preparing it failed ({e})")) from e
    try:
        source = builder.as_data_source(split=split)
    except Exception as e:
        raise DatasetError(
            f"TFDS could not open {name!r} split {split!r} from {where} as a data source ({e}). "
            "Data sources read the array_record format; a dataset prepared as tfrecord can be "
            "converted with `tfds convert_format`, or use local IDX files with `--data-dir DIR` "
            f"or `JAXGAN_DATA_DIR=DIR` ({expected_files(name)}).") from e
    return source, f"{name} {split}: {len(source):,} examples, TFDS data source in {where}"
