"""Compiled kernels are cached where NUMBA_CACHE_DIR points, never next to an installed package;
a second process loads them instead of compiling (the dispatchers' cache hits say so), trains
to the bits of the fresh compilation, and cold processes compiling at once do not break it."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Trains one epoch at two batch sizes, then reports the weights' digest and, per entry kernel,
# its cache hits and misses (a miss is a compilation; a hit a load from the cache).
TRAIN_SCRIPT = """
import contextlib, hashlib, io, json
import numpy as np
import fastmlp
from fastmlp.kernels import epoch
assert fastmlp.__file__.startswith({root!r}), fastmlp.__file__
rng = np.random.default_rng(0)
X, y = rng.uniform(-1, 1, (600, 784)), rng.integers(0, 10, 600)
digest = hashlib.sha256()
for batch in (100, 3):
    with contextlib.redirect_stdout(io.StringIO()):
        model = fastmlp.NeuralNetMLP(784, 22, 10)
        np.random.seed(1)
        fastmlp.train(model, X[:500], y[:500], X[500:], y[500:], 1, minibatch_size=batch)
    for array in (model.weight_h, model.bias_h, model.weight_out, model.bias_out,
                  *model.forward(X[:epoch.EVAL_BLOCK + 44])):  # more than a block: forward_blocks
        digest.update(array.tobytes())
stats = {{f.py_func.__name__: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
          for f in (epoch.train_steps, epoch.evaluate, epoch.forward_blocks)}}
print(json.dumps([digest.hexdigest(), stats]))
"""


def _install_copy(tmp_path):
    """The layout pip installs: fastmlp/ with kernels/ inside, no caches."""
    install = tmp_path / "site"
    shutil.copytree(REPO / "fastmlp", install / "fastmlp",
                    ignore=shutil.ignore_patterns("__pycache__", "kernels"))
    shutil.copytree(REPO / "kernels", install / "fastmlp" / "kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return install


def _train(install, cache, processes=1, compile_ahead=True):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(install),
           "FASTMLP_COMPILE_AHEAD": "1" if compile_ahead else "0"}
    script = TRAIN_SCRIPT.format(root=str(install))
    running = [subprocess.Popen([sys.executable, "-c", script], cwd=install.parent, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(processes)]
    results = []
    for process in running:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_second_process_loads_the_cache_and_trains_to_the_same_bits(tmp_path):
    """The first process compiles (misses, no hits), the second only loads (hits, no misses),
    into NUMBA_CACHE_DIR and not into the install. Both train to the same bits. (With
    ``arcp``, or ``reassoc`` on the deltas' products, LLVM ordered the arithmetic
    differently in a fresh and a cached compilation, 1 ulp apart.) The first process
    compiles without a helper (fastmlp._compile_ahead), so that it compiles every kernel."""
    install, cache = _install_copy(tmp_path), tmp_path / "numba-cache"
    [(first_digest, first)] = _train(install, cache, compile_ahead=False)
    [(second_digest, second)] = _train(install, cache)
    for name in ("train_steps", "evaluate", "forward_blocks"):
        assert first[name][0] == 0 and first[name][1] >= 1, first
        assert second[name][0] >= 1 and second[name][1] == 0, second
    assert second_digest == first_digest
    assert any(cache.rglob("epoch.train_steps-*.nbi"))
    assert not list((install / "fastmlp").rglob("*.nbi"))  # nothing written into the install


def test_cold_processes_compiling_at_once_share_one_cache(tmp_path):
    """Three processes start with one empty cache (numba#4807, #10128): none crashes, all
    train to the same bits, and a fourth then loads every entry kernel from the cache."""
    install, cache = _install_copy(tmp_path), tmp_path / "numba-cache"
    results = _train(install, cache, processes=3)
    assert len({digest for digest, _ in results}) == 1
    [(digest, stats)] = _train(install, cache)
    assert digest == results[0][0]
    assert all(hits >= 1 and misses == 0 for hits, misses in stats.values()), stats


def test_cold_process_loads_the_evaluation_and_prediction_its_helper_compiled(tmp_path):
    """With an empty cache the training process starts a helper that compiles ``evaluate``
    and ``forward_blocks`` while it compiles ``train_steps`` itself; it then loads both from
    the cache (a hit, no miss) and trains and predicts to the bits of a process without the
    helper."""
    install = _install_copy(tmp_path)
    [(alone_digest, _)] = _train(install, tmp_path / "cache-alone", compile_ahead=False)
    [(digest, stats)] = _train(install, tmp_path / "cache-helped")
    assert stats["train_steps"] == [0, 1] and stats["evaluate"] == [1, 0], stats
    assert stats["forward_blocks"] == [1, 0], stats
    assert digest == alone_digest


# Compiles train_steps' last callees as the helper does ("helper"), or trains one epoch with
# no helper ("train"); reports each of those callees' cache hits and misses.
CALLEES_SCRIPT = """
import contextlib, io, json, sys
import numpy as np
import fastmlp
from fastmlp._compile_ahead import step_callees
dtype = np.dtype(sys.argv[2]).type
if sys.argv[1] == "helper":
    for kernel, signature in step_callees(dtype):
        kernel.compile(signature)
else:
    rng = np.random.default_rng(0)
    X, y = rng.uniform(-1, 1, (300, 784)).astype(dtype), rng.integers(0, 10, 300)
    with contextlib.redirect_stdout(io.StringIO()):
        fastmlp.train(fastmlp.NeuralNetMLP(784, 22, 10, dtype=dtype), X, y, X, y, 1)
print(json.dumps({k.py_func.__name__: [sum(k.stats.cache_hits.values()),
                                      sum(k.stats.cache_misses.values())]
                  for k, _ in step_callees(dtype)}))
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_helper_compiles_the_step_callees_with_the_signatures_the_step_calls(tmp_path, dtype):
    """The helper compiles ``train_steps``' last callees from hand-built signatures
    (``fastmlp._compile_ahead.step_callees``): a training process then loads every one of
    them from the cache (a hit, no miss). A signature unlike the call's would be a miss."""
    install = _install_copy(tmp_path)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(install),
           "FASTMLP_COMPILE_AHEAD": "0"}
    stats = [json.loads(subprocess.run([sys.executable, "-c", CALLEES_SCRIPT, role, dtype],
                                       cwd=install.parent, env=env, capture_output=True,
                                       text=True, check=True, timeout=600).stdout)
             for role in ("helper", "train")]
    assert all(hits == 0 and misses == 1 for hits, misses in stats[0].values()), stats
    assert all(hits == 1 and misses == 0 for hits, misses in stats[1].values()), stats
