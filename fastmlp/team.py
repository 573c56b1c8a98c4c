"""Run a kernel on a team of threads: ``kernel(slot, size, *args)`` for every slot at once.

The kernels are ``nogil`` (:mod:`fastmlp.kernels._config`): called from several
Python threads they run in parallel, and meet at their own barrier
(:mod:`fastmlp.kernels.sync`). Slot 0 runs on the calling thread; the others on
worker threads that the calling thread owns (a team per calling thread, so that
two Python threads running kernels at once, as joblib or Dask workers do, never
share a worker). Workers are started on first use and then wait on a semaphore.

Where the system allows it (Linux), worker ``k`` is pinned to the ``k``-th last CPU
the process may use, and the calling thread to the first while the team runs
(its own affinity is restored after): woken by the calling thread, an unpinned worker is often
placed on the caller's own core and stays there for many milliseconds, and then
every barrier waits for a time slice (measured on a 2-core VM: 8-27 us per
barrier, against 0.1-0.2 us on two cores).
"""
import os
import threading

_local = threading.local()


class _Worker:
    """A daemon thread that runs one call at a time."""

    def __init__(self, cpu):
        self._cpu = cpu
        self._start = threading.Semaphore(0)
        self.done = threading.Semaphore(0)
        self._call = None
        self.error = None
        threading.Thread(target=self._loop, daemon=True, name="fastmlp-team").start()

    def submit(self, kernel, args):
        self._call = kernel, args
        self.error = None
        self._start.release()

    def _loop(self):
        if self._cpu is not None:
            os.sched_setaffinity(0, {self._cpu})  # 0: this thread
        while True:
            self._start.acquire()
            kernel, args = self._call
            try:
                kernel(*args)
            except BaseException as error:  # re-raised on the calling thread
                self.error = error
            self._call = None
            self.done.release()


def run(kernel, size, *args):
    """Call ``kernel(slot, size, *args)`` for ``slot`` in ``range(size)``, concurrently.

    Returns when every call has returned; an exception raised in any is raised here.
    """
    workers = getattr(_local, "workers", None)
    if workers is None:
        workers = _local.workers = []
    while len(workers) < size - 1:
        workers.append(_Worker(_cpu_for(len(workers) + 1)))
    pinned = size > 1 and _cpu_for(size - 1) is not None
    if pinned:
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(affinity)})
    for slot in range(1, size):
        workers[slot - 1].submit(kernel, (slot, size) + args)
    error = None
    try:
        kernel(0, size, *args)
    except BaseException as exc:
        error = exc
    finally:
        if pinned:
            os.sched_setaffinity(0, affinity)
    for slot in range(1, size):
        workers[slot - 1].done.acquire()
        error = error or workers[slot - 1].error
    if error is not None:
        raise error


def _cpu_for(slot):
    """The CPU worker ``slot`` is pinned to, or None (no affinity call, or too few CPUs)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[-slot] if 0 < slot < len(cpus) else None
