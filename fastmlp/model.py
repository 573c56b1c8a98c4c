"""The chapter's interface on compiled kernels.

Every public name here matches :mod:`fastmlp.reference` in name, signature and
result: the chapter's code runs unchanged on either. Each function validates
and converts its inputs (:mod:`fastmlp._validation`), then hands preallocated
arrays to a kernel in :mod:`fastmlp.kernels`: ``forward`` and ``backward`` on the
calling thread, the fused epoch and the evaluation on a team of threads
(:mod:`fastmlp.team`).
"""
import contextlib

import numpy as np

from . import _compile_ahead, reference, team
from ._random import global_mt19937
from ._validation import (check_activation, check_dtype, check_features, check_labels,
                          check_learning_rate, check_order, check_parameters, check_positive_int)
from .kernels import epoch, layers, loss, onehot, shuffle
from .kernels._config import ONE
from .kernels.epoch import Params
from .kernels.sync import SYNC_SIZE
from .persistence import load_model, save_model
from .predict import predict_labels
from .threads import get_num_threads, single_threaded_blas
from .training import train_epochs

# The chapter's plain-NumPy helpers need no kernel: one vectorised expression each.
InitializeModel = reference.InitializeModel
sigmoid = reference.sigmoid
relu = reference.relu
accuracy = reference.accuracy

# Multiply-adds per training step and thread below which a team costs more than it gains:
# measured (2-core Zen 4 VM, 784 inputs) batch 1, 50 hidden (39,000 a step): 6.3 us a step
# at 2 threads, 8.6 at 1; batch 2: 14.5 against 13.4 (BLAS calls too small to share).
TEAM_MIN_WORK = 16_384
# Multiply-adds below which a team call runs on one thread: starting a worker on another CPU
# cost ~200 us on a 2-core VM (an idle virtual CPU is woken; 26 us on the same CPU), the
# time one core takes for ~5M multiply-adds.
TEAM_CALL_MIN_WORK = 1 << 24
# Float64 multiply-adds (float32: twice as many) from which forward() and backward() cut the
# hidden layer's products into feature pieces (by the shape: the same bits at every thread
# count) and run them on a team whose workers are awake. A team call to awake workers costs
# 20-40 us (2-core Zen 2 VM, measured): forward() at 100 x 784 x 50 (3.9M) took 280 us on
# one thread and 234 us (float64) / 168 us against 140 us (float32) on two; at 100 x 784 x 256,
# 1247 / 782 us (float64).
PIECES_MIN_WORK = 1 << 22
_NO_SYNC = np.zeros(SYNC_SIZE, np.int64)  # the barrier state of a one-thread call (never written)
_NO_CONTEXT = contextlib.nullcontext()  # reusable; one made per call costs ~0.2 us


class NeuralNetMLP(reference.NeuralNetMLP):
    """The chapter's MLP with its forward and backward passes in Numba kernels.

    Parameters
    ----------
    num_features, num_hidden, num_classes : int
        Layer sizes (784, 50, 10 in the chapter).
    random_seed : int, default 123
        Seed of the model's own ``np.random.RandomState``; the weights are the
        chapter's draws (hidden layer first, ``normal(0, 0.1)``), biases zero.
    activation : {"sigmoid", "relu"}, default "sigmoid"
        Hidden-layer activation; the output layer is always sigmoid.
    dtype : {np.float64, np.float32}, default np.float64
        Precision of the weights and of the arithmetic. float64 matches the
        reference to rounding; float32 is faster.

    Attributes
    ----------
    weight_h : ndarray of shape (num_hidden, num_features)
    bias_h : ndarray of shape (num_hidden,)
    weight_out : ndarray of shape (num_classes, num_hidden)
    bias_out : ndarray of shape (num_classes,)
        Plain NumPy arrays of ``dtype``; they may be read and assigned (an array of
        another dtype or layout is converted on the next call).
    """

    def __init__(self, num_features, num_hidden, num_classes, random_seed=123,
                 activation="sigmoid", dtype=np.float64):
        for name, value in (("num_features", num_features), ("num_hidden", num_hidden),
                            ("num_classes", num_classes)):
            check_positive_int(value, name)
        check_activation(activation)
        self.dtype = check_dtype(dtype)
        super().__init__(num_features, num_hidden, num_classes, random_seed, activation)

    def _initialize_weights(self):
        super()._initialize_weights()  # the chapter's float64 draws, then cast
        for name in ("weight_h", "bias_h", "weight_out", "bias_out"):
            setattr(self, name, getattr(self, name).astype(self.dtype))

    def forward(self, x):
        """Return ``(a_h, a_out)`` for ``x`` of shape (n, num_features), or one example of shape (num_features,)."""
        params = Params(*check_parameters(self))
        weight_h = params.weight_h
        X = check_features(x, weight_h.shape[1], self.dtype, name="x", allow_1d=True)
        num_rows = X.shape[0]
        a_h = np.empty((num_rows, weight_h.shape[0]), self.dtype)
        a_out = np.empty((num_rows, self.num_classes), self.dtype)
        activation = check_activation(self.activation)
        num_blocks = -(-num_rows // epoch.EVAL_BLOCK)  # each block one product, at any thread count
        work = _work(weight_h, num_rows)
        with _blas_for(num_rows):
            if num_blocks <= 1 and work < PIECES_MIN_WORK:
                layers.forward_rows(X, *params, activation, a_h, a_out)
            elif num_blocks <= 1:  # tiles chosen by the shape: the same bits at every count
                num_pieces, num_units = epoch.tiles(X.shape[1], *a_h.shape, a_h.itemsize)
                partial = np.empty((num_pieces,) + a_h.shape, self.dtype)
                size = _team_size(min(get_num_threads(), num_pieces * num_units), work)
                team.run(epoch.forward_pieces, size, X, activation, params, partial, num_units,
                         np.zeros(SYNC_SIZE, np.int64), a_h, a_out)
            else:
                _compile_ahead.wait(self.dtype, "forward_blocks")
                size = _team_size(min(get_num_threads(), num_blocks), work)
                team.run(epoch.forward_blocks, size, X, activation, params, a_h, a_out)
        if X is not x and np.ndim(x) == 1:  # X is x: a 2-D array as the kernels take it
            return a_h[0], a_out[0]
        return a_h, a_out

    def backward(self, x, a_h, a_out, y):
        """Return the gradients ``(d_w_out, d_b_out, d_w_h, d_b_h)`` of the chapter's MSE loss."""
        weight_h, _, weight_out, _ = check_parameters(self)
        num_hidden, num_features = weight_h.shape
        X = check_features(x, num_features, self.dtype, name="x")
        if X.shape[0] == 0:
            raise ValueError("backward needs at least one example")
        a_h = check_features(a_h, num_hidden, self.dtype, name="a_h")
        a_out = check_features(a_out, self.num_classes, self.dtype, name="a_out")
        if not a_h.shape[0] == a_out.shape[0] == X.shape[0]:
            raise ValueError(f"x, a_h and a_out must have as many rows; got {X.shape[0]}, "
                             f"{a_h.shape[0]}, {a_out.shape[0]}")
        y = check_labels(y, self.num_classes, X.shape[0])
        grads = Params(np.empty_like(weight_h), np.empty(num_hidden, self.dtype),
                       np.empty_like(weight_out), np.empty(self.num_classes, self.dtype))
        args = (X, a_h, a_out, y, weight_out, check_activation(self.activation))
        work = _work(weight_h, X.shape[0])
        with _blas_for(X.shape[0]):
            if work < PIECES_MIN_WORK:  # one thread, one product
                epoch.backward_pieces(0, 1, *args, 1, 1, np.empty_like(a_out), np.empty_like(a_h),
                                      _NO_SYNC, grads)
            else:  # tiles chosen by the shape, not the thread count: the same bits at every count
                tiles = epoch.tiles(num_features, X.shape[0], num_hidden, X.itemsize)
                team.run(epoch.backward_pieces, _team_size(get_num_threads(), work), *args,
                         *tiles, np.empty_like(a_out), np.empty_like(a_h),
                         np.zeros(SYNC_SIZE, np.int64), grads)
        return grads.weight_out, grads.bias_out, grads.weight_h, grads.bias_h

    def predict(self, X):
        """The label (int) of one image, or the labels (array) of a batch.

        See :func:`fastmlp.predict.predict_labels` for the shapes accepted.
        """
        return predict_labels(self, X)

    def save(self, path):
        """Write the model to ``path`` (an ``.npz`` file; see :mod:`fastmlp.persistence`)."""
        save_model(self, path)

    @classmethod
    def load(cls, path):
        """A model saved with :meth:`save`, built without printing or drawing weights."""
        return load_model(path, cls)


class NeuralNetMLP_ReLU(NeuralNetMLP):
    """The chapter's exercise model: :class:`NeuralNetMLP` with a ReLU hidden layer."""

    def __init__(self, num_features, num_hidden, num_classes, random_seed=123,
                 dtype=np.float64):
        super().__init__(num_features, num_hidden, num_classes, random_seed, "relu", dtype)


def int_to_onehot(y, num_labels):
    """One-hot encode integer labels: a float64 array of shape (len(y), num_labels)."""
    num_labels = check_positive_int(num_labels, "num_labels")
    y = check_labels(y, num_labels)
    out = np.empty((y.shape[0], num_labels))
    onehot.onehot(y, out)
    return out


def minibatch_generator(X, y, minibatch_size):
    """Yield ``(X[batch], y[batch])`` over a shuffled order; the last incomplete batch is dropped.

    The order is the one ``np.random.shuffle`` gives the chapter's generator, drawn
    from the global ``np.random`` state by a compiled kernel.
    """
    minibatch_size = check_positive_int(minibatch_size, "minibatch_size")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} examples but y has {len(y)} labels")
    indices = permutation(len(X))
    for start_idx in range(0, indices.shape[0] - minibatch_size + 1, minibatch_size):
        batch_idx = indices[start_idx:start_idx + minibatch_size]
        yield X[batch_idx], y[batch_idx]


def mse_loss(targets, probas, num_labels=10):
    """Mean of ``(onehot(targets) - probas)**2``, without building the one-hot matrix."""
    probas = check_features(probas, check_positive_int(num_labels, "num_labels"), None,
                            name="probas")
    targets = check_labels(targets, num_labels, probas.shape[0], name="targets")
    return np.float64(loss.onehot_sse(targets, probas) / probas.size)


def compute_mse_and_acc(nnet, X, y, num_labels=10, minibatch_size=100):
    """MSE and accuracy over the minibatches the chapter's loop visits, in one compiled pass.

    Draws the same shuffle from the global ``np.random`` state as the chapter
    (which decides the dropped last rows when ``len(X)`` is not a multiple of
    ``minibatch_size``). Returns ``(mse, acc)`` as NumPy float64.
    """
    params = check_parameters(nnet)
    _check_num_labels(nnet, num_labels)
    minibatch_size = check_positive_int(minibatch_size, "minibatch_size")
    dtype = params[0].dtype.type
    X = check_features(X, params[0].shape[1], dtype)
    y = check_labels(y, nnet.num_classes, X.shape[0])
    _check_enough_rows(X, minibatch_size, "X")
    return _evaluate(Params(*params), check_activation(getattr(nnet, "activation", "sigmoid")),
                     X, y, permutation(X.shape[0]), minibatch_size)


def train(model, X_train, y_train, X_valid, y_valid, num_epochs, learning_rate=0.1,
          minibatch_size=100):
    """The chapter's training loop: SGD epochs, each followed by the evaluation it prints.

    One compiled call runs each epoch's every minibatch step; one more evaluates
    each data set (the loop is :func:`fastmlp.training.train_epochs`). After
    ``np.random.seed(s)`` it draws the chapter's shuffles and prints the
    chapter's lines. Returns ``(epoch_loss, epoch_train_acc, epoch_valid_acc)``.
    """
    num_epochs = check_positive_int(num_epochs, "num_epochs", minimum=0)
    trainer = EpochTrainer(model, X_train, y_train, learning_rate, minibatch_size)
    X_valid, y_valid = trainer.check_data(X_valid, y_valid, "X_valid", "y_valid")
    _check_enough_rows(trainer.X, 100, "X_train")  # the evaluation's minibatches of 100
    _check_enough_rows(X_valid, 100, "X_valid")
    history = train_epochs(trainer, X_valid, y_valid, num_epochs, permutation)
    return history.epoch_loss, history.epoch_train_acc, history.epoch_valid_acc


class EpochTrainer:
    """Validated training data and workspaces for repeated fused SGD epochs on one model.

    The building block of :func:`train` (and of the command line and the
    scikit-learn estimator): the data are checked and converted to the model's
    dtype once, the workspaces allocated once, and each :meth:`run` is one
    compiled call per thread of a team. The model's arrays are updated in place.

    Parameters
    ----------
    model : NeuralNetMLP
    X, y : array-like of shape (n_examples, num_features) and (n_examples,)
    learning_rate : float, default 0.1
    minibatch_size : int, default 100
    """

    def __init__(self, model, X, y, learning_rate=0.1, minibatch_size=100):
        self.model = model
        self.learning_rate = check_learning_rate(learning_rate)
        self.minibatch_size = check_positive_int(minibatch_size, "minibatch_size")
        self.activation = check_activation(model.activation)
        params = Params(*check_parameters(model))
        self.dtype = params.weight_h.dtype.type
        self.X, self.y = self.check_data(X, y, "X_train", "y_train")
        _check_enough_rows(self.X, self.minibatch_size, "X_train")
        self.num_examples = self.X.shape[0]
        self.num_steps = self.num_examples // self.minibatch_size
        self._work = epoch.train_workspace(params, self.minibatch_size)
        self.team_size = 0  # the team the last run had
        _compile_ahead.start(self.dtype)  # cold cache: the evaluation compiles meanwhile

    def check_data(self, X, y, x_name="X", y_name="y"):
        """``(X, y)`` validated against the model and converted to its dtype."""
        X = check_features(X, np.shape(self.model.weight_h)[1], self.dtype, name=x_name)
        return X, check_labels(y, self.model.num_classes, X.shape[0], name=y_name)

    def run(self, order, first_step=0, last_step=None):
        """SGD steps ``first_step:last_step`` (default: all) over minibatches of ``order``.

        ``order`` holds row indices of ``X`` (a permutation, as :func:`permutation`
        gives); step ``s`` trains on ``X[order[s*B:(s+1)*B]]``.
        """
        order = check_order(order, self.num_examples)
        last_step = order.shape[0] // self.minibatch_size if last_step is None else last_step
        first_step = check_positive_int(first_step, "first_step", minimum=0)
        last_step = check_positive_int(last_step, "last_step", minimum=0)
        if not first_step <= last_step <= order.shape[0] // self.minibatch_size:
            raise ValueError(f"steps {first_step}:{last_step} are not within the "
                             f"{order.shape[0] // self.minibatch_size} steps of this order")
        params = Params(*check_parameters(self.model))
        work = self.minibatch_size * params.weight_h.size
        tiles = self._work.partial.shape[0] * self._work.num_units
        wanted = max(1, min(get_num_threads(), tiles, work // TEAM_MIN_WORK))
        with single_threaded_blas:
            for self.team_size, start, end in team.segments(wanted, 2 * work, first_step,
                                                            last_step, _team_size):
                self._work.sync[:] = 0
                team.run(epoch.train_steps, self.team_size, self.X, self.y, order, start, end,
                         self.learning_rate, self.activation, params, self._work,
                         ONE if self.minibatch_size == 1 else None)

    def evaluate(self, X, y, minibatch_size=100):
        """The chapter's ``compute_mse_and_acc`` on ``X, y`` checked by :meth:`check_data`
        (draws its shuffle from the global ``np.random`` state)."""
        if X is not self.X or y is not self.y:  # the training data were checked once, at the start
            X, y = self.check_data(X, y)
        return _evaluate(Params(*check_parameters(self.model)), self.activation, X, y,
                         permutation(X.shape[0]), minibatch_size)


def permutation(n):
    """``np.random.shuffle(np.arange(n))``'s result, drawn by a kernel from the global
    ``np.random`` state (which advances as the chapter's shuffle advances it)."""
    n = check_positive_int(n, "n", minimum=0)
    order = np.empty(n, np.int64)
    with global_mt19937() as (key, pos):
        shuffle.permutation(key, pos, order)
    return order


def _evaluate(params, activation, X, y, order, minibatch_size):
    """The fused evaluation of the rows that ``order``'s full minibatches visit."""
    _compile_ahead.wait(X.dtype, "evaluate")
    num_used = X.shape[0] // minibatch_size * minibatch_size
    include = np.zeros(X.shape[0], np.bool_)
    include[order[:num_used]] = True
    size = _team_size(min(get_num_threads(), -(-X.shape[0] // epoch.EVAL_BLOCK)),
                      params.weight_h.size * X.shape[0])
    work = epoch.eval_workspace(params, X.shape[0], size)
    with single_threaded_blas:
        team.run(epoch.evaluate, size, X, y, include, activation, params, work)
    mse = np.float64(work.block_sse.sum() / (num_used * params.weight_out.shape[0]))
    return mse, work.block_correct.sum() / num_used


def _work(weight_h, num_rows):
    """The multiply-adds of a call's hidden-layer product, in float64 terms (float32: half)."""
    return weight_h.size * num_rows // (2 if weight_h.dtype == np.float32 else 1)


def _team_size(wanted, work):
    """The team for a call of ``work`` multiply-adds on ``wanted`` threads: :func:`fastmlp.team.size`
    for a long call, :func:`fastmlp.team.awake_size` for a shorter one (a sleeping worker
    would cost more than it gains), one thread below ``PIECES_MIN_WORK``."""
    if work >= TEAM_CALL_MIN_WORK:
        return team.size(wanted)
    return team.awake_size(wanted) if work >= PIECES_MIN_WORK else 1


def _blas_for(num_rows):
    """BLAS held at one thread for a kernel on ``num_rows`` rows; nothing for one row, whose
    products are loops (the context costs ~2 us, as much as a one-row layer)."""
    return single_threaded_blas if num_rows > 1 else _NO_CONTEXT


def _check_num_labels(nnet, num_labels):
    if num_labels != nnet.num_classes:
        raise ValueError(f"num_labels={num_labels} does not match the model's "
                         f"{nnet.num_classes} classes; pass num_labels={nnet.num_classes}")


def _check_enough_rows(X, minibatch_size, name):
    if X.shape[0] < minibatch_size:
        raise ValueError(f"{name} has {X.shape[0]} examples, fewer than one minibatch of "
                         f"{minibatch_size}: the chapter's loop would visit none")
