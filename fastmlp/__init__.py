"""fastmlp: the textbook chapter's multi-layer perceptron on Numba kernels.

The names below are the chapter's (see :mod:`fastmlp.reference` for its pure-NumPy
code): replace the chapter's definitions with ``from fastmlp import ...`` and its
notebook runs unchanged, printing the same numbers, sooner.
"""
from .model import (InitializeModel, NeuralNetMLP, NeuralNetMLP_ReLU, accuracy,
                    compute_mse_and_acc, int_to_onehot, minibatch_generator, mse_loss, relu,
                    sigmoid, train)
from .threads import set_num_threads

__all__ = ["InitializeModel", "MLPClassifier", "NeuralNetMLP", "NeuralNetMLP_ReLU", "accuracy",
           "compute_mse_and_acc", "int_to_onehot", "minibatch_generator", "mse_loss", "relu",
           "set_num_threads", "sigmoid", "train"]
__version__ = "0.1.0"


def __getattr__(name):
    # The scikit-learn estimator is imported on first use: scikit-learn is slow to import.
    if name == "MLPClassifier":
        from .estimator import MLPClassifier
        return MLPClassifier
    raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")
