"""Run a kernel on a team of threads: ``kernel(slot, size, *args)`` for every slot at once.

The kernels are ``nogil`` (:mod:`fastmlp.kernels._config`): called from several
Python threads they run in parallel, and meet at their own barrier
(:mod:`fastmlp.kernels.sync`). Slot 0 runs on the calling thread; the others on
worker threads that the calling thread owns (a team per calling thread, so that
two Python threads running kernels at once, as joblib or Dask workers do, never
share a worker). Workers are started on first use. Between calls a worker spins for the
next (:func:`fastmlp.kernels.sync.await_post`) for a few milliseconds, then sleeps on a
semaphore; the calling thread spins until its workers have returned. A call to spinning
workers costs ~20 us, to sleeping ones 100-250 us (2-core VM, measured), so calls too short
for that (``forward``/``backward`` of a minibatch) use :func:`awake_size`.

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

import numpy as np

from .kernels import sync

_local = threading.local()
_team_threads = set()  # native ids of every team's workers (left out of "running" threads)
# CPU cycles a worker spins for the next call before it sleeps (~2-4 ms; sync.wait yields
# its core after its first rounds). Woken from sleep, a worker on another virtual CPU took
# 100-250 us to start (2-core VM, measured); spinning, ~15 us: a loop of calls (forward,
# backward, a NumPy update) keeps its workers awake, and an idle process sleeps soon.
SPIN_CYCLES = 1 << 23
# Multiply-adds of the steps one team call of an epoch runs (~5 ms on one core) while the team
# is smaller than asked for: its size is chosen again between calls, so a thread pool that was
# spinning when the epoch began (see size) costs the epoch only its first calls.
SEGMENT_WORK = 1 << 27
# The same with every thread asked for (~100 ms on one core): a call has its own start-up
# (the chapter's trainer copies w_h into its tiles and back: 2 x 6.4 MB at 1024 x 784); at one
# step a call, a 100 x 1024 epoch took 210 ms at 2 threads against 152 ms in calls of 64 times
# as many steps (2-core Zen 5, measured; the chapter's epoch within the noise).
FULL_TEAM_SEGMENT_WORK = 1 << 31


class _Worker:
    """A daemon thread that runs one call at a time: it spins for a posted call, then sleeps."""

    def __init__(self, cpu, slot, team):
        self._cpu = cpu
        self._slot = slot
        self._team = team  # whose ``done`` records, by slot, the last call that returned
        self._state = np.zeros(sync.SYNC_SIZE, np.int64)  # sync.IDLE / POSTED / ASLEEP
        self._wake = threading.Semaphore(0)
        self._call = None
        self.error = None
        threading.Thread(target=self._loop, daemon=True, name="fastmlp-team").start()

    def submit(self, kernel, args, call):
        self._call = kernel, args, call
        self.error = None
        if sync.post(self._state):
            self._wake.release()

    def awake(self):
        """Whether the worker is spinning (a call starts at once); if not, have it spin."""
        if self._state[0] != sync.ASLEEP:
            return True
        if sync.nudge(self._state):
            self._wake.release()
        return False

    def _loop(self):
        _team_threads.add(threading.get_native_id())
        if self._cpu is not None:
            os.sched_setaffinity(0, {self._cpu})  # 0: this thread
        posted = sync.await_post(self._state, SPIN_CYCLES)
        while True:
            while not posted:  # asleep until posted, or nudged to spin again
                self._wake.acquire()
                posted = sync.await_post(self._state, SPIN_CYCLES)
            kernel, args, call = self._call
            self._call = None
            try:
                kernel(*args)
            except BaseException as error:  # re-raised on the calling thread
                self.error = error
            del args  # the call's arrays are not held while the worker waits
            posted = sync.finish(self._team.done, self._slot, call, self._state, SPIN_CYCLES)


class _Team:
    """The workers of one calling thread and the count of its team calls."""

    def __init__(self):
        self.workers = []
        self.done = np.zeros(sync.GENERATION, np.int64)
        self.calls = 0

    def grow(self, size):
        if self.done.shape[0] < sync.GENERATION * size:  # no worker is running a call now
            self.done = np.concatenate(
                [self.done, np.zeros(sync.GENERATION * size - self.done.shape[0], np.int64)])
        while len(self.workers) < size - 1:
            slot = len(self.workers) + 1
            self.workers.append(_Worker(_cpu_for(slot), slot, self))


def run(kernel, size, *args):
    """Call ``kernel(slot, size, *args)`` for ``slot`` in ``range(size)``, concurrently.

    Returns when every call has returned; an exception raised in any is raised here.
    """
    if size <= 1:
        kernel(0, 1, *args)
        return
    team = _own_team(size)
    team.calls += 1
    pinned = _cpu_for(size - 1) is not None
    if pinned:
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(affinity)})
    for slot in range(1, size):
        team.workers[slot - 1].submit(kernel, (slot, size) + args, team.calls)
    error = None
    try:
        kernel(0, size, *args)
    except BaseException as exc:
        error = exc
    finally:
        sync.await_done(team.done, size, team.calls)
        if pinned:
            os.sched_setaffinity(0, affinity)
    for slot in range(1, size):
        error = error or team.workers[slot - 1].error
    if error is not None:
        raise error


def segments(wanted, step_work, first_step, last_step, choose):
    """Yield ``(team size, start, end)``: steps ``first_step:last_step`` of an epoch cut into
    team calls. ``choose(wanted, work)`` gives the size of a call of ``work`` multiply-adds;
    a call runs ``FULL_TEAM_SEGMENT_WORK`` of them where it has every thread ``wanted``,
    ``SEGMENT_WORK`` where it has fewer (chosen again soon). ``step_work``: a step's."""
    short, full = (max(1, segment // max(1, step_work))
                   for segment in (SEGMENT_WORK, FULL_TEAM_SEGMENT_WORK))
    start = first_step
    while start < last_step:
        steps = min(full, last_step - start)
        team_size = choose(wanted, step_work * steps)
        end = start + (steps if team_size == wanted else min(short, steps))
        yield team_size, start, end
        start = end


def awake_size(wanted):
    """:func:`size` of ``wanted`` where the calling thread's workers are spinning, else 1
    (and the sleeping ones are woken, for the next call): for calls too short to wait
    100-250 us for a worker to wake (2-core VM, measured), whose bits do not depend on the
    team's size."""
    wanted = size(wanted)
    if wanted <= 1:
        return 1
    started = len(_local.team.workers) if hasattr(_local, "team") else 0
    team = _own_team(wanted)  # workers started now spin: the next call may use them
    if started < wanted - 1:
        return 1
    return wanted if all([w.awake() for w in team.workers[:wanted - 1]]) else 1


def _own_team(size):
    """The calling thread's team, with at least ``size - 1`` workers."""
    team = getattr(_local, "team", None)
    if team is None:
        team = _local.team = _Team()
    team.grow(size)
    return team


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
        except OSError:  # it ended after the open (ESRCH)
            continue
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
