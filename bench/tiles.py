"""The tiles of ``w_h`` (``kernels.epoch.tiles``) against feature pieces only, beside the reference.

One shape, one thread count: the reference's SGD step (or ``backward``), fastmlp's with
feature pieces only (``PARTIAL_BUDGET`` unbounded: the tiling before unit blocks) and with
the default budget, interleaved round by round after an idle pause; medians in ms.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/tiles.py step 1000 1024 float64 2
"""
import contextlib
import io
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastmlp import model, reference, threads, training
from fastmlp.kernels import epoch

kernel, batch, hidden = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dtype, num_threads = np.dtype(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(0)
X, y = rng.random((batch, 784)), rng.integers(0, 10, batch)
with contextlib.redirect_stdout(io.StringIO()):
    ref = reference.NeuralNetMLP(784, hidden, 10)
    fast = model.NeuralNetMLP(784, hidden, 10, dtype=dtype.type)
X_fast, budget = X.astype(dtype), epoch.PARTIAL_BUDGET


def fastmlp_call(partial_budget):
    epoch.PARTIAL_BUDGET = partial_budget
    trainer = model.EpochTrainer(fast, X_fast, y, 0.1, batch) if kernel == "step" else None
    outputs = fast.forward(X_fast)
    epoch.PARTIAL_BUDGET = budget

    def call():
        epoch.PARTIAL_BUDGET = partial_budget  # backward() reads it at each call
        if trainer:
            trainer.run(np.arange(batch))
        else:
            fast.backward(X_fast, *outputs, y)
        epoch.PARTIAL_BUDGET = budget
    return call


ref_outputs = ref.forward(X)
calls = {"reference": (lambda: training.reference_step(ref, X, y, 0.1)) if kernel == "step"
         else (lambda: ref.backward(X, *ref_outputs, y)),
         "pieces only": fastmlp_call(1 << 62), "tiles": fastmlp_call(budget)}
times = {name: [] for name in calls}
with threadpool_limits(num_threads), threads.limit(num_threads):
    for _ in range(9):
        for name, call in calls.items():
            time.sleep(0.2)  # NumPy's OpenBLAS threads stop spinning (fastmlp.team.size)
            call()
            start = time.perf_counter()
            call(), call()
            times[name].append((time.perf_counter() - start) / 2)
print(f"{kernel} {batch} x 784 x {hidden} {dtype} {num_threads} threads, tiles "
      f"{epoch.tiles(784, batch, hidden, dtype.itemsize)}: " + ", ".join(
          f"{name} {np.median(t) * 1e3:.2f} ms" for name, t in times.items()))
