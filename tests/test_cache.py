"""Compiled kernels are cached where NUMBA_CACHE_DIR points, never next to an installed package."""
import os
import shutil
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import numpy as np
import fastmlp
assert fastmlp.__file__.startswith({root!r}), fastmlp.__file__
np.random.seed(0)
print(fastmlp.int_to_onehot(np.array([2, 0]), 3).sum(), len(fastmlp.model.permutation(10)))
"""


def test_kernels_cache_to_numba_cache_dir_not_the_install(tmp_path):
    install = tmp_path / "site"  # the layout pip installs: fastmlp/ with kernels/ inside
    shutil.copytree(REPO / "fastmlp", install / "fastmlp",
                    ignore=shutil.ignore_patterns("__pycache__", "kernels"))
    shutil.copytree(REPO / "kernels", install / "fastmlp" / "kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(install)}
    for _ in range(2):  # compile and write the cache, then load from it
        result = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(install))],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["2.0", "10"]
    cached = [p.name for p in cache.rglob("*.nbi")]
    assert any(name.startswith("onehot.onehot") for name in cached), cached
    assert any(name.startswith("shuffle.permutation") for name in cached), cached
    assert not list((install / "fastmlp").rglob("*.nbi"))  # nothing written into the install


TRAIN_SCRIPT = """
import contextlib, hashlib, io
import numpy as np
import fastmlp
from fastmlp.model import EpochTrainer
rng = np.random.default_rng(0)
X, y = rng.uniform(-1, 1, (300, 784)), rng.integers(0, 10, 300)
digest = hashlib.sha256()
for batch in (100, 3):  # train_steps, and train_steps_by_unit
    with contextlib.redirect_stdout(io.StringIO()):
        model = fastmlp.NeuralNetMLP(784, 22, 10)
    EpochTrainer(model, X, y, 0.1, batch).run(np.arange(300)[::-1].copy())
    for array in (model.weight_h, model.bias_h, model.weight_out, model.bias_out):
        digest.update(array.tobytes())
print(digest.hexdigest())
"""


def test_cached_kernels_give_the_bits_of_a_fresh_compilation(tmp_path):
    """The first process compiles the training kernels, the second loads them from the cache:
    both train to the same bits. (With ``arcp``, or ``reassoc`` on the deltas' products, LLVM
    ordered the arithmetic differently in the two, 1 ulp apart.)"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    digests = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        digests.append(result.stdout.strip())
    assert any(tmp_path.rglob("epoch.train_steps-*.nbi"))  # the second run did load a cache
    assert digests[0] == digests[1]
