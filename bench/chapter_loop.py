"""The chapter's own training loop (its minibatch_generator, forward, backward and four updates
per minibatch) on the chapter's class and on fastmlp's, interleaved; medians of 3.

    python bench/chapter_loop.py [ROWS]
"""
import contextlib
import io
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import fastmlp
from fastmlp import reference

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 5500
rng = np.random.default_rng(0)
X_all, y_all = rng.uniform(-1, 1, (rows, 784)), rng.integers(0, 10, rows)


def chapter_loop(model, X, y, batch, learning_rate=0.1):
    for X_mini, y_mini in reference.minibatch_generator(X, y, batch):
        a_h, a_out = model.forward(X_mini)
        d_w_out, d_b_out, d_w_h, d_b_h = model.backward(X_mini, a_h, a_out, y_mini)
        model.weight_h -= learning_rate * d_w_h
        model.bias_h -= learning_rate * d_b_h
        model.weight_out -= learning_rate * d_w_out
        model.bias_out -= learning_rate * d_b_out


for batch in (1, 10, 100):
    X, y = (X_all[:rows // 5], y_all[:rows // 5]) if batch == 1 else (X_all, y_all)
    for threads in (1, 2):
        times = {"chapter": [], "fastmlp": []}
        with threadpool_limits(threads), fastmlp.threads.limit(threads):
            for _ in range(3):
                for name, cls in (("chapter", reference.NeuralNetMLP),
                                  ("fastmlp", fastmlp.NeuralNetMLP)):
                    with contextlib.redirect_stdout(io.StringIO()):
                        model = cls(784, 50, 10)
                    chapter_loop(model, X, y, batch)  # warm
                    start = time.perf_counter()
                    chapter_loop(model, X, y, batch)
                    times[name].append(time.perf_counter() - start)
        ref, fast = (statistics.median(times[k]) for k in ("chapter", "fastmlp"))
        print(f"batch {batch:3d}, {threads} thread(s): chapter's class {ref * 1e3:7.1f} ms, "
              f"fastmlp's {fast * 1e3:7.1f} ms: {ref / fast:.2f}x")
