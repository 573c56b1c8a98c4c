"""Numba options shared by every kernel, set once (numbagg style).

fastmath: ``reassoc`` and ``contract`` let LLVM vectorise reductions and fuse
multiply-adds; ``nsz`` and ``arcp`` are harmless here. ``nnan``/``ninf`` are never
set: they would let LLVM delete NaN and infinity checks.

cache=True: compiled kernels are written next to the sources, or where
``NUMBA_CACHE_DIR`` points (Numba falls back to a per-user folder when the
install is read-only).
"""
import numba

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})

# Hidden-layer activations, as passed to the kernels (the output layer is always sigmoid).
SIGMOID = 0
RELU = 1


def jit(fn=None, *, parallel=False):
    """``numba.njit`` with the project's options: cached, nogil, fastmath as above."""
    options = dict(cache=True, nogil=True, fastmath=set(FASTMATH), parallel=parallel,
                   error_model="numpy")
    if fn is None:
        return numba.njit(**options)
    return numba.njit(**options)(fn)
