"""A scikit-learn classifier around the chapter's MLP and fastmlp's fused training epochs."""
import contextlib
import io
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import threads
from ._validation import check_positive_int
from .model import EpochTrainer, NeuralNetMLP, accuracy, mse_loss

_ACTIVATIONS = {"logistic": "sigmoid", "relu": "relu"}


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """The chapter's one-hidden-layer MLP (MSE loss, plain SGD) as a scikit-learn classifier.

    Parameter names follow :class:`sklearn.neural_network.MLPClassifier`;
    the defaults are the chapter's (50 hidden units, learning rate 0.1,
    minibatches of 100, 40 epochs). Training runs on fastmlp's compiled
    kernels; unlike :func:`fastmlp.train`, it draws every random number from
    its own generator (`random_state`) and never from the global ``np.random``.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of one int, default (50,)
        Number of hidden units. Only one hidden layer is supported.
    activation : {"logistic", "relu"}, default "logistic"
        Hidden-layer activation ("logistic" is the chapter's sigmoid); the
        output layer is always sigmoid.
    learning_rate_init : float, default 0.1
        The constant SGD learning rate.
    batch_size : int or "auto", default 100
        Minibatch size, clipped to the number of samples; "auto" is
        ``min(200, n_samples)``. As in the chapter, each epoch drops the last
        incomplete minibatch (with ``shuffle=False`` the same last
        ``n_samples % batch_size`` samples are never used).
    max_iter : int, default 40
        Number of epochs of :meth:`fit` (:meth:`partial_fit` runs one).
    shuffle : bool, default True
        Visit the samples in a new random order each epoch.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights and the shuffling. An int is also the
        model's ``random_seed``, so ``random_state=123`` starts from the
        chapter's weights; None seeds a new generator from the operating
        system (never the global ``np.random`` state).
    dtype : {np.float64, np.float32}, default np.float64
        Precision of the weights and of the arithmetic.
    verbose : bool, default False
        Print the training MSE and accuracy after each epoch.
    n_threads : int or None, default None
        Threads the compiled kernels of :meth:`fit`, :meth:`partial_fit`,
        :meth:`predict` and :meth:`predict_proba` may use (at most Numba's
        ``NUMBA_NUM_THREADS``), set on the thread that does the work and
        restored afterwards; None keeps that thread's current setting
        (:func:`fastmlp.threads.get_num_threads`). It multiplies with the
        parallelism around the estimator: ``GridSearchCV(n_jobs=J)`` runs up
        to ``J`` fits at once, each on ``n_threads`` threads, and a Dask
        worker runs ``threads_per_worker`` fits at once. Keep ``J * n_threads``
        (or ``threads_per_worker * n_threads`` per worker) at or under the
        cores; ``n_threads=1`` with one fit per core is the safe choice for
        searches. Results do not depend on it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when `X` had string column names.
    model_ : fastmlp.NeuralNetMLP
        The trained network; its outputs are in the order of ``classes_``.
    n_iter_ : int
        Number of epochs run so far.
    """

    def __init__(self, hidden_layer_sizes=(50,), activation="logistic", learning_rate_init=0.1,
                 batch_size=100, max_iter=40, shuffle=True, random_state=None,
                 dtype=np.float64, verbose=False, n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose
        self.n_threads = n_threads

    def fit(self, X, y):
        """Train a new network for ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (numbers or strings).

        Returns
        -------
        self : MLPClassifier
        """
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        max_iter = check_positive_int(self.max_iter, "max_iter")
        with threads.limit(self.n_threads):
            self._initialize(classes)
            self._run_epochs(X, y_encoded, max_iter)
        return self

    def partial_fit(self, X, y, classes=None):
        """Train for one epoch, starting a new network on the first call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            All the labels `y` may ever hold; required on the first call.

        Returns
        -------
        self : MLPClassifier
        """
        first_call = not hasattr(self, "classes_")
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=first_call)
        check_classification_targets(y)
        with threads.limit(self.n_threads):  # a bad n_threads raises before the first call's state
            if first_call:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit")
                self._initialize(np.unique(classes))
            elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes={classes!r} differs from the classes of the first "
                                 f"call, {self.classes_!r}")
            unknown = np.setdiff1d(y, self.classes_)
            if unknown.size:
                raise ValueError(f"y holds labels {unknown!r} not in classes {self.classes_!r}")
            self._run_epochs(X, np.searchsorted(self.classes_, y), 1)
        return self

    def predict_proba(self, X):
        """The network's sigmoid outputs, normalised to sum to one per sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            float64 probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        with threads.limit(self.n_threads):
            _, a_out = self.model_.forward(X)  # [n, C]
        a_out = a_out.astype(np.float64)
        total = a_out.sum(axis=1, keepdims=True)  # [n, 1]; 0 only if every output underflowed
        return np.divide(a_out, total, out=np.full_like(a_out, 1 / a_out.shape[1]),
                         where=total > 0)

    def predict(self, X):
        """The most probable class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        probas = self.predict_proba(X)  # [n, C]
        return self.classes_[np.argmax(probas, axis=1)]

    def _initialize(self, classes):
        """A new network for sorted unique ``classes``, and a new shuffling generator."""
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        # None: fresh OS entropy (check_random_state would lend the global np.random state)
        self._rng = (np.random.RandomState() if self.random_state is None
                     else check_random_state(self.random_state))
        if isinstance(self.random_state, numbers.Integral):
            seed = int(self.random_state)
        else:
            seed = int(self._rng.randint(np.iinfo(np.int32).max))
        with contextlib.redirect_stdout(io.StringIO()):  # the chapter's "Model initialization"
            self.model_ = NeuralNetMLP(self.n_features_in_, _hidden_units(self.hidden_layer_sizes),
                                       len(classes), random_seed=seed,
                                       activation=_ACTIVATIONS[self.activation],
                                       dtype=self.dtype)
        self.classes_ = classes
        self.n_iter_ = 0

    def _run_epochs(self, X, y_encoded, num_epochs):
        """``num_epochs`` SGD epochs on ``X`` and encoded labels ``y_encoded``."""
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            batch_size = min(check_positive_int(self.batch_size, "batch_size"), n)
        trainer = EpochTrainer(self.model_, X, y_encoded, self.learning_rate_init, batch_size)
        for _ in range(num_epochs):
            order = self._rng.permutation(n) if self.shuffle else np.arange(n)
            trainer.run(order.astype(np.int64, copy=False))
            self.n_iter_ += 1
            if self.verbose:
                _, probas = self.model_.forward(trainer.X)  # [n, C]
                print(f"Epoch: {self.n_iter_:03d} "
                      f"| Train MSE: {mse_loss(trainer.y, probas, len(self.classes_)):.4f} "
                      f"| Train Acc: {accuracy(trainer.y, probas.argmax(axis=1)) * 100:.2f}%")


def _hidden_units(hidden_layer_sizes):
    """The number of hidden units from an int or a one-element tuple or list."""
    sizes = hidden_layer_sizes
    if isinstance(sizes, numbers.Integral):
        sizes = (sizes,)
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 1:
        raise ValueError(f"hidden_layer_sizes must be an int or a tuple of one int (one hidden "
                         f"layer), got {hidden_layer_sizes!r}")
    return check_positive_int(sizes[0], "hidden_layer_sizes")
