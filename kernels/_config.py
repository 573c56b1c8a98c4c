"""Numba options shared by every kernel, set once (numbagg style).

fastmath: ``reassoc`` and ``contract`` let LLVM vectorise reductions and fuse
multiply-adds; ``nsz`` is harmless here. ``nnan``/``ninf`` are never set: they would
let LLVM delete NaN and infinity checks. Nor is ``arcp``: it lets LLVM turn ``x / n``
into ``x * (1 / n)`` where it sees fit, and it did so in some compilations only (the
output deltas' ``/ N``): a fresh compilation and the cached one gave results 1 ulp apart.
For the same reason the deltas (products of three or four factors, no reduction) are
compiled without ``reassoc`` (``jit(reassociate=False)``).

No kernel is ``parallel=True``: the threads of a team are started from Python
(:mod:`fastmlp.team`) on ``nogil`` kernels, which keeps the compilation short.

no_cfunc_wrapper: no kernel is passed to C as a callback, and the wrapper costs compile
time (~0.8 s of a 6 s cold start, measured).

no_cpython_wrapper: only the kernels that :mod:`fastmlp` calls from Python (``entry=True``)
get the wrapper that unboxes Python arguments; a kernel called only from other kernels
skips it (29 wrappers, ~1 s of a 14.5 s cold start on a 2-core Zen 3, measured). Tests
call such a kernel from a small ``numba.njit`` function of their own.

cache=True: compiled kernels are written next to the sources, or where
``NUMBA_CACHE_DIR`` points (Numba falls back to a per-user folder when the
install is read-only).
"""
import numba
import numpy as np

FASTMATH = frozenset({"reassoc", "contract", "nsz"})

# Integer arguments 0 and 1 passed as these, not as literals: Numba compiles a callee once per
# distinct argument type, and a literal is a type of its own (a compilation more, cold).
ZERO = np.int64(0)
ONE = np.int64(1)

# Hidden-layer activations, as passed to the kernels (the output layer is always sigmoid).
SIGMOID = 0
RELU = 1


def jit(fn=None, *, reassociate=True, entry=False):
    """``numba.njit`` with the project's options: cached, nogil, fastmath as above.

    ``reassociate=False`` drops ``reassoc`` for a function that has no reduction to
    vectorise: its products then keep their written order in every compilation.
    ``entry=True`` marks a kernel called from Python (it gets the CPython wrapper).
    """
    fastmath = set(FASTMATH) if reassociate else set(FASTMATH) - {"reassoc"}
    options = dict(cache=True, nogil=True, fastmath=fastmath, error_model="numpy",
                   no_cfunc_wrapper=True, no_cpython_wrapper=not entry)
    if fn is None:
        return numba.njit(**options)
    return numba.njit(**options)(fn)
