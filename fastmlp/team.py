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

A team is only as fast as its slowest thread, so :func:`size` leaves out the CPUs
that other running threads of the process hold: NumPy's OpenBLAS workers spin for
about 0.1 s after each threaded product, and a team that shares a core with one
waits a time slice at each barrier (measured: a batch-100 epoch 4.7x slower right
after a 300 x 300 ``A @ A``).
"""
import os
import threading

_local = threading.local()
_team_threads = set()  # native ids of every team's workers (idle ones sleep: not "running")


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
        _team_threads.add(threading.get_native_id())
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


def size(wanted):
    """The team size to use for ``wanted`` threads: at most the CPUs this process may use,
    less those that its other running threads (state ``R``) hold, and at least 1."""
    if wanted <= 1 or not os.path.isdir("/proc/self/task"):
        return max(1, wanted)
    free = len(os.sched_getaffinity(0)) - _running_threads()
    return max(1, min(wanted, free))


def _running_threads():
    """Threads of this process, other than the caller and team workers, now running."""
    own = _team_threads | {threading.get_native_id()}
    running = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) in own:
            continue
        try:
            fd = os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY)
        except OSError:  # the thread has ended
            continue
        try:
            stat = os.read(fd, 512)
        finally:
            os.close(fd)
        running += stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3] == b"R"
    return running


def _cpu_for(slot):
    """The CPU worker ``slot`` is pinned to, or None (no affinity call, or too few CPUs)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[-slot] if 0 < slot < len(cpus) else None
