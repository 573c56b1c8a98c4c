"""The first call in a new process: import, a first fastmlp.train epoch, and a later one.

Run it twice with the same empty NUMBA_CACHE_DIR: the first run compiles (empty cache), the
second loads (warm cache). Prints the first-call cost (import + first epoch - later epoch).

    NUMBA_CACHE_DIR=$(mktemp -d) python bench/first_call.py 55000 100 float64 sigmoid
"""
import time

t0 = time.perf_counter()
import contextlib  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

import fastmlp  # noqa: E402

t_import = time.perf_counter() - t0
rows, batch = int(sys.argv[1]), int(sys.argv[2])
dtype, activation = getattr(np, sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
X, y = rng.uniform(-1, 1, (rows, 784)), rng.integers(0, 10, rows)
with contextlib.redirect_stdout(io.StringIO()):
    model = fastmlp.NeuralNetMLP(784, 50, 10, dtype=dtype, activation=activation)
    epochs = []
    for _ in range(2):
        start = time.perf_counter()
        fastmlp.train(model, X, y, X[:1000], y[:1000], 1, 0.1, batch)
        epochs.append(time.perf_counter() - start)
print(f"import {t_import:.2f} s, first epoch {epochs[0]:.2f} s, later {epochs[1]:.2f} s: "
      f"first-call cost {t_import + epochs[0] - epochs[1]:.2f} s")
