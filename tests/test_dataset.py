"""The CIFAR-10 readers: real files, both formats, and every way a file can be wrong."""
from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
from mcuqual.data import cifar10 as dataset
from mcuqual.data.cifar10 import (
    RECORD_BYTES,
    DatasetError,
    load_cifar10,
    locate,
    read_binary_batch,
    read_pickle_batch,
)


def _binary_records(labels, images_chw) -> bytes:
    return b"".join(bytes([label]) + image.tobytes() for label, image in zip(labels, images_chw))


def test_binary_record_layout_is_planar_rgb(tmp_path):
    rng = np.random.default_rng(0)
    chw = rng.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    path = tmp_path / "batch.bin"
    path.write_bytes(_binary_records([1, 9, 0], chw))
    split = read_binary_batch(path, expected_records=None)
    assert split.labels.tolist() == [1, 9, 0]
    assert split.images.shape == (3, 32, 32, 3)
    # pixel (row 5, col 7) of image 1: red, green, blue planes in that order
    assert split.images[1, 5, 7].tolist() == [chw[1, 0, 5, 7], chw[1, 1, 5, 7], chw[1, 2, 5, 7]]


def test_truncated_binary_batch_is_rejected(tmp_path, cifar_dir):
    root, _ = locate(cifar_dir)
    path = tmp_path / "test_batch.bin"
    path.write_bytes((root / "test_batch.bin").read_bytes()[: RECORD_BYTES * 10 + 100])
    with pytest.raises(DatasetError, match="truncated"):
        read_binary_batch(path)


def test_short_binary_batch_is_rejected(tmp_path, cifar_dir):
    root, _ = locate(cifar_dir)
    path = tmp_path / "test_batch.bin"
    path.write_bytes((root / "test_batch.bin").read_bytes()[: RECORD_BYTES * 10])
    with pytest.raises(DatasetError, match="holds 10 records, expected 10000"):
        read_binary_batch(path)


def test_label_out_of_range_is_rejected(tmp_path):
    chw = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    path = tmp_path / "batch.bin"
    path.write_bytes(_binary_records([3, 10], chw))
    with pytest.raises(DatasetError, match="record 1 has label 10"):
        read_binary_batch(path, expected_records=None)


def test_real_dataset_counts_classes_and_checksums(cifar):
    assert len(cifar.train) == 50_000 and len(cifar.test) == 10_000
    assert np.bincount(cifar.test.labels, minlength=10).tolist() == [1000] * 10
    assert np.bincount(cifar.train.labels, minlength=10).tolist() == [5000] * 10
    assert cifar.file_md5 == dataset.OFFICIAL_MD5[cifar.format]
    assert cifar.train.images.dtype == np.uint8 and cifar.train.images.shape[1:] == (32, 32, 3)


def _copy_dataset(cifar_dir, tmp_path):
    root, fmt = locate(cifar_dir)
    target = tmp_path / fmt
    shutil.copytree(root, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def test_corrupt_byte_fails_the_checksum(tmp_path, cifar_dir):
    target = _copy_dataset(cifar_dir, tmp_path)
    name = "test_batch.bin" if target.name == dataset.BINARY_DIR else "test_batch"
    data = bytearray((target / name).read_bytes())
    data[RECORD_BYTES * 5 + 1] ^= 0xFF     # a pixel, not a label: only the checksum can tell
    (target / name).write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_cifar10(tmp_path)
    loaded = load_cifar10(tmp_path, verify_checksums=False)
    assert len(loaded.test) == 10_000


def test_missing_file_is_named(tmp_path, cifar_dir):
    target = _copy_dataset(cifar_dir, tmp_path)
    victim = sorted(target.glob("data_batch_3*"))[0]
    victim.unlink()
    with pytest.raises(DatasetError, match=f"missing {victim.name}"):
        load_cifar10(target)


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_cifar10(tmp_path / "nowhere")
    assert "nowhere" in str(info.value) and "--dataset-dir" in str(info.value)


def _pickle_batch(path, data, labels, protocol=2):
    with open(path, "wb") as handle:
        pickle.dump({b"batch_label": b"test", b"labels": labels, b"data": data,
                     b"filenames": [b"x.png"] * len(labels)}, handle, protocol=protocol)


def test_pickle_batch_matches_the_binary_layout(tmp_path, cifar):
    images = cifar.test.images[:20]
    flat = images.transpose(0, 3, 1, 2).reshape(20, -1)   # the Python release stores planar rows
    path = tmp_path / "test_batch"
    _pickle_batch(path, flat, cifar.test.labels[:20].tolist())
    split = read_pickle_batch(path, expected_records=None)
    np.testing.assert_array_equal(split.images, images)
    np.testing.assert_array_equal(split.labels, cifar.test.labels[:20])


class _Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_pickle_with_foreign_globals_is_refused(tmp_path):
    path = tmp_path / "test_batch"
    with open(path, "wb") as handle:
        pickle.dump({b"data": _Exploit(), b"labels": [0]}, handle, protocol=2)
    with pytest.raises(DatasetError, match="refusing to load global"):
        read_pickle_batch(path, expected_records=None)


def test_pickle_with_wrong_shape_is_rejected(tmp_path):
    path = tmp_path / "test_batch"
    _pickle_batch(path, np.zeros((4, 100), dtype=np.uint8), [0, 1, 2, 3])
    with pytest.raises(DatasetError, match="expected uint8"):
        read_pickle_batch(path, expected_records=None)


def test_truncated_pickle_is_rejected(tmp_path, cifar):
    path = tmp_path / "test_batch"
    _pickle_batch(path, cifar.test.images[:5].transpose(0, 3, 1, 2).reshape(5, -1), [0] * 5)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DatasetError, match="not a readable CIFAR-10 Python batch"):
        read_pickle_batch(path, expected_records=None)


def test_pickle_format_dataset_loads(tmp_path, cifar):
    """A whole Python-format folder, as Keras caches it (small batches, checksums off)."""
    folder = tmp_path / dataset.PICKLE_DIR
    folder.mkdir()
    for name, split in [*((b, cifar.train) for b in dataset.TRAIN_BATCHES),
                        (dataset.TEST_BATCH, cifar.test)]:
        flat = split.images[:10_000].transpose(0, 3, 1, 2).reshape(-1, 3072)
        _pickle_batch(folder / name, flat, split.labels[:10_000].tolist())
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_cifar10(tmp_path)   # our re-pickled files are not the official bytes
    loaded = load_cifar10(tmp_path, verify_checksums=False)
    assert loaded.format == dataset.PICKLE_DIR and len(loaded.train) == 50_000
    np.testing.assert_array_equal(loaded.test.images, cifar.test.images)
