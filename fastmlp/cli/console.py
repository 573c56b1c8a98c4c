"""Console helpers of ``fastmlp train``: the Ctrl-C flag, the progress bar, the process clock."""
import os
import signal
import threading
import time

PROGRESS_DELAY = 1.0
"""Seconds an epoch runs before its progress bar appears."""


class InterruptFlag:
    """Within ``with``: the first Ctrl-C sets ``requested``; a second one interrupts at once.

    Training checks the flag between compiled calls, so it stops between
    steps, with a consistent model and history. Outside the main thread
    (where no signal handler can be set) it does nothing.
    """

    def __init__(self):
        self.requested = False
        self._installed = False
        self._previous = signal.default_int_handler

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self._handle)
            self._previous = signal.SIG_DFL if previous is None else previous  # None: set in C
            self._installed = True
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc_info):
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


class Progress:
    """A one-line progress bar on `stream`, drawn once an epoch has run for PROGRESS_DELAY s.

    The progress interface of :func:`fastmlp.training.train_epochs`.
    """

    WIDTH = 30

    def __init__(self, stream, enabled):
        self.stream, self.enabled = stream, enabled
        self.label, self.start, self.shown = "", 0.0, False

    def begin(self, label):
        self.label, self.start = label, time.perf_counter()

    def update(self, done, total):
        if not self.enabled or time.perf_counter() - self.start <= PROGRESS_DELAY:
            return
        filled = self.WIDTH * done // total
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                          f"{100 * done // total:3d}% ({done}/{total} steps)")
        self.stream.flush()
        self.shown = True

    def clear(self):
        if self.shown:
            self.stream.write("\r\033[K")  # back to the line start, erase it
            self.stream.flush()
            self.shown = False


def silent(*args, **kwargs):
    """A ``print`` that prints nothing (``--quiet``)."""


def process_start():
    """When this process started, on the ``time.perf_counter()`` clock.

    Read from ``/proc/self/stat`` (Linux; to the kernel's clock tick, 10 ms),
    so that the interpreter's start and the imports count; elsewhere, now.
    """
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            # field 22 (after the parenthesised command name): start time in ticks since boot
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            age = float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        age = 0.0
    return time.perf_counter() - max(age, 0.0)
