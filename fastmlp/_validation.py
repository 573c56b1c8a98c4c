"""Checks at the API boundary: every kernel trusts what these functions return.

Numba does not bounds-check, so a label of 10 with 10 classes, or a row of the
wrong length, would read or write outside an array. Each function raises a
``ValueError`` that says what is wrong, and converts what can be converted
(other numeric dtypes, non-contiguous layouts) instead of rejecting it.
"""
import numbers

import numpy as np

from .kernels._config import RELU, SIGMOID
from .kernels.validate import all_finite, copy_if_finite, label_range

ACTIVATIONS = {"sigmoid": SIGMOID, "relu": RELU}
DTYPES = (np.float64, np.float32)


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return ACTIVATIONS[activation]


def check_dtype(dtype):
    try:
        dtype = np.dtype(dtype).type
    except TypeError:
        dtype = None
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be np.float64 or np.float32, got {dtype!r}")
    return dtype


def check_positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_learning_rate(learning_rate):
    if isinstance(learning_rate, (bool, np.bool_)) or not isinstance(learning_rate, numbers.Real) \
            or not np.isfinite(learning_rate) or learning_rate < 0:
        raise ValueError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
    return float(learning_rate)


def check_features(X, num_features, dtype, name="X", allow_1d=False):
    """Return ``X`` as a C-contiguous 2-D array of ``dtype`` with ``num_features`` columns.

    A 1-D ``X`` (one example) is accepted when ``allow_1d``; it comes back as one row.
    """
    if _kernel_type(X, dtype, 2) and X.shape[1] == num_features:  # as a kernel takes it
        finite = all_finite(X)
    else:
        X, finite = _converted_features(X, num_features, dtype, name, allow_1d)
    if X.size and not finite:
        raise ValueError(f"{name} contains NaN or infinity")
    return X


def _converted_features(X, num_features, dtype, name, allow_1d):
    """:func:`check_features`' conversion: ``(X, whether it is finite)``."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.ndim == 1 and allow_1d:
        X = X.reshape(1, -1)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_examples, n_features), got shape {X.shape}")
    if X.shape[1] != num_features:
        raise ValueError(f"{name} has {X.shape[1]} features, the model expects {num_features}")
    if dtype is not None and X.dtype in DTYPES and X.dtype != dtype and X.flags.c_contiguous:
        converted = np.empty(X.shape, dtype)  # float64 <-> float32: convert and check in one pass
        return converted, copy_if_finite(X, converted)
    X = _kernel_ready(np.ascontiguousarray(X, dtype=dtype))
    return X, all_finite(X)


def check_labels(y, num_classes, num_examples=None, name="y"):
    """Return ``y`` as a C-contiguous int64 vector of class indices in ``[0, num_classes)``."""
    if not _kernel_type(y, np.int64, 1):  # the usual case skips the conversion's checks
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        elif y.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if num_examples is not None and y.shape[0] != num_examples:
        raise ValueError(f"X has {num_examples} examples but {name} has {y.shape[0]} labels")
    return _int64_below(y, num_classes, lambda lo, hi: (
        f"{name} holds labels in [{lo}, {hi}]; they must lie in [0, {num_classes}) for a "
        f"model with {num_classes} classes"))


def _int64_below(values, upper, message):
    """``values`` as a kernel-ready int64 vector, checked to lie in ``[0, upper)``;
    ``message(lo, hi)`` is the error's text otherwise."""
    if not _kernel_type(values, np.int64, 1):
        values = _kernel_ready(np.ascontiguousarray(values, dtype=np.int64))
    if values.size:
        lo, hi = label_range(values)
        if lo < 0 or hi >= upper:
            raise ValueError(message(lo, hi))
    return values


def _kernel_type(array, dtype, ndim):
    """Whether ``array`` is already what a kernel takes: an ndarray of ``dtype`` and ``ndim``,
    C-contiguous, aligned and writeable (the per-call check of the usual case, ~0.3 us)."""
    return (dtype is not None and type(array) is np.ndarray and array.ndim == ndim
            and array.dtype == dtype and array.flags.carray)


def _kernel_ready(array):
    """``array``, or a copy of it where it is read-only or misaligned (as Dask delivers arrays):
    to Numba those are other types, and every kernel would compile again for them."""
    if array.flags.writeable and array.flags.aligned:
        return array
    return array.copy()


def check_order(order, num_examples):
    """Return ``order`` as a C-contiguous int64 vector of row indices in ``[0, num_examples)``."""
    order = np.asarray(order)
    if order.ndim != 1 or order.dtype.kind not in "iu":
        raise ValueError(f"order must be a 1-D array of integer row indices, got dtype "
                         f"{order.dtype} and shape {order.shape}")
    return _int64_below(order, num_examples, lambda lo, hi: (
        f"order holds row indices in [{lo}, {hi}]; they must lie in [0, {num_examples}) "
        f"for {num_examples} examples"))


def check_parameters(model):
    """Return the model's ``(weight_h, bias_h, weight_out, bias_out)`` in its dtype, C-contiguous.

    Arrays the user assigned in another dtype or layout are converted and put back
    on the model, so that kernels updating them in place update the model.
    """
    dtype = getattr(model, "dtype", np.float64)
    params = (model.weight_h, model.bias_h, model.weight_out, model.bias_out)
    if _kernel_type(params[0], dtype, 2):  # the usual case, checked in ~1.1 us (per call)
        (num_hidden, _), num_classes = params[0].shape, model.num_classes
        if (_kernel_type(params[1], dtype, 1) and params[1].shape == (num_hidden,)
                and _kernel_type(params[2], dtype, 2)
                and params[2].shape == (num_classes, num_hidden)
                and _kernel_type(params[3], dtype, 1) and params[3].shape == (num_classes,)):
            return params
    num_hidden, num_features = np.shape(model.weight_h)
    expected = {"weight_h": (num_hidden, num_features), "bias_h": (num_hidden,),
                "weight_out": (model.num_classes, num_hidden), "bias_out": (model.num_classes,)}
    converted = []
    for name, shape in expected.items():
        value = getattr(model, name)
        if np.shape(value) != shape:
            raise ValueError(f"model.{name} has shape {np.shape(value)}, expected {shape}")
        converted.append(_kernel_ready(np.ascontiguousarray(value, dtype=dtype)))
    for name, array in zip(expected, converted):
        if getattr(model, name) is not array:
            setattr(model, name, array)
    return tuple(converted)
