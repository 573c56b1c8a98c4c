"""Tests of fastmlp.datasets: tiny synthetic IDX files always, real MNIST when present."""
import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from fastmlp import datasets
from fastmlp.datasets import (ENV_VAR, MNIST_FILES, load_dataset, load_digits_as_mnist_like,
                              load_mnist, mnist_available, normalize, train_valid_test_split)

_SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
MNIST_DIR = os.environ.get(ENV_VAR) or (str(_SHARED_MNIST) if _SHARED_MNIST.is_dir() else None)
needs_mnist = pytest.mark.skipif(
    MNIST_DIR is None,
    reason=f"real MNIST not available: set {ENV_VAR} or provide {_SHARED_MNIST}")


def _idx_bytes(magic, array):
    """Serialise a uint8 array as an IDX file."""
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def _write(directory, name, data, gz):
    path = directory / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _write_mnist(directory, gz, n_train=5, n_test=3, shape=(3, 2), seed=0):
    """Write four tiny IDX files to `directory`; return the X, y that load_mnist should give."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_train + n_test, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n_train + n_test, dtype=np.uint8)
    parts = {"train": slice(0, n_train), "t10k": slice(n_train, None)}
    for prefix, rows in parts.items():
        _write(directory, f"{prefix}-images-idx3-ubyte", _idx_bytes(2051, images[rows]), gz)
        _write(directory, f"{prefix}-labels-idx1-ubyte", _idx_bytes(2049, labels[rows]), gz)
    return images.reshape(len(images), -1).astype(np.float64), labels.astype(np.int64)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test may download: the fetch fails unless a test replaces it."""
    def fetch():
        raise OSError("network disabled in tests")
    monkeypatch.setattr(datasets, "_fetch_openml_mnist", fetch)


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


# --- synthetic IDX files -------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True, "mixed"])
def test_load_mnist_reads_idx_exactly(tmp_path, no_env, gz):
    X_expected, y_expected = _write_mnist(tmp_path, gz=bool(gz))
    if gz == "mixed":  # test files raw, training files compressed
        for name in MNIST_FILES[2:]:
            path = tmp_path / f"{name}.gz"
            (tmp_path / name).write_bytes(gzip.decompress(path.read_bytes()))
            path.unlink()
    X, y = load_mnist(tmp_path)
    assert X.dtype == np.float64 and X.flags.c_contiguous and X.shape == (8, 6)
    assert y.dtype == np.int64 and y.shape == (8,)
    np.testing.assert_array_equal(X, X_expected)
    np.testing.assert_array_equal(y, y_expected)
    assert mnist_available(tmp_path)


def test_env_var_is_honoured_and_argument_wins(tmp_path, monkeypatch):
    env_dir, arg_dir = tmp_path / "env", tmp_path / "arg"
    env_dir.mkdir()
    arg_dir.mkdir()
    X_env, y_env = _write_mnist(env_dir, gz=True, seed=1)
    X_arg, _ = _write_mnist(arg_dir, gz=False, seed=2)
    monkeypatch.setenv(ENV_VAR, str(env_dir))
    assert mnist_available()
    X, y = load_mnist()
    np.testing.assert_array_equal(X, X_env)
    np.testing.assert_array_equal(y, y_env)
    np.testing.assert_array_equal(load_mnist(arg_dir)[0], X_arg)
    X, y, image_shape, notice = load_dataset("mnist")
    np.testing.assert_array_equal(X, X_env)
    assert notice is None and image_shape == (28, 28)


def test_mnist_available_is_false_without_files(tmp_path, no_env):
    assert not mnist_available()
    assert not mnist_available(tmp_path)
    _write_mnist(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    assert not mnist_available(tmp_path)


@pytest.mark.parametrize("missing", MNIST_FILES)
def test_missing_file_names_file_and_folder(tmp_path, no_env, missing):
    _write_mnist(tmp_path, gz=True)
    (tmp_path / f"{missing}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=missing) as info:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_configured_folder_never_falls_back_to_download(tmp_path, monkeypatch):
    def fetch():
        raise AssertionError("must not download")
    monkeypatch.setattr(datasets, "_fetch_openml_mnist", fetch)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_mnist()
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset("mnist")
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        load_dataset("mnist", data_dir=tmp_path / "elsewhere")


def _corrupt_wrong_magic(path):
    path.write_bytes(_idx_bytes(2049, np.zeros(5, np.uint8)))  # a label file


def _corrupt_truncated(path):
    path.write_bytes(path.read_bytes()[:-1])


def _corrupt_extra_byte(path):
    path.write_bytes(path.read_bytes() + b"\0")


def _corrupt_short_header(path):
    path.write_bytes(path.read_bytes()[:10])


def _corrupt_tiny(path):
    path.write_bytes(b"\0\0")


@pytest.mark.parametrize("corrupt", [_corrupt_wrong_magic, _corrupt_truncated,
                                     _corrupt_extra_byte, _corrupt_short_header,
                                     _corrupt_tiny])
def test_corrupt_raw_file_raises_value_error_naming_it(tmp_path, no_env, corrupt):
    _write_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    corrupt(path)
    with pytest.raises(ValueError, match=str(path)):
        load_mnist(tmp_path)


@pytest.mark.parametrize("payload", [
    lambda data: b"not gzip at all" + data,                 # bad magic
    lambda data: gzip.compress(data)[:-12],                 # stream cut short
    lambda data: gzip.compress(data)[:12] + b"\xff" * 40,   # garbage deflate data
])
def test_corrupt_gzip_raises_value_error_naming_it(tmp_path, no_env, payload):
    _write_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(payload(gzip.decompress(path.read_bytes())))
    with pytest.raises(ValueError, match=str(path)):
        load_mnist(tmp_path)


def test_image_and_label_counts_must_agree(tmp_path, no_env):
    _write_mnist(tmp_path, gz=False)
    _write(tmp_path, "t10k-labels-idx1-ubyte", _idx_bytes(2049, np.zeros(4, np.uint8)), False)
    with pytest.raises(ValueError, match="3 images.*4 labels"):
        load_mnist(tmp_path)


def test_train_and_test_image_shapes_must_agree(tmp_path, no_env):
    _write_mnist(tmp_path, gz=False)
    images = np.zeros((3, 2, 3), np.uint8)  # training images are 3x2
    _write(tmp_path, "t10k-images-idx3-ubyte", _idx_bytes(2051, images), False)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_normalize_is_bit_identical_to_chapter():
    X = np.random.default_rng(0).integers(0, 256, size=(50, 784)).astype(np.float64)
    X = np.vstack([X, np.arange(256.).repeat(784 // 256 + 1)[:784]])
    chapter = ((X / 255.) - .5) * 2
    out = normalize(X)
    assert out.dtype == np.float64
    assert out.tobytes() == chapter.tobytes()
    assert out.min() == -1. and out.max() == 1.


def test_split_matches_chapter_code():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = rng.integers(0, 3, size=300)
    X_temp, X_test, y_temp, y_test = train_test_split(
        X, y, test_size=60, random_state=7, stratify=y)
    X_train, X_valid, y_train, y_valid = train_test_split(
        X_temp, y_temp, test_size=40, random_state=7, stratify=y_temp)
    ours = train_valid_test_split(X, y, random_state=7, test_size=60, valid_size=40)
    for got, want in zip(ours, (X_train, X_valid, X_test, y_train, y_valid, y_test)):
        np.testing.assert_array_equal(got, want)


def test_digits_on_mnist_scale():
    X, y = load_digits_as_mnist_like()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0. and X.max() == 255.
    assert normalize(X).min() == -1. and normalize(X).max() == 1.


def test_load_dataset_digits():
    X, y, image_shape, notice = load_dataset("digits")
    X_digits, y_digits = load_digits_as_mnist_like()
    np.testing.assert_array_equal(X, X_digits)
    np.testing.assert_array_equal(y, y_digits)
    assert image_shape == (8, 8) and notice is None


def test_load_dataset_falls_back_to_digits_with_notice(no_env):
    X, y, image_shape, notice = load_dataset("mnist")
    assert X.shape == (1797, 64) and y.shape == (1797,) and image_shape == (8, 8)
    assert "\n" not in notice
    for words in ("MNIST", "8x8 digits", ENV_VAR, "--data-dir", "internet"):
        assert words in notice


def test_load_dataset_downloads_when_nothing_is_configured(no_env, monkeypatch):
    X_dl, y_dl = np.zeros((2, 784)), np.array([3, 4])
    monkeypatch.setattr(datasets, "_fetch_openml_mnist", lambda: (X_dl, y_dl))
    X, y, image_shape, notice = load_dataset()
    assert X is X_dl and y is y_dl and image_shape == (28, 28) and notice is None
    assert load_mnist()[0] is X_dl


def test_load_dataset_reads_local_files(tmp_path, no_env):
    X_expected, y_expected = _write_mnist(tmp_path, gz=True)
    X, y, image_shape, notice = load_dataset("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(X, X_expected)
    np.testing.assert_array_equal(y, y_expected)
    assert image_shape == (28, 28) and notice is None


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="fashion"):
        load_dataset("fashion")


# --- real MNIST ----------------------------------------------------------------------

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(MNIST_DIR)


@needs_mnist
def test_real_mnist_shapes_and_values(mnist):
    X, y = mnist
    assert X.shape == (70000, 784) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.shape == (70000,) and y.dtype == np.int64
    assert X.min() == 0. and X.max() == 255.
    assert np.array_equal(X, X.astype(np.uint8))
    assert np.shape(X[y == 7]) == (7293, 784)  # as printed in the chapter


@needs_mnist
def test_real_mnist_label_counts(mnist):
    _, y = mnist
    assert np.bincount(y[:60000]).tolist() == TRAIN_COUNTS
    assert np.bincount(y[60000:]).tolist() == TEST_COUNTS


@needs_mnist
def test_real_mnist_matches_original_file_checksums(mnist):
    """Re-serialise what the loader returned; it must be byte-for-byte the original files."""
    X, y = mnist
    arrays = {
        "train-images-idx3-ubyte": _idx_bytes(2051, X[:60000].reshape(-1, 28, 28)),
        "train-labels-idx1-ubyte": _idx_bytes(2049, y[:60000]),
        "t10k-images-idx3-ubyte": _idx_bytes(2051, X[60000:].reshape(-1, 28, 28)),
        "t10k-labels-idx1-ubyte": _idx_bytes(2049, y[60000:]),
    }
    for name, data in arrays.items():
        assert hashlib.md5(data).hexdigest() == MD5[name], name


@needs_mnist
def test_real_mnist_split(mnist):
    _, y = mnist
    idx = np.arange(len(y))
    i_train, i_valid, i_test, y_train, y_valid, y_test = train_valid_test_split(idx, y)
    assert (len(i_train), len(i_valid), len(i_test)) == (55000, 5000, 10000)
    assert np.array_equal(np.sort(np.concatenate([i_train, i_valid, i_test])), idx)
    for rows, labels in ((i_train, y_train), (i_valid, y_valid), (i_test, y_test)):
        np.testing.assert_array_equal(labels, y[rows])
        expected = np.bincount(y) * len(labels) / len(y)
        assert np.abs(np.bincount(labels, minlength=10) - expected).max() <= 1
    i_temp, c_test, y_temp, _ = train_test_split(idx, y, test_size=10000, random_state=123,
                                                 stratify=y)
    c_train, c_valid, _, _ = train_test_split(i_temp, y_temp, test_size=5000,
                                              random_state=123, stratify=y_temp)
    for got, want in ((i_train, c_train), (i_valid, c_valid), (i_test, c_test)):
        np.testing.assert_array_equal(got, want)
