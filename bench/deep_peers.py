"""The job of ``bench/deep_epoch.py`` in PyTorch (eager) and JAX (the epoch one ``jax.jit`` of a
``lax.scan``), where installed: one Adam epoch (lr 0.001, no L2) of 784-256-128-10, ReLU,
softmax cross-entropy, batch 100, on 55,000 random rows, float32 and float64, 1 and 2 threads.
Needs neither fastmlp nor its virtualenv; JAX runs in a child process per thread count,
restricted to that many CPUs (XLA fixes its thread pool when it starts).

    python bench/deep_peers.py            # both, where importable
    python bench/deep_peers.py jax N      # the JAX child for N threads
"""
import os
import subprocess
import sys
import time

import numpy as np

UNITS = [784, 256, 128, 10]
ROWS, BATCH, REPEATS = 55_000, 100, 3


def data(dtype):
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (ROWS, 784)).astype(dtype), rng.integers(0, 10, ROWS), rng


def report(peer, dtype, threads, times, first=None):
    extra = f", first call {first:.2f} s (compiles)" if first is not None else ""
    print(f"{peer} {dtype} {threads} thread(s): epoch best {min(times):.3f} s, "
          f"median {sorted(times)[len(times) // 2]:.3f} s{extra}", flush=True)


def torch_rows():
    import torch
    for dtype in ("float32", "float64"):
        X, y, rng = data(dtype)
        X, y = torch.from_numpy(X), torch.from_numpy(y)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            layers = []
            for a, b in zip(UNITS[:-1], UNITS[1:]):
                layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
            net = torch.nn.Sequential(*layers[:-1]).to(getattr(torch, dtype))
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            loss_fn = torch.nn.CrossEntropyLoss()

            def epoch(rows):
                order = torch.from_numpy(rng.permutation(rows))
                for start in range(0, rows, BATCH):
                    idx = order[start:start + BATCH]
                    opt.zero_grad(set_to_none=True)
                    loss_fn(net(X[idx]), y[idx]).backward()
                    opt.step()
            epoch(1000)
            times = []
            for _ in range(REPEATS):
                start = time.perf_counter()
                epoch(ROWS)
                times.append(time.perf_counter() - start)
            report(f"torch {torch.__version__}", dtype, threads, times)


def jax_child(threads):
    os.environ["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"
                               f" intra_op_parallelism_threads={threads}")
    import jax
    import jax.numpy as jnp
    for dtype in ("float32", "float64"):
        jax.config.update("jax_enable_x64", dtype == "float64")
        X, y, rng = data(dtype)
        X, y = jnp.asarray(X), jnp.asarray(y)
        keys = jax.random.split(jax.random.PRNGKey(0), len(UNITS) - 1)
        params = [(jax.random.normal(k, (a, b), dtype) * 0.05, jnp.zeros(b, dtype))
                  for k, a, b in zip(keys, UNITS[:-1], UNITS[1:])]

        def loss(p, xb, yb):
            h = xb
            for W, c in p[:-1]:
                h = jax.nn.relu(h @ W + c)
            z = h @ p[-1][0] + p[-1][1]
            return -jnp.mean(jax.nn.log_softmax(z)[jnp.arange(yb.shape[0]), yb])

        def step(carry, idx):
            p, m, v, t = carry
            g = jax.grad(loss)(p, X[idx], y[idx])
            t = t + 1
            m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
            v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
            lr = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            p = jax.tree.map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-8), p, m, v)
            return (p, m, v, t), None

        @jax.jit
        def epoch(state, order):
            return jax.lax.scan(step, state, order.reshape(-1, BATCH))[0]
        zeros = jax.tree.map(jnp.zeros_like, params)
        state = (params, zeros, zeros, jnp.asarray(0, dtype))
        times = []
        for _ in range(REPEATS + 1):
            order = jnp.asarray(rng.permutation(ROWS))
            start = time.perf_counter()
            state = jax.block_until_ready(epoch(state, order))
            times.append(time.perf_counter() - start)
        report(f"jax {jax.__version__}", dtype, threads, times[1:], first=times[0])


def main():
    if sys.argv[1:2] == ["jax"]:
        return jax_child(int(sys.argv[2]))
    try:
        torch_rows()
    except ImportError:
        print("torch is not installed: no PyTorch rows")
    try:
        import jax  # noqa: F401
    except ImportError:
        print("jax is not installed: no JAX rows")
        return
    cpus = sorted(os.sched_getaffinity(0))
    for threads in (1, 2):
        subprocess.run(["taskset", "-c", ",".join(map(str, cpus[:threads])), sys.executable,
                        __file__, "jax", str(threads)], check=True)


if __name__ == "__main__":
    main()
