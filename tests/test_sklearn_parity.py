"""The NumPy twin (fastmlp.reference_deep) and the kernels give scikit-learn's MLPClassifier weights.

Same initial weights, ``shuffle=False``, constant learning rate, fixed batch size:
after one to three epochs every weight agrees to ``1e-10`` of the largest entry
(float64; the only differences are rounding, of order 1e-16 per operation).
"""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLP

from fastmlp import reference_deep as ref

TOL = 1e-10
SOLVERS = [  # (solver, momentum, nesterov)
    ("sgd", 0.0, False), ("sgd", 0.9, False), ("sgd", 0.9, True), ("adam", 0.9, True)]
ARCHS = [  # (n_features, hidden, n_classes, activation, batch_size)
    (7, (5,), 3, "relu", 10),
    (6, (8, 4), 4, "tanh", 7),
    (5, (6, 5, 3), 3, "logistic", 16),
    (4, (3,), 2, "identity", 9),  # binary: one logistic output, as scikit-learn
]


def problem(n_features, hidden, n_classes, seed=0, n=53):
    """Data (n not a multiple of the batch sizes) and initial weights for a network."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    n_out = 1 if n_classes == 2 else n_classes
    units = [n_features, *hidden, n_out]
    coefs = [rng.uniform(-0.7, 0.7, (a, b)) for a, b in zip(units[:-1], units[1:])]
    intercepts = [rng.uniform(-0.3, 0.3, b) for b in units[1:]]
    return X, y, coefs, intercepts


def sklearn_weights(X, y, coefs, intercepts, epochs, **params):
    """scikit-learn's weights after ``epochs`` epochs from the given ones."""
    clf = SkMLP(shuffle=False, learning_rate="constant", n_iter_no_change=10**6, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.set_params(max_iter=1).fit(X, y)  # builds classes_, the binariser, ...
        clf.coefs_ = [c.copy() for c in coefs]
        clf.intercepts_ = [b.copy() for b in intercepts]
        clf.set_params(max_iter=epochs, warm_start=True).fit(X, y)  # a fresh optimiser
    return clf


def twin_weights(X, y, coefs, intercepts, epochs, activation, solver, alpha, batch_size,
                 learning_rate_init, momentum, nesterovs_momentum):
    coefs = [c.copy() for c in coefs]
    intercepts = [b.copy() for b in intercepts]
    opt = ref.Optimizer(coefs + intercepts, solver, learning_rate_init, momentum,
                        nesterovs_momentum)
    losses = [ref.train_epoch(coefs, intercepts, opt, X, y, np.arange(len(X)), batch_size,
                              activation, "log_loss", alpha) for _ in range(epochs)]
    return coefs, intercepts, losses


def assert_close(actual, expected, tol=TOL):
    scale = max(np.abs(e).max() for e in expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        assert np.abs(a - e).max() <= tol * scale, np.abs(a - e).max() / scale


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a[0]}-{a[1]}-{a[2]}-{a[3]}")
@pytest.mark.parametrize("solver,momentum,nesterov", SOLVERS)
@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_twin_matches_sklearn(arch, solver, momentum, nesterov, alpha):
    n_features, hidden, n_classes, activation, batch_size = arch
    X, y, coefs, intercepts = problem(n_features, hidden, n_classes)
    lr = 0.01 if solver == "adam" else 0.1
    epochs = 3
    clf = sklearn_weights(X, y, coefs, intercepts, epochs, hidden_layer_sizes=hidden,
                          activation=activation, solver=solver, alpha=alpha,
                          batch_size=batch_size, learning_rate_init=lr, momentum=momentum,
                          nesterovs_momentum=nesterov)
    tw_coefs, tw_intercepts, losses = twin_weights(X, y, coefs, intercepts, epochs, activation,
                                                   solver, alpha, batch_size, lr, momentum,
                                                   nesterov)
    # the weights moved (the comparison is not of the initial weights with themselves)
    assert max(np.abs(a - b).max() for a, b in zip(tw_coefs, coefs)) > 1e-3
    assert_close(tw_coefs + tw_intercepts, clf.coefs_ + clf.intercepts_)
    np.testing.assert_allclose(losses, clf.loss_curve_[-epochs:], rtol=TOL)
