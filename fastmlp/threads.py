"""One setting for both thread pools fastmlp's work can use.

The kernels run on Numba's threads (by default all cores, or ``NUMBA_NUM_THREADS``);
NumPy's BLAS (the reference, scikit-learn) runs on its own (``OPENBLAS_NUM_THREADS``).
fastmlp changes neither unless asked to (:func:`set_num_threads`); it only runs
problems too small to share on one thread (:func:`threads_for`), and keeps BLAS at
one thread while its kernels run: they call BLAS (SciPy's, through Numba's ``np.dot``)
from inside their parallel regions, where a threaded BLAS would oversubscribe the
cores (measured: forward products about 60x slower at 2 threads).
"""
import functools
from contextlib import contextmanager

import numba
import scipy.linalg.cython_blas  # noqa: F401  the BLAS the kernels call: loaded now, so it can be limited
from threadpoolctl import ThreadpoolController, threadpool_limits


def set_num_threads(n):
    """Use ``n`` threads in fastmlp's kernels and in every BLAS library loaded in the process."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"n must be an integer in [1, {numba.config.NUMBA_NUM_THREADS}], got {n!r}")
    numba.set_num_threads(n)
    threadpool_limits(limits=n)


def get_num_threads():
    """The number of threads fastmlp's kernels called from this thread may use."""
    return numba.get_num_threads()


@contextmanager
def limit(n):
    """Run the kernels called from this thread on at most ``n`` threads inside the block.

    ``None`` leaves the setting as it is. The setting is the calling thread's own (a
    Dask worker thread or a joblib thread sets its own), and is restored on exit.
    """
    if n is None:
        yield get_num_threads()
        return
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n:
        raise ValueError(f"n_threads must be a positive integer or None, got {n!r}")
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield numba.get_num_threads()
    finally:
        numba.set_num_threads(previous)


PARALLEL_MIN_WORK = 1_000_000
"""Multiply-adds per parallel region below which a kernel call runs on one thread.

A parallel region costs a few microseconds on an idle machine, and a scheduler
time slice (milliseconds) when another process holds a core: a minibatch step of
10 examples (0.4 M multiply-adds, ~15 us) gains nothing from a second thread and
can lose 100x. The chapter's step (3.9 M) and every evaluation run in parallel.
"""


@functools.cache
def _blas_controller():
    return ThreadpoolController().select(user_api="blas")


@contextmanager
def threads_for(work):
    """The context of every kernel call: BLAS on one thread, and Numba on one thread too
    when ``work`` is below :data:`PARALLEL_MIN_WORK`.

    Yields the Numba thread count in effect (never more than the user's setting).
    Both settings are restored on exit.
    """
    previous = numba.get_num_threads()
    small = work < PARALLEL_MIN_WORK and previous > 1
    with _blas_controller().limit(limits=1):
        if not small:
            yield previous
            return
        numba.set_num_threads(1)
        try:
            yield 1
        finally:
            numba.set_num_threads(previous)
