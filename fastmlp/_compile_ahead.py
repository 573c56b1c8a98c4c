"""With a cold Numba cache, compile the evaluation and the prediction in a helper process
during the training steps'.

Numba compiles under one lock per process, so the first epoch compiles ``train_steps``
(~3 s on a 2-core Zen 5 VM, its callees included) and then ``evaluate`` (~3 s) one after
the other, and the first ``forward`` of more than ``EVAL_BLOCK`` rows after training (a
prediction, the CLI's figures) compiles ``forward_blocks`` (~0.7 s). A helper process
compiles both into the same on-disk cache on another core meanwhile, ``forward_blocks``
first (``evaluate`` then reuses its compiled callees: the two take ~0.2 s longer than
``evaluate`` alone), and this process loads them from there (see docs/bench.md).

The helper starts only where it pays: more than one CPU, and the kernels that validated
the data were just compiled rather than loaded (a warm cache gives the helper nothing to
do, and it would take a core from the first epoch's team). If it fails or is slow, this
process compiles the kernel itself, as without it. ``FASTMLP_COMPILE_AHEAD=0`` turns it off.
"""
import os
import subprocess
import sys

import numpy as np

from .kernels import epoch, validate

HELPER_TIMEOUT_S = 60
# The helper: on a tiny model in the dtype given, a forward pass of more than one block
# of rows (forward_blocks) and an evaluation, which compile them.
HELPER = """
import contextlib, io, sys
import numpy as np
from fastmlp.kernels.epoch import EVAL_BLOCK
from fastmlp.model import NeuralNetMLP, compute_mse_and_acc
dtype = np.dtype(sys.argv[1]).type
with contextlib.redirect_stdout(io.StringIO()):
    model = NeuralNetMLP(2, 1, 10, dtype=dtype)
model.forward(np.zeros((EVAL_BLOCK + 1, 2), dtype))
compute_mse_and_acc(model, np.zeros((100, 2), dtype), np.zeros(100, np.int64))
"""
_helpers = {}  # dtype name -> the helper compiling its kernels (None once waited for)


def start(dtype):
    """Start the helper for ``dtype`` (once a process) if this process's cache is cold."""
    name = np.dtype(dtype).name
    if name in _helpers or epoch.evaluate.signatures or not _cache_is_cold() or \
            os.environ.get("FASTMLP_COMPILE_AHEAD") == "0":
        return
    if len(os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else [0]) < 2:
        return
    try:
        _helpers[name] = subprocess.Popen(
            [sys.executable, "-c", HELPER, name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:  # no process can be started here: compile in this one
        _helpers[name] = None


def wait(dtype):
    """Before this process first evaluates in ``dtype``: let its helper finish (bounded)."""
    helper = _helpers.get(np.dtype(dtype).name)
    if helper is None:
        return
    _helpers[np.dtype(dtype).name] = None
    try:
        helper.wait(timeout=HELPER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()


def _cache_is_cold():
    """True when a validation kernel of this process missed the cache and it can be written."""
    stats = [kernel.stats for kernel in (validate.all_finite, validate.copy_if_finite)]
    missed = any(s.cache_misses for s in stats) and not any(s.cache_hits for s in stats)
    return missed and all(os.access(s.cache_path, os.W_OK) for s in stats if s.cache_misses)
