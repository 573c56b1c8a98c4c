"""``fastmlp.MLPClassifier``: scikit-learn's MLPClassifier (stochastic solvers) on fastmlp's kernels.

Same parameters, defaults, attributes and training loop as
:class:`sklearn.neural_network.MLPClassifier` with ``solver="sgd"`` or ``"adam"``:
with the same ``random_state`` it draws the same initial weights, the same
shuffles and the same early-stopping split, and its weights agree with
scikit-learn's to rounding (tests/test_sklearn_parity.py).
"""
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, shuffle
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import threads
from ._validation import check_dtype, check_positive_int
from .network import ACTIVATIONS, LOSSES, Network, Trainer, make_optimizer

LEARNING_RATES = ("constant", "invscaling", "adaptive")


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier: scikit-learn's, trained by fastmlp's compiled epochs.

    The parameters and their defaults are those of
    :class:`sklearn.neural_network.MLPClassifier` (see its documentation), plus
    `loss`, `dtype` and `n_threads`. Not supported: ``solver="lbfgs"`` (a
    ``ValueError``), sparse input, multilabel targets and ``sample_weight``.

    The chapter's network and optimiser (its initial weights aside; and every batch
    is used, where the chapter drops the last incomplete one) is::

        MLPClassifier((50,), activation="logistic", loss="mse", solver="sgd", momentum=0,
                      alpha=0, learning_rate_init=0.1, batch_size=100, max_iter=40,
                      n_iter_no_change=40)

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Width of each hidden layer.
    activation : {"relu", "logistic", "tanh", "identity"}, default "relu"
    solver : {"adam", "sgd"}, default "adam"
    alpha : float, default 0.0001
        L2 penalty ``alpha / 2 * sum ||W||**2 / batch_size`` added to each batch's loss.
    batch_size : int or "auto", default "auto"
        ``min(200, n_samples)`` for "auto"; clipped to ``n_samples`` (with a warning).
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        Schedule of the "sgd" solver (Adam keeps ``learning_rate_init``).
    learning_rate_init : float, default 0.001
    power_t : float, default 0.5
        Exponent of "invscaling".
    max_iter : int, default 200
        Epochs of :meth:`fit`.
    shuffle : bool, default True
    random_state : int, RandomState instance or None, default None
        As scikit-learn's: initial weights, shuffles and the early-stopping split.
    tol : float, default 1e-4
    verbose : bool, default False
        Print the loss after each epoch.
    warm_start : bool, default False
        :meth:`fit` continues from ``coefs_`` and ``intercepts_``.
    momentum : float, default 0.9
    nesterovs_momentum : bool, default True
    early_stopping : bool, default False
    validation_fraction : float, default 0.1
    beta_1, beta_2, epsilon : float, default 0.9, 0.999, 1e-8
        Adam's settings.
    n_iter_no_change : int, default 10
    max_fun : int, default 15000
        Used by scikit-learn's "lbfgs" only; accepted for compatibility.
    loss : {"log_loss", "mse"}, default "log_loss"
        "log_loss": softmax outputs and cross-entropy (one logistic output for two
        classes), scikit-learn's; "mse": the chapter's sigmoid outputs (one per
        class) and mean squared error against one-hot targets.
    dtype : {None, np.float64, np.float32}, default None
        Precision of the weights and arithmetic; None follows `X` (as scikit-learn).
    n_threads : int or None, default None
        Threads the compiled kernels of :meth:`fit`, :meth:`partial_fit`,
        :meth:`predict` and :meth:`predict_proba` may use, set on the thread that
        does the work (:func:`fastmlp.threads.limit`) and restored afterwards; None
        keeps that thread's current setting (:func:`fastmlp.threads.get_num_threads`).
        It multiplies with the parallelism around the estimator:
        ``GridSearchCV(n_jobs=J)`` runs up to ``J`` fits at once, each on ``n_threads``
        threads, and a Dask worker runs ``threads_per_worker`` fits at once. Keep
        ``J * n_threads`` (or ``threads_per_worker * n_threads`` per worker) at or under
        the cores; ``n_threads=1`` with one fit per core is the safe choice for
        searches.

    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_layers_, n_outputs_, out_activation_,
    n_features_in_, feature_names_in_
        As scikit-learn's. ``coefs_[i]`` has shape ``(fan_in, fan_out)``; arrays
        assigned to ``coefs_`` and ``intercepts_`` before :meth:`partial_fit` or a
        ``warm_start`` fit are the weights training continues from.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 loss="log_loss", dtype=None, n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.loss = loss
        self.dtype = dtype
        self.n_threads = n_threads

    def fit(self, X, y):
        """Train for up to ``max_iter`` epochs (from ``coefs_`` when ``warm_start``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (numbers or strings).

        Returns
        -------
        self : MLPClassifier
        """
        with threads.limit(self.n_threads):
            return self._fit(X, y, incremental=False, classes=None)

    def partial_fit(self, X, y, classes=None):
        """Train for one epoch, continuing from ``coefs_`` and the optimiser's state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            Every label `y` may ever hold; required on the first call.

        Returns
        -------
        self : MLPClassifier
        """
        with threads.limit(self.n_threads):
            return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        With ``loss="mse"`` the sigmoid outputs normalised to sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        with threads.limit(self.n_threads):
            out = self._network().forward_output(X)  # [n, n_outputs]
        if out.shape[1] == 1:
            return np.hstack([1 - out, out])
        if self.loss == "mse":
            total = out.sum(axis=1, keepdims=True)  # [n, 1]; 0 only if every output underflowed
            out = np.divide(out, total, out=np.full_like(out, 1 / out.shape[1]),
                            where=total > 0)
        return out

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample (labels from ``classes_``)."""
        proba = self.predict_proba(X)  # [n, n_classes]; checks first that self is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    # -- training -----------------------------------------------------------------------

    def _hidden(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        if isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, got "
                             f"{self.hidden_layer_sizes!r}")
        return [check_positive_int(s, "hidden_layer_sizes") for s in sizes]

    def _check_params(self):
        """A ValueError for a setting fastmlp does not support, before any work."""
        if self.solver not in ("sgd", "adam"):
            raise ValueError(f"solver must be 'sgd' or 'adam' (fastmlp does not implement "
                             f"scikit-learn's 'lbfgs'), got {self.solver!r}")
        choices = {"activation": sorted(set(ACTIVATIONS) - {"sigmoid"}), "loss": LOSSES,
                   "learning_rate": LEARNING_RATES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, "
                                 f"got {getattr(self, name)!r}")
        if self.batch_size != "auto":
            check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.max_iter, "max_iter")
        check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), "
                             f"got {self.validation_fraction!r}")
        if self.dtype is not None:
            check_dtype(self.dtype)

    def _network(self):
        """A Network holding ``coefs_`` and ``intercepts_`` (checked against the layers)."""
        units = [self.n_features_in_, *self._hidden(), self.n_outputs_]
        net = Network(units, self.activation, self.loss, self.alpha, self._dtype)
        net.set_weights(self.coefs_, self.intercepts_)
        return net

    def _encode(self, y, incremental, classes):
        """Labels as indices into ``classes_``, which a first pass (re)defines."""
        check_classification_targets(y)  # "Unknown label type" for continuous y, ...
        labels = np.unique(y)
        if incremental and not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self.classes_ = np.unique(classes)
        elif not incremental and not (self.warm_start and hasattr(self, "classes_")):
            self.classes_ = labels
        elif self.warm_start and not incremental and set(labels) != set(self.classes_):
            raise ValueError(f"warm_start can only be used where `y` has the same classes as "
                             f"in the previous call to fit. Previously got {self.classes_}, "
                             f"`y` has {labels}")
        elif incremental and classes is not None \
                and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first call to "
                             f"partial_fit, {self.classes_!r}")
        unknown = np.setdiff1d(labels, self.classes_)
        if unknown.size:
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                             f"{self.classes_}. 'y' has {labels}.")
        if len(self.classes_) < 2:
            raise ValueError(f"MLPClassifier needs at least 2 classes, got 1 class: "
                             f"{self.classes_}")
        return np.searchsorted(self.classes_, y)

    def _initialize(self, n_features, dtype, rng):
        """New weights (scikit-learn's draws) and attributes, for a first pass."""
        n_classes = len(self.classes_)
        self.n_outputs_ = 1 if n_classes == 2 and self.loss == "log_loss" else n_classes
        self.n_layers_ = len(self._hidden()) + 2
        self.out_activation_ = "softmax" if self.loss == "log_loss" and self.n_outputs_ > 1 \
            else "logistic"
        net = Network([n_features, *self._hidden(), self.n_outputs_], self.activation,
                      self.loss, self.alpha, dtype)
        net.initialize(rng)
        self.coefs_, self.intercepts_ = net.coefs, net.intercepts
        self._dtype = dtype  # of every later fit and predict
        self.n_iter_, self.t_ = 0, 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_, self.validation_scores_, self.best_validation_score_ = \
                np.inf, None, None
        self._best = None

    def _fit(self, X, y, incremental, classes):
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=first_pass)
        y = self._encode(y, incremental, classes)
        rng = check_random_state(self.random_state)
        dtype = X.dtype.type if self.dtype is None else check_dtype(self.dtype)
        if first_pass:
            self._initialize(X.shape[1], dtype, rng)
        net = self._network()
        X = X.astype(net.dtype, copy=False)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = make_optimizer(net, self.solver, self.learning_rate_init,
                                             self.momentum, self.nesterovs_momentum,
                                             self.beta_1, self.beta_2, self.epsilon)
        X_val = y_val = None
        if self.early_stopping:  # scikit-learn stratifies with one output only
            X, X_val, y, y_val = train_test_split(X, y, random_state=rng,
                                                  test_size=self.validation_fraction,
                                                  stratify=y if self.n_outputs_ == 1 else None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped")
            batch_size = min(self.batch_size, n)
        trainer = Trainer(net, X, y, batch_size, self._optimizer)
        self.coefs_, self.intercepts_ = net.coefs, net.intercepts
        self._epochs(trainer, rng, X_val, y_val, incremental)
        if not np.all(np.isfinite(net.params)):
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        return self

    def _epochs(self, trainer, rng, X_val, y_val, incremental):
        """scikit-learn's ``_fit_stochastic`` loop, one compiled call per epoch."""
        n = trainer.X.shape[0]
        order = np.arange(n)
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            if self.shuffle:
                order = shuffle(order, random_state=rng)
            self.loss_ = trainer.run(order)
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            self._update_no_improvement_count(trainer.network, X_val, y_val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._optimizer.hyper[0] = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self._trigger_stopping(msg):
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              f"reached and the optimization hasn't converged yet.",
                              ConvergenceWarning)
        if self.early_stopping and self._best is not None:
            self.coefs_, self.intercepts_ = self._best

    def _trigger_stopping(self, msg):
        """scikit-learn's: stop, except for "adaptive" SGD, which divides its rate by 5."""
        hyper = self._optimizer.hyper
        adaptive = self.solver == "sgd" and self.learning_rate == "adaptive"
        stop = not adaptive or hyper[0] <= 1e-6
        if stop:
            msg += " Learning rate too small. Stopping." if adaptive else " Stopping."
        else:
            hyper[0] /= 5.0
            msg += f" Setting learning rate to {hyper[0]:f}"
        if self.verbose:
            print(msg)
        return stop

    def _update_no_improvement_count(self, net, X_val, y_val):
        if self.early_stopping:
            out = net.forward_output(X_val)
            predicted = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 \
                else np.argmax(out, axis=1)
            score = accuracy_score(y_val, predicted)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best = ([c.copy() for c in net.coefs], [b.copy() for b in net.intercepts])
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
