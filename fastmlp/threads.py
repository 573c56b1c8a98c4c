"""How many threads fastmlp's kernels use, and the BLAS they call.

The fused epoch and the evaluation run on a team of threads (:mod:`fastmlp.team`):
by default as many as Numba may use (all cores, or ``NUMBA_NUM_THREADS``), or what
:func:`set_num_threads` set for the process, or what :func:`limit` sets for the
calling thread. Inside a team each thread calls the kernels' BLAS (NumPy's own,
:data:`fastmlp.kernels.blas.LIBRARY`) on its own share, so while a team runs that BLAS is held at one
thread (:func:`single_threaded_blas`): two pools on the same cores would compete,
and a threaded BLAS splits a product differently at each thread count. So do
``forward`` and ``backward``: the products' bits then depend on their shapes only.
"""
import ctypes
import functools
import threading
from contextlib import contextmanager

import numba
from threadpoolctl import ThreadpoolController, threadpool_limits

from .kernels.blas import LIBRARY

_process = {"threads": numba.config.NUMBA_NUM_THREADS}
_local = threading.local()


def max_threads():
    """The most threads a team may have: Numba's limit (``NUMBA_NUM_THREADS``, default all cores)."""
    return numba.config.NUMBA_NUM_THREADS


def _check(n, name):
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_threads():
        raise ValueError(f"{name} must be an integer in [1, {max_threads()}] (NUMBA_NUM_THREADS "
                         f"sets the upper bound), got {n!r}")
    return n


def set_num_threads(n):
    """Use ``n`` threads in fastmlp's kernels and in every BLAS library loaded in the process."""
    _process["threads"] = _check(n, "n")
    threadpool_limits(limits=n)


def get_num_threads():
    """The number of threads fastmlp's kernels called from this thread may use."""
    return getattr(_local, "threads", None) or _process["threads"]


@contextmanager
def limit(n):
    """Run the kernels called from this thread on at most ``n`` threads inside the block.

    ``None`` leaves the setting as it is; a value above :func:`max_threads` is capped.
    The setting is the calling thread's own (a Dask worker thread or a joblib thread
    sets its own), and is restored on exit.
    """
    if n is None:
        yield get_num_threads()
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n!r}")
    previous = getattr(_local, "threads", None)
    _local.threads = min(n, max_threads())
    try:
        yield _local.threads
    finally:
        _local.threads = previous


@functools.cache
def _blas_controller():
    """threadpoolctl's controller of every BLAS in the process (scanned once)."""
    return ThreadpoolController().select(user_api="blas")


def blas_limit(n):
    """Every BLAS in the process on at most ``n`` threads inside the block (threadpoolctl).

    For kernels whose large products run on BLAS's own threads (:mod:`fastmlp.network`);
    the chapter's kernels run inside :data:`single_threaded_blas` instead.
    """
    return _blas_controller().limit(limits=n)


def _kernel_blas():
    """``(get, set)`` thread-count functions of the BLAS the kernels call (:data:`LIBRARY`; every
    BLAS in the process where that is not known). OpenBLAS's own functions where it is OpenBLAS
    (ctypes): threadpoolctl lets only the first thread that set a limit set one again, and a
    Dask or joblib worker thread would silently change nothing."""
    blas = _blas_controller().lib_controllers
    own = [c for c in blas if c.filepath == LIBRARY]
    functions = []
    for controller in own or blas:
        if controller.internal_api == "openblas":
            prefix, suffix = controller._find_affixes()
            lib = ctypes.CDLL(controller.filepath)
            functions.append((getattr(lib, f"{prefix}openblas_get_num_threads{suffix}"),
                              getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")))
        else:
            functions.append((controller.get_num_threads, controller.set_num_threads))
    return functions


class _SingleThreadedBLAS:
    """See :data:`single_threaded_blas`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._functions = None
        self._users = 0
        self._saved = ()

    def __enter__(self):
        with self._lock:
            if self._users == 0:
                if self._functions is None:
                    self._functions = _kernel_blas()
                self._saved = [get() for get, _ in self._functions]
                for (_, set_threads), n in zip(self._functions, self._saved):
                    if n != 1:
                        set_threads(1)
            self._users += 1

    def __exit__(self, *exc):
        with self._lock:
            self._users -= 1
            if self._users == 0:
                for (_, set_threads), n in zip(self._functions, self._saved):
                    if n != 1:
                        set_threads(n)


single_threaded_blas = _SingleThreadedBLAS()
"""``with single_threaded_blas:`` the kernels' BLAS on one thread inside the block (~1 us).

Every kernel runs inside one: the products' bits then depend on their shapes only, and a
team's threads never compete with BLAS's. Safe across threads: the first to enter sets one
thread, the last to leave restores what was there."""
