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


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small products: threaded BLAS only waits on a busy machine (scikit-learn's side too)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        yield

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


# ---- fastmlp.MLPClassifier against scikit-learn's, end to end ----

from fastmlp.estimator import MLPClassifier  # noqa: E402

ESTIMATOR_CASES = [
    dict(),  # the defaults: (100,), relu, Adam, shuffled batches of 200
    dict(hidden_layer_sizes=(20, 10), activation="tanh", solver="sgd", learning_rate_init=0.05,
         batch_size=32),
    dict(hidden_layer_sizes=(15,), activation="logistic", solver="sgd",
         nesterovs_momentum=False, learning_rate="invscaling", learning_rate_init=0.5),
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.2, tol=0.3,
         n_iter_no_change=2, momentum=0.0),  # the rate is divided by 5 along the way
    dict(hidden_layer_sizes=(30,), early_stopping=True, n_iter_no_change=3, tol=0.05,
         learning_rate_init=0.01),  # stops early, keeps the best validation weights
    dict(hidden_layer_sizes=(12, 9, 6), alpha=0.1, activation="identity", batch_size=50),
]


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


def assert_same_fit(ours, theirs):
    assert_close(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=TOL)
    assert (ours.validation_scores_ is None) == (theirs.validation_scores_ is None)
    if ours.validation_scores_ is not None:
        np.testing.assert_array_equal(ours.validation_scores_, theirs.validation_scores_)
    assert (ours.n_layers_, ours.n_outputs_, ours.out_activation_) == (
        theirs.n_layers_, theirs.n_outputs_, theirs.out_activation_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("params", ESTIMATOR_CASES, ids=lambda p: ",".join(p) or "defaults")
@pytest.mark.parametrize("binary", [False, True], ids=["10 classes", "2 classes"])
def test_estimator_fit_gives_sklearns_model(digits, params, binary):
    X, y = digits
    y = y % 2 if binary else y
    params = dict(max_iter=15, random_state=0, **params)
    ours, theirs = MLPClassifier(**params).fit(X, y), SkMLP(**params).fit(X, y)
    assert_same_fit(ours, theirs)
    if params.get("learning_rate") == "adaptive":  # the schedule was exercised
        assert ours._optimizer.hyper[0] == theirs._optimizer.learning_rate < 0.2
    if params.get("early_stopping") and not binary:
        assert ours.n_iter_ < 15
    assert_close([ours.predict_proba(X)], [theirs.predict_proba(X)])
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_assigned_weights_are_where_training_continues(digits, solver):
    """``coefs_``/``intercepts_`` assigned before partial_fit or a warm-start fit, as in scikit-learn."""
    X, y = digits
    rng = np.random.default_rng(3)
    results = []
    for cls in (MLPClassifier, SkMLP):
        clf = cls((16, 8), solver=solver, max_iter=3, random_state=0).fit(X, y)
        clf.coefs_ = [rng.uniform(-0.3, 0.3, c.shape) for c in clf.coefs_]
        clf.intercepts_ = [rng.uniform(-0.3, 0.3, b.shape) for b in clf.intercepts_]
        clf.partial_fit(X, y)  # continues with fit's optimiser state
        partial = [c.copy() for c in clf.coefs_ + clf.intercepts_]
        clf.coefs_ = [c * 0.5 for c in clf.coefs_]
        clf.set_params(warm_start=True, max_iter=2).fit(X, y)  # a new optimiser
        results.append((partial, clf))
        rng = np.random.default_rng(3)  # the same assigned weights for both
    (ours_partial, ours), (theirs_partial, theirs) = results
    assert_close(ours_partial, theirs_partial)
    assert_same_fit(ours, theirs)
