"""One setting for both thread pools fastmlp's work can use.

The kernels run on Numba's threads (by default all cores, or ``NUMBA_NUM_THREADS``);
NumPy's BLAS (the reference, scikit-learn) runs on its own (``OPENBLAS_NUM_THREADS``).
fastmlp never changes either unless asked to here.
"""
import numba
from threadpoolctl import threadpool_limits


def set_num_threads(n):
    """Use ``n`` threads in fastmlp's kernels and in every BLAS library loaded in the process."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"n must be an integer in [1, {numba.config.NUMBA_NUM_THREADS}], got {n!r}")
    numba.set_num_threads(n)
    threadpool_limits(limits=n)
