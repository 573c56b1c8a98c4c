"""One Adam epoch of a 784-256-128-10 network at batch 100: fastmlp against scikit-learn.

Run (not niced, on an otherwise idle machine)::

    python bench/deep_epoch.py [--rows 55000] [--repeats 3]

Prints, for float32 and float64 at 1 and 2 threads: the best-of GEMM rate of
``np.dot`` on 2000 x 2000 matrices (the peak the epoch is measured against), the
fastmlp epoch (``Trainer.run``, compiled beforehand), the whole
``fastmlp.MLPClassifier(max_iter=1).fit`` and scikit-learn's
``MLPClassifier(max_iter=1).fit`` on the same data, their GFLOP/s and the
fraction of the peak. FLOP count: 2 per multiply-add of the forward products,
the weight-gradient products and the input-delta products of the hidden layers
(what is computed); the issue's 77 GFLOP also counts an input delta for layer 0.
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLP
from threadpoolctl import threadpool_limits

from fastmlp import threads
from fastmlp.estimator import MLPClassifier
from fastmlp.network import Network, Trainer, make_optimizer

UNITS = [784, 256, 128, 10]
PARAMS = dict(hidden_layer_sizes=(256, 128), solver="adam", batch_size=100, max_iter=1,
              random_state=0)


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gemm_peak(dtype, repeats):
    a = np.random.default_rng(0).standard_normal((2000, 2000)).astype(dtype)
    out = np.empty_like(a)
    np.dot(a, a, out=out)
    return 2 * 2000 ** 3 / best(lambda: np.dot(a, a, out=out), max(repeats, 5)) / 1e9


def epoch_flop(rows):
    pairs = list(zip(UNITS[:-1], UNITS[1:]))
    forward = sum(a * b for a, b in pairs)
    return 2 * rows * (2 * forward + sum(a * b for a, b in pairs[1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=55_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X64 = rng.uniform(-1, 1, (args.rows, 784))
    y = rng.integers(0, 10, args.rows)
    flop = epoch_flop(args.rows)
    print(f"{args.rows} rows, {flop / 1e9:.1f} GFLOP an epoch (issue's count "
          f"{flop / 1e9 + 2 * args.rows * 784 * 256 / 1e9:.1f})")
    warnings.simplefilter("ignore", ConvergenceWarning)
    for dtype in (np.float32, np.float64):
        X = X64.astype(dtype)
        for n in (1, 2):
            with threadpool_limits(n), threads.limit(n):
                peak = gemm_peak(dtype, args.repeats)
                net = Network(UNITS, "relu", "log_loss", 1e-4, dtype)
                net.initialize(np.random.RandomState(0))
                trainer = Trainer(net, X, y, 100, make_optimizer(net))
                order = rng.permutation(args.rows)
                trainer.run(order[:1000])  # compiled, warm
                ours = best(lambda: trainer.run(order), args.repeats)
                fit = best(lambda: MLPClassifier(**PARAMS, n_threads=n).fit(X, y), 1)
                sk = best(lambda: SkMLP(**PARAMS).fit(X, y), 1)
            print(f"{np.dtype(dtype).name} {n} thread(s): GEMM peak {peak:6.1f} GFLOP/s | "
                  f"fastmlp epoch {ours:6.3f} s ({flop / ours / 1e9:5.1f} GFLOP/s, "
                  f"{flop / ours / 1e9 / peak:5.1%} of peak) | fastmlp fit {fit:6.3f} s | "
                  f"scikit-learn fit {sk:6.3f} s ({flop / sk / 1e9:5.1f} GFLOP/s, "
                  f"{flop / sk / 1e9 / peak:5.1%}) | speedup {sk / ours:4.2f}x", flush=True)


if __name__ == "__main__":
    main()
