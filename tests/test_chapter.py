"""The chapter end to end: its notebook runs unchanged on fastmlp, and its run is reproduced."""
import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

import fastmlp
from fastmlp import reference
from tests.conftest import CHAPTER, requires_mnist

NOTEBOOK = Path(__file__).parent / "data" / "chapter_notebook.py"
CHAPTER_NAMES = ["NeuralNetMLP", "NeuralNetMLP_ReLU", "minibatch_generator", "mse_loss",
                 "accuracy", "compute_mse_and_acc", "train", "int_to_onehot", "sigmoid"]


def run_notebook(module, data, num_epochs):
    """Run the chapter's cells with the chapter's names taken from ``module``; return the output."""
    X_train, X_valid, X_test, y_train, y_valid, y_test = data
    namespace = {name: getattr(module, name) for name in CHAPTER_NAMES}
    namespace.update(np=np, NUM_EPOCHS=num_epochs, X_train=X_train, X_valid=X_valid,
                     X_test=X_test, y_train=y_train, y_valid=y_valid, y_test=y_test)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(NOTEBOOK.read_text(), str(NOTEBOOK), "exec"), namespace)
    return out.getvalue()


def synthetic_split():
    """MNIST-shaped random data (when the real files are absent): 6,000 / 1,000 / 1,000 rows."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(8000, 784))
    y = (X[:, :10].argmax(axis=1) + (rng.uniform(size=8000) < 0.1)) % 10  # learnable labels
    return X[:6000], X[6000:7000], X[7000:], y[:6000], y[6000:7000], y[7000:]


def test_notebook_runs_unchanged_on_synthetic_data():
    data = synthetic_split()
    got = run_notebook(fastmlp, data, num_epochs=3)
    assert got == run_notebook(reference, data, num_epochs=3)
    assert got.count("Epoch: ") == 6 and "Predicted label is:" in got


@requires_mnist
def test_notebook_runs_unchanged_on_mnist(chapter_data):
    got = run_notebook(fastmlp, chapter_data, num_epochs=2)
    assert got == run_notebook(reference, chapter_data, num_epochs=2)


def chapter_tables():
    """The chapter's two printed 40-epoch tables (sigmoid, then ReLU)."""
    lines = re.findall(r"^Epoch: \d{3}/040 .*$", CHAPTER.read_text(), flags=re.M)
    assert len(lines) == 80
    return {"sigmoid": lines[:40], "relu": lines[40:]}


@requires_mnist
@pytest.mark.skipif(not CHAPTER.exists(), reason=f"chapter text not found at {CHAPTER}")
@pytest.mark.parametrize("implementation", ["fastmlp", "reference"])
@pytest.mark.parametrize("activation, test_accuracy", [("sigmoid", "94.13%"), ("relu", "96.09%")])
def test_chapter_run_prints_the_chapters_table(chapter_data, capsys, implementation, activation,
                                               test_accuracy):
    X_train, X_valid, X_test, y_train, y_valid, y_test = chapter_data
    module = fastmlp if implementation == "fastmlp" else reference
    model = module.NeuralNetMLP(784, 50, 10, activation=activation)
    np.random.seed(123)
    module.train(model, X_train, y_train, X_valid, y_valid, num_epochs=40, learning_rate=0.1)
    _, test_acc = module.compute_mse_and_acc(model, X_test, y_test)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Model initialization"
    assert printed[1:] == chapter_tables()[activation]
    assert f"{test_acc*100:.2f}%" == test_accuracy
