"""Numba options shared by every kernel, set once (numbagg style).

fastmath: ``reassoc`` and ``contract`` let LLVM vectorise reductions and fuse
multiply-adds; ``nsz`` is harmless here. ``nnan``/``ninf`` are never set: they would
let LLVM delete NaN and infinity checks. Nor is ``arcp``: it lets LLVM turn ``x / n``
into ``x * (1 / n)`` where it sees fit, and it did so in some compilations only (the
output deltas' ``/ N``): a fresh compilation and the cached one gave results 1 ulp apart.
For the same reason the deltas (products of three or four factors, no reduction) are
compiled without ``reassoc`` (``jit(reassociate=False)``).

cache=True: compiled kernels are written next to the sources, or where
``NUMBA_CACHE_DIR`` points (Numba falls back to a per-user folder when the
install is read-only).
"""
import numba
from numba.core import types
from numba.extending import intrinsic

FASTMATH = frozenset({"reassoc", "contract", "nsz"})

# Hidden-layer activations, as passed to the kernels (the output layer is always sigmoid).
SIGMOID = 0
RELU = 1


def jit(fn=None, *, parallel=False, reassociate=True):
    """``numba.njit`` with the project's options: cached, nogil, fastmath as above.

    ``reassociate=False`` drops ``reassoc`` for a function that has no reduction to
    vectorise: its products then keep their written order in every compilation.
    """
    fastmath = set(FASTMATH) if reassociate else set(FASTMATH) - {"reassoc"}
    options = dict(cache=True, nogil=True, fastmath=fastmath, parallel=parallel,
                   error_model="numpy")
    if fn is None:
        return numba.njit(**options)
    return numba.njit(**options)(fn)


@intrinsic
def prefer_512_bit_vectors(typingctx):
    """Let LLVM vectorise the calling kernel with 512-bit registers where the CPU has them.

    LLVM's tuning for Intel's AVX-512 cores asks its vectoriser for 256-bit vectors
    (clang's ``-mprefer-vector-width``, a function attribute that Numba does not
    expose). Called first in a kernel, this sets the attribute on that kernel's
    function; CPUs without AVX-512 ignore it. llvmlite's attribute set only takes
    known flag names, hence the base ``set.add`` for a key-value attribute.
    """
    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()
    return types.none(), codegen
