"""Saving and loading trained models and training histories, atomically.

Model file format (``format_version`` 1)
----------------------------------------
A NumPy ``.npz`` archive (uncompressed, no pickled objects) holding:

============== ================= =====================================================
key            dtype, shape      meaning
============== ================= =====================================================
format         str, ()           always ``"fastmlp-mlp"``
format_version int64, ()         1
num_features   int64, ()         F
num_hidden     int64, ()         H
num_classes    int64, ()         C
activation     str, ()           ``"sigmoid"`` or ``"relu"``
dtype          str, ()           ``"float64"`` or ``"float32"``
random_seed    int64, () or (k,) the model's seed; an empty array stands for ``None``
weight_h       dtype, (H, F)     hidden-layer weights
bias_h         dtype, (H,)       hidden-layer biases
weight_out     dtype, (C, H)     output-layer weights
bias_out       dtype, (C,)       output-layer biases
============== ================= =====================================================

The file is written to exactly the given path (no ``.npz`` suffix is added).
A loaded model's ``rng`` is a fresh ``np.random.RandomState(random_seed)``, as
right after construction: the generator's state after drawing the weights is
not saved.

Every write goes to a temporary file in the destination folder, is flushed to
disk, and then replaces the destination in one step (``os.replace``): a reader
sees the old file or the new one, never a partial one.
"""
import json
import os
import secrets
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._validation import check_activation, check_dtype, check_parameters, check_positive_int

FORMAT = "fastmlp-mlp"
FORMAT_VERSION = 1
_SIZES = ("num_features", "num_hidden", "num_classes")
_WEIGHTS = ("weight_h", "bias_h", "weight_out", "bias_out")
_KEYS = ("format", "format_version", *_SIZES, "activation", "dtype", "random_seed", *_WEIGHTS)


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary binary file, then move it to `path` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its folder must exist.
    write : callable
        Receives the open temporary file and writes the whole content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never an existing file; mode 0o666 less the umask, like open(path, "wb")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_model(model, path):
    """Write a model's sizes, settings and weights to an ``.npz`` file, atomically.

    Parameters
    ----------
    model : fastmlp.NeuralNetMLP or fastmlp.reference.NeuralNetMLP
        The model; a reference model is saved as float64.
    path : str or os.PathLike
        Destination file (see the module docstring for the format).

    Raises
    ------
    ValueError
        If the model's arrays do not have the shapes its sizes imply, or its
        activation is unknown.
    """
    check_activation(model.activation)
    params = dict(zip(_WEIGHTS, check_parameters(model)))
    num_hidden, num_features = params["weight_h"].shape
    seed = model.random_seed
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "num_features": np.array(num_features, np.int64),
        "num_hidden": np.array(num_hidden, np.int64),
        "num_classes": np.array(model.num_classes, np.int64),
        "activation": np.array(model.activation),
        "dtype": np.array(params["weight_h"].dtype.name),
        "random_seed": np.array([] if seed is None else seed, np.int64),
        **params,
    }
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load_model(path, cls):
    """Read a model written by :func:`save_model`, without printing or drawing anything.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_model`.
    cls : type
        The class to build, :class:`fastmlp.NeuralNetMLP` or a subclass; its
        ``__init__`` is not called. (``NeuralNetMLP.load(path)`` passes its class:
        this module does not import :mod:`fastmlp.model`, which imports it.)

    Returns
    -------
    fastmlp.NeuralNetMLP
        The model, with bit-identical weights and the saved settings.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not a fastmlp model file, is truncated or corrupt, has
        another format version, or holds arrays whose shapes or dtypes do not
        match its sizes.
    """
    with open(path, "rb") as file:
        try:
            archive = np.load(file, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with archive:
                data = {key: archive[key] for key in _KEYS if key in archive.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(f"{path}: not a fastmlp model file, or a truncated or corrupt "
                             f"one ({type(exc).__name__}: {exc})") from exc
    try:
        return _build(cls, data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _scalar(data, key):
    """The Python value of the 0-d array ``data[key]``."""
    if data[key].shape != ():
        raise ValueError(f"{key} has shape {data[key].shape}, expected a scalar")
    return data[key].item()


def _build(cls, data):
    """A ``cls`` instance from the arrays of a model file, checked against each other."""
    if "format" not in data or _scalar(data, "format") != FORMAT:
        raise ValueError(f"not a fastmlp model file (it has no format={FORMAT!r} entry)")
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise ValueError(f"incomplete fastmlp model file: no {', '.join(missing)}")
    version = _scalar(data, "format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version!r}, but this fastmlp reads version "
                         f"{FORMAT_VERSION} only (a newer fastmlp wrote it?)")
    num_features, num_hidden, num_classes = (
        check_positive_int(_scalar(data, key), key) for key in _SIZES)
    activation = _scalar(data, "activation")
    check_activation(activation)
    dtype = check_dtype(_scalar(data, "dtype"))
    shapes = {"weight_h": (num_hidden, num_features), "bias_h": (num_hidden,),
              "weight_out": (num_classes, num_hidden), "bias_out": (num_classes,)}
    for key, shape in shapes.items():
        if data[key].shape != shape or data[key].dtype != dtype:
            raise ValueError(f"{key} is {data[key].dtype} of shape {data[key].shape}, but the "
                             f"file's sizes and dtype imply {np.dtype(dtype).name} of shape "
                             f"{shape}")
    seed = data["random_seed"]
    random_seed = None if seed.size == 0 else seed.tolist()  # an int, or a list for a 1-D seed

    # the attributes __init__ sets (InitializeModel's, then NeuralNetMLP's), without its print
    model = cls.__new__(cls)
    model.random_seed = random_seed
    model.rng = np.random.RandomState(random_seed)
    model.operation = "Initialization"
    model.num_classes, model.num_features, model.num_hidden = num_classes, num_features, num_hidden
    model.activation = activation
    model.dtype = dtype
    for key in shapes:
        setattr(model, key, np.array(data[key]))  # a writeable copy: kernels update it in place
    return model


def save_history(history, path):
    """Write a training history (a JSON-serialisable dict) as indented JSON, atomically.

    Parameters
    ----------
    history : dict
        Lists of per-epoch values, the test accuracy, the options, ...; NumPy
        scalars are written as numbers.
    path : str or os.PathLike
        Destination file.
    """
    text = json.dumps(history, indent=2, default=_to_builtin) + "\n"
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def load_history(path):
    """Read a history written by :func:`save_history` (a dict)."""
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _to_builtin(value):
    """JSON fallback: NumPy scalars and arrays as Python numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
