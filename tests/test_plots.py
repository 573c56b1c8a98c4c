"""Tests of fastmlp.plots: PNG files of the expected size, and the misclassified grid."""
import importlib.util
import struct

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from fastmlp import NeuralNetMLP, datasets, plots  # noqa: E402
from tests.conftest import quiet  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.usefixtures("one_kernel_thread")  # tiny data: see conftest


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the 8-byte signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, chunk_type, width, height = struct.unpack(">I4sII", data[8:24])
    assert chunk_type == b"IHDR" and length == 13
    return width, height


@pytest.fixture(scope="module")
def digits():
    X, y, image_shape, _ = datasets.load_dataset("digits")
    return datasets.normalize(X), y, image_shape


class FixedPredictions:
    """A stand-in model whose ``forward`` predicts ``predictions[i]`` for row i of X."""

    def __init__(self, X, predictions, num_classes=10):
        self.X, self.predictions, self.num_classes = X, predictions, num_classes

    def forward(self, X):
        rows = [np.flatnonzero((self.X == x).all(axis=1))[0] for x in X]
        probas = np.eye(self.num_classes)[self.predictions[rows]]  # [n, C] one-hot
        return None, probas


@pytest.mark.parametrize("name, size", [
    ("class_examples", (640, 480)),
    ("digit_variants", (640, 480)),
    ("loss", (640, 480)),
    ("accuracy", (640, 480)),
    ("misclassified", (800, 800)),
    ("pca_3d", (800, 800)),
])
def test_figures_save_as_pngs_of_figsize_times_dpi(tmp_path, digits, name, size):
    X, y, image_shape = digits
    model = quiet(NeuralNetMLP, 64, 10, 10)
    makers = {
        "class_examples": lambda: plots.plot_class_examples(X, y, image_shape),
        "digit_variants": lambda: plots.plot_digit_variants(X, y, 7, image_shape),
        "loss": lambda: plots.plot_loss([0.05, 0.03, 0.02]),
        "accuracy": lambda: plots.plot_accuracy([76.0, 85.0, 88.0], [75.0, 84.0, 87.0]),
        "misclassified": lambda: plots.plot_misclassified(model, X, y, image_shape),
        "pca_3d": lambda: plots.plot_pca_3d(X[:300], y[:300]),
    }
    fig = makers[name]()
    np.testing.assert_allclose(fig.get_size_inches() * plots.DPI, size)
    plots.save_figure(fig, tmp_path / f"{name}.png")
    assert png_size(tmp_path / f"{name}.png") == size


def test_class_examples_show_the_first_image_of_each_class(digits):
    X, y, image_shape = digits
    axes = plots.plot_class_examples(X, y, image_shape).axes
    assert len(axes) == 10  # 2 x 5
    for label, ax in enumerate(axes):
        np.testing.assert_array_equal(ax.images[0].get_array(),
                                      X[y == label][0].reshape(image_shape))


def test_digit_variants_show_the_first_n_of_the_digit(digits):
    X, y, image_shape = digits
    axes = plots.plot_digit_variants(X, y, 7, image_shape, n=25).axes
    assert len(axes) == 25
    for i, ax in enumerate(axes):
        np.testing.assert_array_equal(ax.images[0].get_array(), X[y == 7][i].reshape(8, 8))
    with pytest.raises(ValueError, match="no example has label 11"):
        plots.plot_digit_variants(X, y, 11, image_shape)


def test_select_misclassified_returns_only_wrong_predictions(digits):
    X, y, _ = digits
    model = quiet(NeuralNetMLP, 64, 10, 10)  # untrained: mostly wrong
    images, true_labels, predicted = plots.select_misclassified(model, X, y)
    assert len(images) == 25
    assert np.all(predicted != true_labels)
    _, probas = model.forward(images)
    np.testing.assert_array_equal(np.argmax(probas, axis=1), predicted)
    for image, label in zip(images, true_labels):
        assert label == y[np.flatnonzero((X == image).all(axis=1))[0]]


def test_misclassified_are_the_first_ones_among_the_first_1000_rows(digits):
    X, y, image_shape = digits
    predictions = y.copy()
    wrong_rows = [3, 500, 999, 1000, 1500]  # rows 1000 and 1500 are past the chapter's subset
    predictions[wrong_rows] = (y[wrong_rows] + 1) % 10
    model = FixedPredictions(X, predictions)
    images, true_labels, predicted = plots.select_misclassified(model, X, y)
    np.testing.assert_array_equal(images, X[[3, 500, 999]])
    np.testing.assert_array_equal(true_labels, y[[3, 500, 999]])
    np.testing.assert_array_equal(predicted, predictions[[3, 500, 999]])

    fig = plots.plot_misclassified(model, X, y, image_shape)
    titled = [ax for ax in fig.axes if ax.get_title()]
    expected = [f"{i+1}) True: {t}\n Predicted: {p}"
                for i, (t, p) in enumerate(zip(true_labels, predicted))]
    assert [ax.get_title() for ax in titled] == expected
    assert len(fig.axes) == 25
    assert sum(ax.get_visible() and ax.axison for ax in fig.axes) == 3  # the rest hidden


def test_pca_3d_has_one_series_per_label(digits):
    X, y, _ = digits
    fig = plots.plot_pca_3d(X[:200], y[:200])
    ax = fig.axes[0]
    assert ax.name == "3d"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == \
        [str(label) for label in np.unique(y[:200])]


@pytest.mark.skipif(importlib.util.find_spec("plotly") is None, reason="plotly not installed")
def test_write_pca_html(tmp_path, digits):
    X, y, _ = digits
    plots.write_pca_html(X[:200], y[:200], tmp_path / "pca3d.html")
    text = (tmp_path / "pca3d.html").read_text()
    assert "<html>" in text and "scatter3d" in text
