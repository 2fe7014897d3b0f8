"""CIFAR-10, read from disk in either of its two public formats, and verified.

The suite's accuracy figure is only as trustworthy as the test set it is
computed on, so every file is checked for size, record count, label range and
(by default) against the MD5 of the official release before it is used.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from mcuqual.common.errors import DatasetError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)
IMAGE_BYTES = 32 * 32 * 3
RECORD_BYTES = 1 + IMAGE_BYTES
RECORDS_PER_BATCH = 10_000
DATASET_ENV = "MCUQUAL_DATASET_DIR"

BINARY_DIR = "cifar-10-batches-bin"
PICKLE_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"

# MD5 of the files of the official releases (cifar-10-binary.tar.gz and
# cifar-10-python.tar.gz), as published with the dataset.
OFFICIAL_MD5 = {
    BINARY_DIR: {
        "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
        "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
        "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
        "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
        "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
        "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
    },
    PICKLE_DIR: {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    },
}

HOW_TO_GET = (
    "Point --dataset-dir (or the MCUQUAL_DATASET_DIR environment variable) at a folder "
    f"holding '{BINARY_DIR}' (the official binary release) or '{PICKLE_DIR}' (the Python "
    "release, as Keras caches it), or pass --allow-download to fetch it with Keras."
)


@dataclass(frozen=True)
class Split:
    """Images as uint8 NHWC (RGB) and labels as uint8, in file order."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, count: int) -> "Split":
        return Split(self.images[:count], self.labels[:count])


@dataclass(frozen=True)
class Cifar10:
    train: Split
    test: Split
    directory: Path
    format: str
    file_md5: dict[str, str]

    @property
    def fingerprint(self) -> str:
        """A short hash over every file's MD5: names this exact copy in reports and caches."""
        digest = hashlib.sha256()
        for name in sorted(self.file_md5):
            digest.update(f"{name}={self.file_md5[name]}\n".encode())
        return digest.hexdigest()[:16]


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_labels(labels: np.ndarray, path: Path) -> None:
    if labels.size and int(labels.max()) >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise DatasetError(
            f"{path}: record {bad} has label {int(labels[bad])}, outside 0..{len(CLASSES) - 1}; "
            "the file is corrupt. " + HOW_TO_GET)


def read_binary_batch(path: Path, expected_records: int | None = RECORDS_PER_BATCH) -> Split:
    """One file of the binary release: records of 1 label byte + 3072 planar RGB bytes."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found. " + HOW_TO_GET)
    raw = path.read_bytes()
    if len(raw) % RECORD_BYTES:
        raise DatasetError(
            f"{path}: {len(raw)} bytes is not a whole number of {RECORD_BYTES}-byte records "
            "(truncated or not a CIFAR-10 binary batch). " + HOW_TO_GET)
    records = len(raw) // RECORD_BYTES
    if expected_records is not None and records != expected_records:
        raise DatasetError(
            f"{path}: holds {records} records, expected {expected_records} (truncated?). "
            + HOW_TO_GET)
    table = np.frombuffer(raw, dtype=np.uint8).reshape(records, RECORD_BYTES)
    labels = table[:, 0].copy()
    _check_labels(labels, path)
    images = table[:, 1:].reshape(records, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return Split(images, labels)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Reconstructs the dict-of-arrays a CIFAR-10 Python batch holds, and nothing else.

    A pickle can run arbitrary code on load; a dataset path is user input, so
    only the handful of NumPy globals an ndarray needs are allowed.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2; harmless
    }

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def read_pickle_batch(path: Path, expected_records: int | None = RECORDS_PER_BATCH) -> Split:
    """One file of the Python release (what keras.datasets.cifar10 caches)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found. " + HOW_TO_GET)
    try:
        with open(path, "rb") as handle:
            batch = _ArrayOnlyUnpickler(io.BufferedReader(handle), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{path}: not a readable CIFAR-10 Python batch ({exc}). "
                           + HOW_TO_GET) from exc
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: expected a dict of arrays, found {type(batch).__name__}.")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(f"{path}: missing 'data' or 'labels' (keys: {sorted(batch)}).")
    data = np.asarray(batch["data"])
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: 'labels' is not a list of integers ({exc}).") from exc
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise DatasetError(f"{path}: 'data' is {data.dtype}{list(data.shape)}, "
                           f"expected uint8[N, {IMAGE_BYTES}].")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DatasetError(f"{path}: {labels.shape[0] if labels.ndim else 0} labels "
                           f"for {data.shape[0]} images.")
    if expected_records is not None and data.shape[0] != expected_records:
        raise DatasetError(f"{path}: holds {data.shape[0]} records, expected {expected_records}.")
    if labels.size and labels.min() < 0:
        raise DatasetError(f"{path}: negative label {int(labels.min())}; the file is corrupt.")
    _check_labels(labels, path)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return Split(images, labels.astype(np.uint8))


def _concat(splits: Iterable[Split]) -> Split:
    splits = list(splits)
    return Split(np.concatenate([s.images for s in splits]),
                 np.concatenate([s.labels for s in splits]))


def locate(directory: Path) -> tuple[Path, str]:
    """Accept either the batches folder itself or a folder that contains one."""
    directory = Path(directory).expanduser()
    for fmt, marker in ((BINARY_DIR, "test_batch.bin"), (PICKLE_DIR, "test_batch")):
        if directory.name == fmt or (directory / marker).is_file():
            return directory, fmt
        if (directory / fmt).is_dir():
            return directory / fmt, fmt
    raise DatasetError(f"No CIFAR-10 found in {directory} (looked for '{BINARY_DIR}/' and "
                       f"'{PICKLE_DIR}/', or their files directly). " + HOW_TO_GET)


def load_cifar10(directory: Path, verify_checksums: bool = True) -> Cifar10:
    """Read and verify all six batches from `directory`."""
    root, fmt = locate(directory)
    if fmt == BINARY_DIR:
        names = [f"{b}.bin" for b in (*TRAIN_BATCHES, TEST_BATCH)]
        reader = read_binary_batch
    else:
        names = [*TRAIN_BATCHES, TEST_BATCH]
        reader = read_pickle_batch
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DatasetError(f"{root}: missing {', '.join(missing)}. " + HOW_TO_GET)
    splits = [reader(root / n) for n in names]
    sums = {n: md5_of(root / n) for n in names}
    if verify_checksums:
        official = OFFICIAL_MD5[fmt]
        wrong = [n for n in names if sums[n] != official[n]]
        if wrong:
            detail = "; ".join(f"{n}: md5 {sums[n]}, official {official[n]}" for n in wrong)
            raise DatasetError(
                f"{root}: checksum mismatch ({detail}). The files are corrupt or not the official "
                "release; replace them, or pass --no-verify-dataset to use them anyway "
                "(the report will say so).")
    return Cifar10(train=_concat(splits[:5]), test=splits[5], directory=root,
                   format=fmt, file_md5=sums)


def download_with_keras() -> Path:
    """Fetch the Python release through Keras' own cache; only on explicit request."""
    try:
        from keras.datasets import cifar10  # noqa: F401 - imported for its side effect
        cifar10.load_data()
    except Exception as exc:  # network or Keras failures are all the user's to fix
        raise DatasetError(f"Downloading CIFAR-10 with Keras failed: {exc}. " + HOW_TO_GET) from exc
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "datasets" / PICKLE_DIR


def resolve_directory(option: str | None, repo_root: Path) -> tuple[Path | None, list[Path]]:
    """Where to look: the option, then the environment, then the places a checkout has it.

    Returns the first existing candidate (or None) and every place looked at,
    so a failure can say where it looked.
    """
    candidates: list[Path] = []
    if option:
        candidates.append(Path(option))
    elif os.environ.get(DATASET_ENV):
        candidates.append(Path(os.environ[DATASET_ENV]))
    else:
        candidates += [repo_root.parent / "shared" / "datasets",
                       repo_root / "datasets",
                       Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"]
    for candidate in candidates:
        try:
            locate(candidate)
            return candidate.expanduser(), candidates
        except DatasetError:
            continue
    return None, candidates
