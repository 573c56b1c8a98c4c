"""Input checks that are too slow as NumPy expressions on a 55,000 x 784 matrix."""
import math

import numba

from ._config import jit


@jit(parallel=True)
def all_finite(X):
    """True when no entry of the 2-D array ``X`` is NaN or infinite (one parallel pass, no temporary)."""
    num_rows = X.shape[0]
    bad = 0
    for i in numba.prange(num_rows):
        for j in range(X.shape[1]):
            if not math.isfinite(X[i, j]):
                bad += 1
                break
    return bad == 0


@jit
def label_range(y):
    """``(min(y), max(y))`` of a non-empty integer vector in one pass."""
    lo = y[0]
    hi = y[0]
    for v in y:
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
    return lo, hi


@jit(parallel=True)
def copy_if_finite(X, out):
    """``out[:] = X`` (converting the dtype) in one parallel pass; False if X holds NaN or infinity."""
    bad = 0
    for i in numba.prange(X.shape[0]):
        for j in range(X.shape[1]):
            value = X[i, j]
            if not math.isfinite(value):
                bad += 1
            out[i, j] = value
    return bad == 0
