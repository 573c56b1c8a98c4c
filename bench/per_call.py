"""The per-call path: ``forward`` and ``backward`` called from Python, the chapter's class and
fastmlp's, on 1, 10 and 100 rows (BLAS on one thread; medians of 7 rounds).

    python bench/per_call.py
"""
import contextlib
import io
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import fastmlp
from fastmlp import reference


def per_call(model, X, y, calls):
    """Median seconds of one ``forward`` and of one ``backward`` call."""
    a = model.forward(X)
    model.backward(X, *a, y)
    forward, backward = [], []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(calls):
            a = model.forward(X)
        t1 = time.perf_counter()
        for _ in range(calls):
            model.backward(X, *a, y)
        t2 = time.perf_counter()
        forward.append((t1 - t0) / calls)
        backward.append((t2 - t1) / calls)
    return statistics.median(forward), statistics.median(backward)


rng = np.random.default_rng(0)
with threadpool_limits(1):
    for batch in (1, 10, 100):
        X, y = rng.uniform(-1, 1, (batch, 784)), rng.integers(0, 10, batch)
        times = {}
        for name, cls in (("chapter", reference.NeuralNetMLP), ("fastmlp", fastmlp.NeuralNetMLP)):
            with contextlib.redirect_stdout(io.StringIO()):
                model = cls(784, 50, 10)
            times[name] = per_call(model, X, y, 2000 if batch < 100 else 300)
        (rf, rb), (ff, fb) = times["chapter"], times["fastmlp"]
        print(f"batch {batch:3d}: forward chapter {rf * 1e6:6.1f} us, fastmlp {ff * 1e6:6.1f} us; "
              f"backward chapter {rb * 1e6:6.1f} us, fastmlp {fb * 1e6:6.1f} us")
