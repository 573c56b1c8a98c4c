"""Minibatch shuffling: NumPy's legacy ``np.random.shuffle``, draw for draw, and the row gather.

``fastmlp`` must draw exactly the permutations the chapter's code draws from the
global ``np.random`` generator. That generator is MT19937, and
``RandomState.shuffle`` of a 1-D array is a Fisher-Yates pass taking
``j = random_interval(i)`` for ``i = n-1 .. 1`` (NumPy's ``_shuffle_raw`` and
``random_interval`` in ``distributions.c``, frozen by NEP 19). This module runs
the same generator on a copy of the global state; :mod:`fastmlp` writes the
advanced state back, so the global generator ends where the chapter's would.
The minibatch gather takes a range of columns: each thread of a training team gathers its own.

State: ``key`` (624,) uint32 and ``pos`` (1,) int64, as ``np.random.get_state()`` gives them.
"""
import numpy as np

from ._config import jit

_N = 624
_M = 397
_MATRIX_A = np.uint32(0x9908B0DF)
_UPPER = np.uint32(0x80000000)
_LOWER = np.uint32(0x7FFFFFFF)


@jit
def _twist(key):
    # mt19937_gen: regenerate all 624 words; key[i + M - N] wraps as key[(i + M) % N]
    for i in range(_N):
        y = (key[i] & _UPPER) | (key[(i + 1) % _N] & _LOWER)
        mag = _MATRIX_A if y & np.uint32(1) else np.uint32(0)
        key[i] = key[(i + _M) % _N] ^ (y >> np.uint32(1)) ^ mag


@jit
def next_uint32(key, pos):
    """mt19937_next32: the next tempered 32-bit word; advances ``pos[0]``."""
    if pos[0] >= _N:
        _twist(key)
        pos[0] = 0
    y = key[pos[0]]
    pos[0] += 1
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return y


@jit
def random_interval(key, pos, upper):
    """A uniform integer in ``[0, upper]`` by masked rejection, as NumPy's ``random_interval``.

    ``upper`` < 2**32 (the 64-bit branch of NumPy's version is never reached here).
    """
    if upper == 0:
        return 0
    mask = upper
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    while True:
        value = np.int64(next_uint32(key, pos)) & mask
        if value <= upper:
            return value


@jit(entry=True)
def permutation(key, pos, out):
    """``out[:] = arange(n)`` shuffled as ``np.random.shuffle`` would shuffle it."""
    n = out.shape[0]
    for i in range(n):
        out[i] = i
    for i in range(n - 1, 0, -1):
        j = random_interval(key, pos, i)
        out[i], out[j] = out[j], out[i]


@jit
def gather_columns(X, order, start, f0, f1, out):
    """``out[n, :f1 - f0] = X[order[start + n], f0:f1]`` for every row ``n`` of ``out``."""
    for n in range(out.shape[0]):
        # Between 1-D row views: measured 2x faster than indexing the 2-D arrays, and unlike a
        # slice assignment no shape-error path to compile (3 s of a cold start)
        src = X[order[start + n], f0:f1]
        dst = out[n, :f1 - f0]
        for f in range(src.shape[0]):
            dst[f] = src[f]
