"""What trains in ``fastmlp train``: :class:`Backend`, and the chapter network's two backends.

The general network's backends (any depth, log-loss, momentum, Adam, L2) are
built per run by :func:`fastmlp.cli.deep.backend`; a run takes the chapter's
(:data:`BACKENDS`) when :func:`fastmlp.cli.deep.is_chapter` says its options
are the chapter's configuration.
"""
from dataclasses import dataclass

from .. import model, reference, training
from ..persistence import save_model

CHAPTER_ACTIVATIONS = {"sigmoid": "sigmoid", "logistic": "sigmoid", "relu": "relu"}
"""The ``--activation`` names the chapter's ``NeuralNetMLP`` takes, and its name for each."""


def _same(net):
    return net


@dataclass(frozen=True)
class Backend:
    """What a training run needs from an implementation: model, trainer, shuffle, evaluation.

    ``make_model(num_features, hidden, num_classes, activation, dtype)`` (`hidden`: the
    tuple of hidden widths) builds the model, ``trainer(model, X, y, learning_rate,
    minibatch_size)`` has :class:`fastmlp.model.EpochTrainer`'s interface,
    ``compute_mse_and_acc(model, X, y, num_labels)`` gives the test loss and
    accuracy, ``loss_name`` names the loss in the epoch lines, ``save(model, path)``
    writes the model file, and ``plot_model(model)`` is what the figures call
    ``forward`` on.
    """

    name: str
    description: str
    make_model: object
    trainer: object
    permutation: object  # n -> the epoch's order, drawn from np.random
    compute_mse_and_acc: object
    loss_name: str = "MSE"
    save: object = save_model
    plot_model: object = _same


BACKENDS = {
    "numba": Backend(
        "numba", "fastmlp's Numba kernels",
        lambda f, h, c, activation, dtype: model.NeuralNetMLP(
            f, h[0], c, activation=CHAPTER_ACTIVATIONS[activation], dtype=dtype),
        model.EpochTrainer, model.permutation, model.compute_mse_and_acc),
    "numpy": Backend(
        "numpy", "the chapter's NumPy code",
        lambda f, h, c, activation, dtype: reference.NeuralNetMLP(
            f, h[0], c, activation=CHAPTER_ACTIVATIONS[activation]),
        training.ReferenceTrainer, training.reference_permutation, reference.compute_mse_and_acc),
}
"""The chapter's ``NeuralNetMLP``: on fastmlp's kernels, or the chapter's own NumPy code."""
