"""Input checks that are too slow as NumPy expressions on a 55,000 x 784 matrix."""
import math

from ._config import jit


@jit(entry=True)
def all_finite(X):
    """True when no entry of the 2-D array ``X`` is NaN or infinite (one pass, no temporary)."""
    zero = X.dtype.type(0)
    for i in range(X.shape[0]):
        s = zero
        for j in range(X.shape[1]):
            s += X[i, j] * zero  # NaN once any entry is NaN or infinite; vectorises, unlike a test
        if s != s:
            return False
    return True


@jit(entry=True)
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


@jit(entry=True)
def copy_if_finite(X, out):
    """``out[:] = X`` (converting the dtype) in one pass; False if X holds NaN or infinity."""
    bad = 0
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            value = X[i, j]
            if not math.isfinite(value):
                bad += 1
            out[i, j] = value
    return bad == 0
