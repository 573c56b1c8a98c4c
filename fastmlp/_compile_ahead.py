"""With a cold Numba cache, compile the evaluation, the prediction and the last of the
training step's callees in a helper process during the training steps' compilation.

Numba compiles under one lock per process, so the first epoch compiles ``train_steps``
(~4.5 s on a 2-core Zen 4 VM, ~2.6 s of it its callees, each compiled and cached on its
own as ``train_steps``' typing reaches it) and then ``evaluate`` (~1.8 s) one after
the other, and the first ``forward`` of more than ``EVAL_BLOCK`` rows after training (a
prediction, the CLI's figures) compiles ``forward_blocks`` (~0.7 s). A helper process
compiles into the same on-disk cache on another core meanwhile: first the callees that
``train_steps`` reaches last (:func:`step_callees`; this process then loads them when it
gets there), then ``evaluate``, which this process waits for and loads, then
``forward_blocks`` (which reuses ``evaluate``'s compiled callees); see docs/bench.md.

The helper starts only where it pays: more than one CPU, and the kernels that validated
the data were just compiled rather than loaded (a warm cache gives the helper nothing to
do, and it would take a core from the first epoch's team). If it fails or is slow, this
process compiles the kernel itself, as without it. ``FASTMLP_COMPILE_AHEAD=0`` turns it off.
"""
import os
import select
import subprocess
import sys
import threading

import numba
import numpy as np
from numba.core import types

from .kernels import epoch, layers, validate

HELPER_TIMEOUT_S = 60
# The helper: the step's last callees; then, on a tiny model in the dtype given, an
# evaluation, a line to say so, and, at the lowest priority, a forward pass of more than one
# block of rows (forward_blocks), which compile them.
HELPER = """
import contextlib, io, os, sys
import numpy as np
from fastmlp._compile_ahead import step_callees
from fastmlp.kernels.epoch import EVAL_BLOCK
from fastmlp.model import NeuralNetMLP, compute_mse_and_acc
dtype = np.dtype(sys.argv[1]).type
for kernel, signature in step_callees(dtype):
    kernel.compile(signature)
with contextlib.redirect_stdout(io.StringIO()):
    model = NeuralNetMLP(2, 1, 10, dtype=dtype)
compute_mse_and_acc(model, np.zeros((100, 2), dtype), np.zeros(100, np.int64))
print("evaluate", flush=True)
os.nice(19)  # the training runs meanwhile: its team must not share a core with this process
model.forward(np.zeros((EVAL_BLOCK + 1, 2), dtype))
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
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:  # no process can be started here: compile in this one
        _helpers[name] = None


def wait(dtype, kernel):
    """Before this process first calls ``kernel`` (``"evaluate"`` or ``"forward_blocks"``) in
    ``dtype``: wait (bounded) until its helper has compiled it, or ended.

    The helper writes a line once ``evaluate`` is compiled and goes on to ``forward_blocks``,
    which it has compiled when it ends; a thread reaps it then.
    """
    name = np.dtype(dtype).name
    helper = _helpers.get(name)
    if helper is None:
        return
    if not helper.stdout.closed:  # its line not yet read
        if select.select([helper.stdout], [], [], HELPER_TIMEOUT_S)[0]:
            helper.stdout.readline()  # the line, or nothing if it ended
        else:
            helper.kill()
        helper.stdout.close()
        threading.Thread(target=helper.wait, daemon=True).start()
    if kernel == "forward_blocks":
        _helpers[name] = None
        try:
            helper.wait(timeout=HELPER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            helper.kill()


def step_callees(dtype):
    """``(kernel, signature)`` of the callees ``train_steps`` reaches last, the last first, with
    the argument types it passes them in ``dtype`` (contiguous arrays, int64 bounds and codes).

    Its first callees are left out: this process reaches them before a helper could compile
    them. A signature that differs from the call's would only cost the helper's time (this
    process compiles the callee itself); tests/test_cache.py checks that they match.
    """
    real, index = numba.from_dtype(np.dtype(dtype)), types.int64
    vector, matrix, planes = (types.Array(real, n, "C") for n in (1, 2, 3))
    labels = types.Array(index, 1, "C")
    return [(layers.add_bias_gradient, (matrix, vector, real, real, vector)),
            (layers.delta_rows, (matrix, matrix, labels, matrix, index, matrix, matrix, index,
                                 index)),
            (layers.output_rows, (matrix, matrix, vector, matrix, index, index)),
            (layers.hidden_rows, (planes, vector, index, matrix, index, index))]


def _cache_is_cold():
    """True when a validation kernel of this process missed the cache and it can be written."""
    stats = [kernel.stats for kernel in (validate.all_finite, validate.copy_if_finite)]
    missed = any(s.cache_misses for s in stats) and not any(s.cache_hits for s in stats)
    return missed and all(os.access(s.cache_path, os.W_OK) for s in stats if s.cache_misses)
