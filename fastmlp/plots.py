"""The chapter's figures (sections 12.1 and 12.4-12.6), as matplotlib Figures.

Each function builds a :class:`matplotlib.figure.Figure` directly, without
pyplot: nothing is shown, no global figure is left open, and any backend
(Agg included) can save it with ``fig.savefig(path)`` or :func:`save_figure`.
The 3-D PCA view is also available as an interactive HTML page when plotly is
installed (:func:`write_pca_html`).
"""
import math

import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

DPI = 100
"""Resolution of :func:`save_figure`: a (w, h)-inch figure becomes w*DPI x h*DPI pixels."""


def save_figure(fig, path, dpi=DPI):
    """Save `fig` as a PNG of ``figsize * dpi`` pixels (no tight bounding box).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
    dpi : int, default DPI
    """
    fig.savefig(path, dpi=dpi, format="png")


def _image_grid(images, image_shape, num_cells, titles=None, figsize=None, ncols=5):
    """A grid of ``num_cells`` axes, ``ncols`` per row, the images in the first ones.

    Each image is drawn in ``Greys`` (optionally titled); the axes left over are hidden.
    """
    nrows = max(1, math.ceil(num_cells / ncols))
    fig = Figure(figsize=figsize, layout="tight")
    axes = fig.subplots(nrows=nrows, ncols=ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= len(images):
            ax.set_axis_off()
            continue
        ax.imshow(np.reshape(images[i], image_shape), cmap="Greys", interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i])
    axes[0].set_xticks([])  # shared: removes every axis's ticks, as in the chapter
    axes[0].set_yticks([])
    return fig


def plot_class_examples(X, y, image_shape=(28, 28)):
    """The first image of each class, five per row (2 x 5 for the ten digits).

    Parameters
    ----------
    X : array-like of shape (n_examples, n_pixels)
    y : array-like of shape (n_examples,)
    image_shape : tuple of int, default (28, 28)

    Returns
    -------
    matplotlib.figure.Figure
    """
    X, y = np.asarray(X), np.asarray(y)
    labels = np.unique(y)
    return _image_grid([X[y == label][0] for label in labels], image_shape, len(labels))


def plot_digit_variants(X, y, digit=7, image_shape=(28, 28), n=25):
    """The first `n` images of class `digit` (the chapter's 25 sevens), five per row.

    Parameters
    ----------
    X : array-like of shape (n_examples, n_pixels)
    y : array-like of shape (n_examples,)
    digit : int, default 7
    image_shape : tuple of int, default (28, 28)
    n : int, default 25

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no example has label `digit`.
    """
    images = np.asarray(X)[np.asarray(y) == digit][:n]
    if len(images) == 0:
        raise ValueError(f"no example has label {digit!r}")
    return _image_grid(images, image_shape, n)


def plot_loss(epoch_loss, ylabel="Mean squared error"):
    """Training MSE (or another loss, named by `ylabel`) per epoch (section 12.4).

    Parameters
    ----------
    epoch_loss : sequence of float
    ylabel : str, default "Mean squared error"

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(layout="tight")
    ax = fig.subplots()
    ax.plot(range(len(epoch_loss)), epoch_loss)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("Epoch")
    return fig


def plot_accuracy(epoch_train_acc, epoch_valid_acc):
    """Training and validation accuracy (in %) per epoch (section 12.4).

    Parameters
    ----------
    epoch_train_acc, epoch_valid_acc : sequence of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(layout="tight")
    ax = fig.subplots()
    ax.plot(range(len(epoch_train_acc)), epoch_train_acc, label="Training")
    ax.plot(range(len(epoch_valid_acc)), epoch_valid_acc, label="Validation")
    ax.set_ylabel("Accuracy")
    ax.set_xlabel("Epochs")
    ax.legend(loc="lower right")
    return fig


def select_misclassified(model, X, y, n=25, num_rows=1000):
    """The first `n` misclassified examples among the first `num_rows` (section 12.5).

    Parameters
    ----------
    model : fastmlp.NeuralNetMLP or fastmlp.reference.NeuralNetMLP
    X : array-like of shape (n_examples, n_pixels)
    y : array-like of shape (n_examples,)
    n : int, default 25
    num_rows : int, default 1000

    Returns
    -------
    images : numpy.ndarray of shape (k, n_pixels)
    true_labels, predicted_labels : numpy.ndarray of shape (k,)
        ``k <= n``; ``predicted_labels[i] != true_labels[i]`` for every i.
    """
    X_subset, y_subset = np.asarray(X)[:num_rows], np.asarray(y)[:num_rows]
    _, probas = model.forward(X_subset)  # [num_rows, C]
    predicted = np.argmax(probas, axis=1)
    wrong = y_subset != predicted
    return X_subset[wrong][:n], y_subset[wrong][:n], predicted[wrong][:n]


def plot_misclassified(model, X_test, y_test, image_shape=(28, 28), n=25):
    """The chapter's grid of misclassified test images, each titled with both labels.

    Uses the first 1000 test rows and shows the first `n` the model gets wrong
    (see :func:`select_misclassified`) in a grid of `n` (5 x 5), in an 8 x 8
    inch figure; cells without a misclassified image are left blank.

    Parameters
    ----------
    model : fastmlp.NeuralNetMLP or fastmlp.reference.NeuralNetMLP
    X_test : array-like of shape (n_examples, n_pixels)
    y_test : array-like of shape (n_examples,)
    image_shape : tuple of int, default (28, 28)
    n : int, default 25

    Returns
    -------
    matplotlib.figure.Figure
        The titles are ``f'{i+1}) True: {t}\\n Predicted: {p}'``.
    """
    images, true_labels, predicted = select_misclassified(model, X_test, y_test, n)
    titles = [f"{i+1}) True: {t}\n Predicted: {p}"
              for i, (t, p) in enumerate(zip(true_labels, predicted))]
    return _image_grid(images, image_shape, n, titles=titles, figsize=(8, 8))


def pca_3d(X):
    """The first three principal components of `X`, shape (n_examples, 3)."""
    return PCA(n_components=3).fit_transform(X)


def plot_pca_3d(X, y):
    """A 3-D scatter of the first three principal components, one colour per label (12.6).

    Parameters
    ----------
    X : array-like of shape (n_examples, n_features)
    y : array-like of shape (n_examples,)

    Returns
    -------
    matplotlib.figure.Figure
        8 x 8 inches.
    """
    X_pca, y = pca_3d(X), np.asarray(y)
    fig = Figure(figsize=(8, 8), layout="tight")
    ax = fig.add_subplot(projection="3d")
    for label in np.unique(y):
        points = X_pca[y == label]  # [k, 3]
        ax.scatter(points[:, 0], points[:, 1], points[:, 2], s=4, label=str(label))
    ax.set_xlabel("Principal Component 1")
    ax.set_ylabel("Principal Component 2")
    ax.set_zlabel("Principal Component 3")
    ax.set_box_aspect(None, zoom=0.9)  # keeps the z label inside the figure
    ax.legend(title="label", loc="upper left", markerscale=3)
    return fig


def write_pca_html(X, y, path):
    """Write the chapter's interactive 3-D PCA plot as a self-contained HTML page.

    Needs plotly (``pip install plotly``); the page embeds plotly.js, so it
    opens offline.

    Parameters
    ----------
    X : array-like of shape (n_examples, n_features)
    y : array-like of shape (n_examples,)
    path : str or os.PathLike

    Raises
    ------
    ImportError
        If plotly is not installed.
    """
    import plotly.graph_objects as go

    X_pca, y = pca_3d(X), np.asarray(y)
    fig = go.Figure([go.Scatter3d(x=X_pca[y == label, 0], y=X_pca[y == label, 1],
                                  z=X_pca[y == label, 2], mode="markers", name=str(label),
                                  marker={"size": 2})
                     for label in np.unique(y)])
    fig.update_layout(margin={"l": 0, "r": 0, "t": 0, "b": 0},
                      scene={"xaxis_title": "Principal Component 1",
                             "yaxis_title": "Principal Component 2",
                             "zaxis_title": "Principal Component 3"})
    fig.write_html(path, include_plotlyjs=True)
