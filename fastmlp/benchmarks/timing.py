"""Timing one call, and the thread counts the benchmarks run at."""
import contextlib
import time

from threadpoolctl import threadpool_limits

from ..threads import get_num_threads, max_threads, set_num_threads

SETTLE_SECONDS = 0.2
"""Idle time before each interleaved pair of runs: OpenBLAS's worker threads spin for about
0.1 s after a call, and would otherwise take the cores from whichever implementation runs next.

Idle time has a cost of its own: the cores' caches are flushed or taken by other processes
(measured in docs/bench.md). So each round times two calls: the first, after the idle time,
and the second, at once after it, as the epochs of a training run follow each other. The
second is the headline (``stats``); the first is kept as ``extra_info["after_idle_median"]``."""


def seconds(function, settle=0.0):
    """Wall time of one call of ``function()``, timed after ``settle`` seconds of idle time."""
    time.sleep(settle)
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def thread_counts():
    """The thread counts benchmarked by default: 1 and all cores (fastmlp's maximum)."""
    return tuple(sorted({1, max_threads()}))


@contextlib.contextmanager
def thread_limit(n):
    """Run the block with ``fastmlp.set_num_threads(n)`` (kernels and BLAS); restore both after."""
    kernel_threads = get_num_threads()
    with threadpool_limits(limits=None):  # puts every BLAS pool back as it was on exit
        set_num_threads(n)
        try:
            yield
        finally:
            set_num_threads(kernel_threads)
