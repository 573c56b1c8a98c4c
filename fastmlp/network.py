"""The general multi-layer perceptron in Python: validation, weights, workspaces, training, prediction.

The arithmetic is in :mod:`fastmlp.kernels.network` (specification:
:mod:`fastmlp.reference_deep`). A :class:`Network` holds the weights in one flat
vector; ``coefs`` and ``intercepts`` are views of it in scikit-learn's layout. A
:class:`Trainer` checks the data once, allocates the workspaces once, and runs an epoch
as a few compiled calls per thread (:func:`fastmlp.team.segments`), on a team of fastmlp's
thread count (:func:`fastmlp.threads.limit`, :func:`fastmlp.set_num_threads`); prediction and
:meth:`Network.gradient` run on BLAS's own threads.
"""
import numpy as np

from . import team
from ._validation import check_dtype, check_features, check_labels, check_positive_int
from .kernels import network as kn
from .kernels.sync import SYNC_SIZE
from .kernels.validate import label_range
from .threads import blas_limit, get_num_threads, single_threaded_blas

ACTIVATIONS = {"logistic": kn.LOGISTIC, "sigmoid": kn.LOGISTIC, "relu": kn.RELU,
               "tanh": kn.TANH, "identity": kn.IDENTITY}
LOSSES = ("log_loss", "mse")
SOLVERS = ("sgd", "adam")
PREDICT_ROWS = 1024  # rows per forward chunk in predict: bounded memory for any n
BLAS_PARALLEL_MIN_WORK = 8_000_000
"""Multiply-adds of a call's largest product below which BLAS runs on one thread.

Threaded BLAS on small products loses more to waking its threads than it gains,
and on a machine whose other core is busy it loses many times over (measured on
the 8x8 digits, 64-100-10 at batch 200, two busy cores: 4 ms an epoch on one
thread, 58 ms on two). The 784-256-128-10 network at batch 100 (20 M) is threaded.
"""
TEAM_MIN_WORK = BLAS_PARALLEL_MIN_WORK
"""The same bound for a training epoch's team (a batch's largest product, multiply-adds)."""


def _largest_product(units, rows):
    return rows * int(max(a * b for a, b in zip(units[:-1], units[1:])))


def _step_work(units, rows):
    """Multiply-adds of a training step: every layer's forward product and weight gradient,
    every hidden layer's input delta."""
    pairs = [int(a) * int(b) for a, b in zip(units[:-1], units[1:])]
    return rows * (2 * sum(pairs) + sum(pairs[1:]))


def _blas_threads(units, rows):
    """BLAS on fastmlp's thread count for the calling thread (one for small products)."""
    work = _largest_product(units, rows)
    return blas_limit(get_num_threads() if work >= BLAS_PARALLEL_MIN_WORK else 1)


def _check_real(value, name, low=0.0, high=np.inf, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not low <= value <= high or (high_open and value == high):
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must be a number in [{low}, {high}{bracket}, got {value!r}")
    return float(value)


class Network:
    """A dense network ``units[0] -> ... -> units[-1]`` with one hidden activation.

    Parameters
    ----------
    units : sequence of int
        Layer sizes ``[n_features, hidden..., n_outputs]`` (at least two).
    activation : {"relu", "logistic", "sigmoid", "tanh", "identity"}, default "relu"
        Hidden activation ("sigmoid" is "logistic").
    loss : {"log_loss", "mse"}, default "log_loss"
        "log_loss": softmax and cross-entropy (one output: logistic and binary
        cross-entropy); "mse": the chapter's sigmoid outputs and MSE.
    alpha : float, default 0.0
        L2 penalty, ``alpha / 2 * sum ||W||**2 / batch_size`` (scikit-learn's).
    dtype : {np.float64, np.float32}, default np.float64

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        Every layer's weights, then every layer's biases.
    coefs, intercepts : list of ndarray
        Views of ``params``: ``coefs[i]`` (units[i], units[i + 1]), ``intercepts[i]``
        (units[i + 1],); writing into them changes the network.
    """

    def __init__(self, units, activation="relu", loss="log_loss", alpha=0.0, dtype=np.float64):
        if isinstance(units, (str, bytes)) or not hasattr(units, "__len__") or len(units) < 2:
            raise ValueError(f"units must be a sequence of at least two layer sizes, got {units!r}")
        self.units = np.array([check_positive_int(u, "every layer size") for u in units],
                              np.int64)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {activation!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.activation, self.loss = activation, loss
        self.alpha = _check_real(alpha, "alpha")
        self.dtype = check_dtype(dtype)
        shapes = list(zip(self.units[:-1], self.units[1:]))
        n_weights = sum(int(a * b) for a, b in shapes)
        self.params = np.empty((n_weights + int(self.units[1:].sum()),), self.dtype)
        self.params[:] = 0
        self.coefs, self.intercepts, off = [], [], 0
        for a, b in shapes:
            self.coefs.append(self.params[off:off + a * b].reshape(a, b))
            off += a * b
        for _, b in shapes:
            self.intercepts.append(self.params[off:off + b])
            off += b

    @property
    def output(self):
        """The kernels' output/loss code."""
        if self.loss == "mse":
            return kn.SIGMOID_MSE
        return kn.SOFTMAX_LOG_LOSS if self.units[-1] > 1 else kn.LOGISTIC_LOG_LOSS

    @property
    def num_classes(self):
        """Labels take values in ``[0, num_classes)``: the outputs, or 2 for one output."""
        return max(int(self.units[-1]), 2)

    def initialize(self, rng):
        """Glorot-uniform weights and biases drawn as scikit-learn's ``_init_coef`` draws them.

        Layer by layer, weights then biases, from ``rng`` (a ``np.random.RandomState``),
        bound ``sqrt(f / (fan_in + fan_out))`` with ``f = 2`` for logistic, else 6.
        """
        factor = 2.0 if ACTIVATIONS[self.activation] == kn.LOGISTIC else 6.0
        for coef, intercept in zip(self.coefs, self.intercepts):
            bound = np.sqrt(factor / (coef.shape[0] + coef.shape[1]))
            coef[...] = rng.uniform(-bound, bound, coef.shape)
            intercept[...] = rng.uniform(-bound, bound, intercept.shape)

    def set_weights(self, coefs, intercepts):
        """Copy ``coefs`` and ``intercepts`` (scikit-learn's layout) into the network.

        Raises
        ------
        ValueError
            If their number or shapes do not match the layers, or they hold NaN or infinity.
        """
        for name, given, own in (("coefs_", coefs, self.coefs),
                                 ("intercepts_", intercepts, self.intercepts)):
            if len(given) != len(own):
                raise ValueError(f"{name} has {len(given)} arrays, the network has {len(own)} "
                                 f"layers")
            for i, (g, o) in enumerate(zip(given, own)):
                g = np.asarray(g)
                if g.shape != o.shape:
                    raise ValueError(f"{name}[{i}] has shape {g.shape}, expected {o.shape}")
                if not np.all(np.isfinite(g)):
                    raise ValueError(f"{name}[{i}] contains NaN or infinity")
        for g, o in zip(list(coefs) + list(intercepts), self.coefs + self.intercepts):
            o[...] = g

    def kernel_model(self):
        """The :class:`kernels.network.Model` the kernels take."""
        return kn.Model(self.params, self.units, ACTIVATIONS[self.activation], self.output,
                        self.alpha)

    def check_data(self, X, y=None):
        """``X`` (and ``y``) as the kernels need them, or a ValueError saying what is wrong."""
        X = check_features(X, int(self.units[0]), self.dtype)
        if y is None:
            return X
        return X, check_labels(y, self.num_classes, X.shape[0])

    def workspace(self, rows):
        """Buffers for batches of up to ``rows`` rows."""
        width = int(self.units[1:].sum())
        return kn.Workspace(np.empty((rows, int(self.units[0])), self.dtype),
                            np.zeros(rows, np.int64),
                            np.empty((rows * width,), self.dtype),
                            np.empty((rows * width,), self.dtype),
                            np.zeros(self.params.shape, self.dtype))

    def gradient(self, X, y):
        """``(loss, coef_grads, intercept_grads)`` of the batch ``X``, ``y`` (copies)."""
        X, y = self.check_data(X, y)
        ws = self.workspace(max(X.shape[0], 1))
        if X.shape[0] == 0:
            raise ValueError("X must hold at least one example")
        with _blas_threads(self.units, X.shape[0]):
            loss = kn.gradient(self.kernel_model(), X, y, ws)
        grads = Network(self.units, self.activation, self.loss, self.alpha, self.dtype)
        grads.params[:] = ws.grads
        return loss, grads.coefs, grads.intercepts

    def forward_output(self, X):
        """The output layer's activations, (n, units[-1]), for every row of ``X``."""
        X = self.check_data(X)
        out = np.empty((X.shape[0], int(self.units[-1])), self.dtype)
        if X.shape[0]:
            acts = np.empty((min(PREDICT_ROWS, X.shape[0]) * int(self.units[1:].sum()),),
                                 self.dtype)
            with _blas_threads(self.units, acts.shape[0] // int(self.units[1:].sum())):
                kn.predict(self.kernel_model(), X, acts, out)
        return out


def make_optimizer(network, solver="adam", learning_rate_init=0.001, momentum=0.9,
                   nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """A fresh optimiser state for ``network`` (scikit-learn's parameter names and meanings).

    Raises
    ------
    ValueError
        For an unknown solver (e.g. "lbfgs") or out-of-range settings.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS} (lbfgs is not supported), "
                         f"got {solver!r}")
    hyper = np.array([_check_real(learning_rate_init, "learning_rate_init"),
                      _check_real(momentum, "momentum", 0, 1),
                      _check_real(beta_1, "beta_1", 0, 1, high_open=True),
                      _check_real(beta_2, "beta_2", 0, 1, high_open=True),
                      _check_real(epsilon, "epsilon")])
    if hyper[0] <= 0 or hyper[4] <= 0:
        raise ValueError("learning_rate_init and epsilon must be > 0")
    code = kn.ADAM if solver == "adam" else kn.NESTEROV if nesterovs_momentum else kn.SGD
    return kn.Optimizer(code, hyper, np.zeros_like(network.params),
                        np.zeros_like(network.params), np.zeros(1, np.int64))


class Trainer:
    """Epochs of ``network`` on ``X``, ``y``: data checked once, workspaces allocated once.

    Parameters
    ----------
    network : Network
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Integer labels in ``[0, network.num_classes)``.
    batch_size : int
        Rows per step, clipped to ``n_samples``; the last batch of an epoch may be smaller.
    optimizer : kernels.network.Optimizer
        From :func:`make_optimizer`; its state carries over between trainers.
    """

    def __init__(self, network, X, y, batch_size, optimizer):
        self.network = network
        self.X, self.y = network.check_data(X, y)
        if self.X.shape[0] == 0:
            raise ValueError("X must hold at least one example")
        if optimizer.m.shape != network.params.shape or optimizer.m.dtype != network.dtype:
            raise ValueError("the optimizer was made for another network")
        self.batch_size = min(check_positive_int(batch_size, "batch_size"), self.X.shape[0])
        self.optimizer = optimizer
        self.ws = network.workspace(self.batch_size)

    def run(self, order=None):
        """One epoch over ``X[order]`` (default: in order); returns the mean loss.

        Raises
        ------
        ValueError
            If ``order`` is empty or holds indices outside ``[0, n_samples)``.
        """
        n = self.X.shape[0]
        order = np.arange(n) if order is None else np.ascontiguousarray(order, np.int64)
        if order.ndim != 1 or order.size == 0:
            raise ValueError(f"order must be a non-empty 1-D array of row indices, "
                             f"got shape {order.shape}")
        lo, hi = label_range(order)
        if lo < 0 or hi >= n:
            raise ValueError(f"order holds indices in [{lo}, {hi}], outside [0, {n})")
        units = self.network.units
        wanted = min(get_num_threads(), self.batch_size) \
            if _largest_product(units, self.batch_size) >= TEAM_MIN_WORK else 1
        state = kn.Team(np.zeros(SYNC_SIZE, np.int64), np.zeros((2, 2, wanted)), np.zeros(1))
        steps = -(-order.shape[0] // self.batch_size)
        with single_threaded_blas:
            for size, start, end in team.segments(wanted, _step_work(units, self.batch_size), 0,
                                                  steps, lambda wanted, _: team.size(wanted)):
                state.sync[:] = 0
                team.run(kn.epoch, size, self.network.kernel_model(), self.X, self.y, order,
                         start, end, self.batch_size, self.ws, self.optimizer, state)
        return state.total[0] / order.shape[0]
