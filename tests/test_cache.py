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
print(fastmlp.int_to_onehot(np.array([2, 0]), 3).sum(), len(fastmlp.model._permutation(10)))
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
