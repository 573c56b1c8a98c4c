"""Saving and loading trained models and training histories, atomically.

Model file format (``format_version`` 2)
----------------------------------------
A NumPy ``.npz`` archive (uncompressed, no pickled objects) recording the whole
architecture, for the chapter's :class:`fastmlp.NeuralNetMLP` and for the general
:class:`fastmlp.network.Network` alike (L layers of weights):

============== ================= =====================================================
key            dtype, shape      meaning
============== ================= =====================================================
format         str, ()           always ``"fastmlp-mlp"``
format_version int64, ()         2
units          int64, (L + 1,)   layer sizes ``[n_features, hidden..., n_outputs]``
activation     str, ()           hidden activation: ``"sigmoid"`` (= ``"logistic"``),
                                 ``"relu"``, ``"tanh"``, ``"identity"``
loss           str, ()           ``"mse"`` (the chapter's sigmoid outputs) or
                                 ``"log_loss"`` (softmax; one logistic output)
alpha          float64, ()       L2 penalty (0 for the chapter's model)
dtype          str, ()           ``"float64"`` or ``"float32"``
random_seed    int64, () or (k,) the chapter model's seed; an empty array stands for
                                 ``None`` (always, for a general network)
coef_{i}       dtype, (u_i, u_i+1) layer ``i``'s weights, ``z = a @ coef_i + intercept_i``
intercept_{i}  dtype, (u_i+1,)   layer ``i``'s biases, ``i = 0 .. L - 1``
============== ================= =====================================================

The chapter's model is ``units = [F, H, C]``, ``loss = "mse"``, ``coef_0 =
weight_h.T``, ``coef_1 = weight_out.T`` (transposes are exact: round trips are
bit for bit). Files of ``format_version`` 1 (the chapter's model only: keys
``num_features``, ``num_hidden``, ``num_classes``, ``activation``, ``dtype``,
``random_seed``, ``weight_h`` (H, F), ``bias_h``, ``weight_out`` (C, H),
``bias_out``) still load, with :func:`load_model` and :func:`load_network`.

The file is written to exactly the given path (no ``.npz`` suffix is added).
A loaded chapter model's ``rng`` is a fresh ``np.random.RandomState(random_seed)``,
as right after construction: the generator's state after drawing the weights is
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

from ._validation import (ACTIVATIONS, check_activation, check_dtype, check_parameters,
                          check_positive_int)
from .network import ACTIVATIONS as NETWORK_ACTIVATIONS
from .network import LOSSES, Network

FORMAT = "fastmlp-mlp"
FORMAT_VERSION = 2
_KEYS = ("format", "format_version", "units", "activation", "loss", "alpha", "dtype",
         "random_seed")  # and coef_{i}, intercept_{i} for each layer
_V1_SIZES = ("num_features", "num_hidden", "num_classes")
_V1_WEIGHTS = ("weight_h", "bias_h", "weight_out", "bias_out")
_V1_KEYS = ("format", "format_version", *_V1_SIZES, "activation", "dtype", "random_seed",
            *_V1_WEIGHTS)


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
    """Write a chapter model's architecture and weights to an ``.npz`` file, atomically.

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
    weight_h, bias_h, weight_out, bias_out = check_parameters(model)
    num_hidden, num_features = weight_h.shape
    _write(path, [num_features, num_hidden, model.num_classes], model.activation, "mse", 0.0,
           model.random_seed, [weight_h.T, weight_out.T], [bias_h, bias_out])


def save_network(network, path):
    """Write a :class:`fastmlp.network.Network` (architecture, settings, weights), atomically.

    Parameters
    ----------
    network : fastmlp.network.Network
    path : str or os.PathLike
        Destination file (see the module docstring for the format).
    """
    _write(path, network.units, network.activation, network.loss, network.alpha, None,
           network.coefs, network.intercepts)


def _write(path, units, activation, loss, alpha, seed, coefs, intercepts):
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "units": np.array(units, np.int64),
        "activation": np.array(activation),
        "loss": np.array(loss),
        "alpha": np.array(alpha, np.float64),
        "dtype": np.array(coefs[0].dtype.name),
        "random_seed": np.array([] if seed is None else seed, np.int64),
        **{f"coef_{i}": np.ascontiguousarray(c) for i, c in enumerate(coefs)},
        **{f"intercept_{i}": b for i, b in enumerate(intercepts)},
    }
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load_model(path, cls):
    """Read a chapter model written by :func:`save_model`, without printing or drawing anything.

    Parameters
    ----------
    path : str or os.PathLike
        A file of format version 1 or 2 holding the chapter's architecture (one
        hidden layer, sigmoid or ReLU, MSE, no L2 penalty).
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
        another format version, holds arrays whose shapes or dtypes do not
        match its sizes, or holds another architecture (use :func:`load_network`).
    """
    spec = _load_spec(path)
    units, activation = spec["units"], _CHAPTER_NAMES.get(spec["activation"], spec["activation"])
    if len(units) != 3 or spec["loss"] != "mse" or spec["alpha"] != 0 \
            or activation not in ACTIVATIONS:
        raise ValueError(f"{path}: holds a network of layers {units}, activation "
                         f"{spec['activation']!r}, loss {spec['loss']!r}, alpha "
                         f"{spec['alpha']}, not the chapter's architecture: load it with "
                         f"fastmlp.persistence.load_network")
    # the attributes __init__ sets (InitializeModel's, then NeuralNetMLP's), without its print
    model = cls.__new__(cls)
    model.random_seed = spec["random_seed"]
    model.rng = np.random.RandomState(spec["random_seed"])
    model.operation = "Initialization"
    model.num_features, model.num_hidden, model.num_classes = units
    model.activation = activation
    model.dtype = spec["dtype"]
    for name, array in zip(_V1_WEIGHTS, (spec["coefs"][0].T, spec["intercepts"][0],
                                         spec["coefs"][1].T, spec["intercepts"][1])):
        setattr(model, name, np.array(array))  # a writeable copy: kernels update it in place
    return model


def load_network(path):
    """Read any model file (format version 1 or 2) as a :class:`fastmlp.network.Network`.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`load_model`.
    """
    spec = _load_spec(path)
    network = Network(spec["units"], spec["activation"], spec["loss"], spec["alpha"],
                      spec["dtype"])
    network.set_weights(spec["coefs"], spec["intercepts"])
    return network


_CHAPTER_NAMES = {"logistic": "sigmoid"}  # a network's name for the chapter's sigmoid


def _load_spec(path):
    """The checked contents of a model file of either version, in version 2's terms."""
    with open(path, "rb") as file:
        try:
            archive = np.load(file, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with archive:
                data = {key: archive[key] for key in archive.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(f"{path}: not a fastmlp model file, or a truncated or corrupt "
                             f"one ({type(exc).__name__}: {exc})") from exc
    try:
        if "format" not in data or _scalar(data, "format") != FORMAT:
            raise ValueError(f"not a fastmlp model file (it has no format={FORMAT!r} entry)")
        version = _scalar(data, "format_version") if "format_version" in data else None
        if version == 1:
            return _spec_v1(data)
        if version != FORMAT_VERSION:
            raise ValueError(f"format version {version!r}, but this fastmlp reads versions "
                             f"1 and {FORMAT_VERSION} only (a newer fastmlp wrote it?)")
        return _spec_v2(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _scalar(data, key):
    """The Python value of the 0-d array ``data[key]``."""
    if data[key].shape != ():
        raise ValueError(f"{key} has shape {data[key].shape}, expected a scalar")
    return data[key].item()


def _require(data, keys):
    missing = [key for key in keys if key not in data]
    if missing:
        raise ValueError(f"incomplete fastmlp model file: no {', '.join(missing)}")


def _check_array(data, key, shape, dtype):
    if data[key].shape != shape or data[key].dtype != dtype:
        raise ValueError(f"{key} is {data[key].dtype} of shape {data[key].shape}, but the "
                         f"file's sizes and dtype imply {np.dtype(dtype).name} of shape {shape}")
    return data[key]


def _seed(data):
    seed = data["random_seed"]
    return None if seed.size == 0 else seed.tolist()  # an int, or a list for a 1-D seed


def _spec_v1(data):
    """A version-1 file (the chapter's model, weights (fan_out, fan_in))."""
    _require(data, _V1_KEYS)
    num_features, num_hidden, num_classes = (
        check_positive_int(_scalar(data, key), key) for key in _V1_SIZES)
    activation = _scalar(data, "activation")
    check_activation(activation)
    dtype = check_dtype(_scalar(data, "dtype"))
    weight_h, bias_h, weight_out, bias_out = (
        _check_array(data, key, shape, dtype) for key, shape in zip(_V1_WEIGHTS, (
            (num_hidden, num_features), (num_hidden,), (num_classes, num_hidden),
            (num_classes,))))
    return dict(units=[num_features, num_hidden, num_classes], activation=activation,
                loss="mse", alpha=0.0, dtype=dtype, random_seed=_seed(data),
                coefs=[weight_h.T, weight_out.T], intercepts=[bias_h, bias_out])


def _spec_v2(data):
    """A version-2 file: any architecture."""
    _require(data, _KEYS)
    units = data["units"]
    if units.ndim != 1 or units.shape[0] < 2 or units.dtype.kind not in "iu":
        raise ValueError(f"units must be a 1-D integer array of at least two layer sizes, "
                         f"got {units.dtype} of shape {units.shape}")
    units = [check_positive_int(u, "every layer size in units") for u in units.tolist()]
    activation, loss = _scalar(data, "activation"), _scalar(data, "loss")
    if activation not in NETWORK_ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(NETWORK_ACTIVATIONS)}, "
                         f"got {activation!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    alpha = _scalar(data, "alpha")
    if not isinstance(alpha, float) or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite float >= 0, got {alpha!r}")
    dtype = check_dtype(_scalar(data, "dtype"))
    layers = range(len(units) - 1)
    weights = [f"{kind}_{i}" for i in layers for kind in ("coef", "intercept")]
    _require(data, weights)
    unexpected = sorted(set(data) - set(_KEYS) - set(weights))
    if unexpected:
        raise ValueError(f"unexpected entries {', '.join(unexpected)} in a file of "
                         f"{len(layers)} layers")
    coefs = [_check_array(data, f"coef_{i}", (units[i], units[i + 1]), dtype) for i in layers]
    intercepts = [_check_array(data, f"intercept_{i}", (units[i + 1],), dtype) for i in layers]
    return dict(units=units, activation=activation, loss=loss, alpha=alpha, dtype=dtype,
                random_seed=_seed(data), coefs=coefs, intercepts=intercepts)


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
