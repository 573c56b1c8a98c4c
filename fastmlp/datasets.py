"""Data loading and preparation exactly as the textbook chapter does it.

The chapter loads MNIST with ``fetch_openml('mnist_784', version=1)``,
scales it with ``((X / 255.) - .5) * 2`` and splits it with two stratified
``train_test_split`` calls. :func:`load_mnist` gives the same 70,000 rows,
in the same order, from the original IDX files when they are available
locally, so training needs no network; :func:`load_dataset` falls back to
scikit-learn's bundled 8x8 digits when MNIST cannot be had at all.
"""
import gzip
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
from sklearn.datasets import fetch_openml, load_digits
from sklearn.model_selection import train_test_split

ENV_VAR = "FASTMLP_MNIST_DIR"
"""Environment variable naming a folder with the four MNIST IDX files."""

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four IDX files, each read as is or with a ``.gz`` suffix."""

_IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension


def _data_dir(data_dir):
    """Return the configured MNIST folder (argument, then environment), or None."""
    if data_dir is None:
        data_dir = os.environ.get(ENV_VAR) or None
    return None if data_dir is None else Path(data_dir)


def _find(directory, name):
    """Return the path of IDX file `name` in `directory` (raw preferred to .gz), or None."""
    for path in (directory / name, directory / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _read_idx(path, magic):
    """Read one IDX file of unsigned bytes, checking its header against its size.

    Parameters
    ----------
    path : pathlib.Path
        The file, gzip-compressed when its name ends in ``.gz``.
    magic : int
        The expected magic number (2051 for images, 2049 for labels).

    Returns
    -------
    numpy.ndarray
        Read-only ``uint8`` array with the shape given by the header.

    Raises
    ------
    ValueError
        If the gzip stream is corrupt, the magic number is wrong or the
        size does not match the header.
    """
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(data)} bytes, no header)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise ValueError(f"{path}: magic number {found}, expected {magic}; not an MNIST "
                         f"{'image' if magic == _IMAGES_MAGIC else 'label'} file")
    ndim = magic & 0xFF
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = offset + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes, but its header (shape {shape}) "
                         f"implies {expected}; the file is truncated or corrupt")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def _fetch_openml_mnist():
    """Fetch MNIST with scikit-learn (downloaded once, then cached), as in the chapter.

    One attempt and no warnings: scikit-learn warns "A network error
    occurred ... Retrying" before each retry (a second apart); that warning is
    raised here as an error, so the first network error ends the download
    with a ``ConnectionError`` (``n_retries`` cannot be 0).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", "A network error occurred", UserWarning)
        try:
            X, y = fetch_openml("mnist_784", version=1, return_X_y=True, as_frame=False,
                                parser="auto")
        except UserWarning as exc:
            raise ConnectionError(str(exc)) from None
    return np.ascontiguousarray(X, dtype=np.float64), y.astype(np.int64)


def mnist_available(data_dir=None):
    """Tell whether the four MNIST IDX files are present locally (never downloads).

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder to look in; defaults to the ``FASTMLP_MNIST_DIR`` environment
        variable.

    Returns
    -------
    bool
        True if a folder is configured and holds all four files (raw or ``.gz``).
    """
    directory = _data_dir(data_dir)
    return directory is not None and all(_find(directory, name) for name in MNIST_FILES)


def load_mnist(data_dir=None):
    """Load MNIST as the chapter's ``fetch_openml('mnist_784', version=1)`` gives it.

    The source is `data_dir` if given, else the folder named by the
    ``FASTMLP_MNIST_DIR`` environment variable, else ``fetch_openml``
    (downloaded once, then cached by scikit-learn). A configured folder is
    never replaced by a download.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or
        with a ``.gz`` suffix.

    Returns
    -------
    X : numpy.ndarray
        C-contiguous ``float64`` array of shape (n_examples, n_pixels) with
        values 0..255; the training rows first, then the test rows
        ((70000, 784) for MNIST).
    y : numpy.ndarray
        ``int64`` labels of shape (n_examples,).

    Raises
    ------
    FileNotFoundError
        If a configured folder lacks any of the four files.
    ValueError
        If a file is corrupt, truncated or inconsistent with its partner.
    """
    directory = _data_dir(data_dir)
    if directory is None:
        return _fetch_openml_mnist()
    missing = [name for name in MNIST_FILES if _find(directory, name) is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST file(s) {', '.join(f'{name}[.gz]' for name in missing)} not found "
            f"in {directory}")
    images, labels = [], []
    for prefix in ("train", "t10k"):
        images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
        labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
        X = _read_idx(images_path, _IMAGES_MAGIC)
        y = _read_idx(labels_path, _LABELS_MAGIC)
        if len(X) != len(y):
            raise ValueError(f"{images_path} has {len(X)} images but {labels_path} "
                             f"has {len(y)} labels")
        if images and X.shape[1:] != images[0].shape[1:]:
            raise ValueError(f"{images_path}: images are {X.shape[1:]}, but the "
                             f"training images are {images[0].shape[1:]}")
        images.append(X)
        labels.append(y)
    return (np.concatenate([X.reshape(len(X), -1) for X in images], dtype=np.float64),
            np.concatenate(labels, dtype=np.int64))


def load_digits_as_mnist_like():
    """Load scikit-learn's bundled 8x8 digits on MNIST's 0..255 scale.

    Returns
    -------
    X : numpy.ndarray
        ``float64`` array of shape (1797, 64), the 0..16 pixel values scaled
        to 0..255 so that :func:`normalize` maps them to [-1, 1].
    y : numpy.ndarray
        ``int64`` labels of shape (1797,).
    """
    X, y = load_digits(return_X_y=True)
    return X * (255. / 16.), y.astype(np.int64)


def load_dataset(name="mnist", data_dir=None):
    """Load a dataset by name, falling back from MNIST to the 8x8 digits.

    For ``"mnist"``, a configured folder (`data_dir` or ``FASTMLP_MNIST_DIR``)
    is read with :func:`load_mnist` and its errors are raised; otherwise
    MNIST is fetched with ``fetch_openml``, and if that fails (no network,
    say) the 8x8 digits are returned with a notice saying so.

    Parameters
    ----------
    name : {"mnist", "digits"}
        The dataset.
    data_dir : str or os.PathLike, optional
        Folder with the MNIST IDX files, as for :func:`load_mnist`.

    Returns
    -------
    X : numpy.ndarray
        ``float64`` pixels on the 0..255 scale, one row per image.
    y : numpy.ndarray
        ``int64`` labels.
    image_shape : tuple of int
        (28, 28) for MNIST, (8, 8) for the digits.
    notice : str or None
        One line to show the user when MNIST was replaced by the digits,
        else None.

    Raises
    ------
    ValueError
        If `name` is unknown.
    """
    if name == "digits":
        return (*load_digits_as_mnist_like(), (8, 8), None)
    if name != "mnist":
        raise ValueError(f"unknown dataset {name!r}; expected 'mnist' or 'digits'")
    if _data_dir(data_dir) is not None:
        return (*load_mnist(data_dir), (28, 28), None)
    try:
        X, y = _fetch_openml_mnist()
    except Exception as exc:  # no network, OpenML down, broken cache, ...
        notice = (f"MNIST could not be downloaded ({type(exc).__name__}; set {ENV_VAR} or "
                  f"--data-dir, or connect to the internet): using scikit-learn's 8x8 digits.")
        return (*load_digits_as_mnist_like(), (8, 8), notice)
    return X, y, (28, 28), None


def normalize(X):
    """Scale 0..255 pixels to [-1, 1] with the chapter's ``((X / 255.) - .5) * 2``.

    Parameters
    ----------
    X : numpy.ndarray
        Pixels on the 0..255 scale.

    Returns
    -------
    numpy.ndarray
        A new array, bit-identical to the chapter's expression.
    """
    return ((X / 255.) - .5) * 2


def train_valid_test_split(X, y, random_state=123, test_size=10000, valid_size=5000):
    """Split into training, validation and test sets exactly as the chapter does.

    Two stratified ``train_test_split`` calls: first `test_size` test
    examples off the whole, then `valid_size` validation examples off the
    rest, both with `random_state`.

    Parameters
    ----------
    X : numpy.ndarray
        Features, one row per example.
    y : numpy.ndarray
        Labels, used for stratification.
    random_state : int, default 123
        Seed of both splits.
    test_size : int, default 10000
        Number of test examples.
    valid_size : int, default 5000
        Number of validation examples.

    Returns
    -------
    X_train, X_valid, X_test, y_train, y_valid, y_test : numpy.ndarray
        The three feature sets, then the three label sets, in that order.
    """
    X_temp, X_test, y_temp, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y)
    X_train, X_valid, y_train, y_valid = train_test_split(
        X_temp, y_temp, test_size=valid_size, random_state=random_state, stratify=y_temp)
    return X_train, X_valid, X_test, y_train, y_valid, y_test
