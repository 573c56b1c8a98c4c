"""Shared fixtures: the chapter's data when it is here, quiet model construction."""
import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CHAPTER = SHARED / "reference" / "textbook-chapter.txt"


def mnist_dir():
    """The folder with the MNIST IDX files: $FASTMLP_MNIST_DIR, else ../shared/data/mnist, else None."""
    candidate = os.environ.get("FASTMLP_MNIST_DIR") or SHARED / "data" / "mnist"
    return Path(candidate) if Path(candidate, "train-labels-idx1-ubyte.gz").exists() \
        or Path(candidate, "train-labels-idx1-ubyte").exists() else None


requires_mnist = pytest.mark.skipif(
    mnist_dir() is None,
    reason="MNIST IDX files not found: set FASTMLP_MNIST_DIR or provide ../shared/data/mnist")


def quiet(factory, *args, **kwargs):
    """Call ``factory`` with its printed output (the chapter's "Model initialization") swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        return factory(*args, **kwargs)


@pytest.fixture(scope="session")
def chapter_data():
    """The chapter's normalised MNIST split: X_train, X_valid, X_test, y_train, y_valid, y_test."""
    from fastmlp import datasets
    X, y = datasets.load_mnist(mnist_dir())
    return datasets.train_valid_test_split(datasets.normalize(X), y)


@pytest.fixture
def small_data():
    """Random MNIST-like data: 2,150 rows (not a multiple of 100) of 784 features in [-1, 1], 10 classes."""
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, size=(2150, 784))
    y = rng.integers(0, 10, size=2150)
    return X[:1800], y[:1800], X[1800:], y[1800:]


@pytest.fixture
def one_kernel_thread():
    """Run the kernels on one thread: tiny problems then wait on no barrier on a busy machine."""
    from fastmlp import threads
    with threads.limit(1):
        yield
