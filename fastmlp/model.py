"""The chapter's interface on compiled kernels.

Every public name here matches :mod:`fastmlp.reference` in name, signature and
result: the chapter's code runs unchanged on either. Each function validates
and converts its inputs (:mod:`fastmlp._validation`), then hands preallocated
arrays to a kernel in :mod:`fastmlp.kernels`.
"""
import numba
import numpy as np

from . import reference
from ._memory import aligned_copy, empty_aligned
from ._random import global_mt19937
from ._validation import (check_activation, check_dtype, check_features, check_labels,
                          check_learning_rate, check_parameters, check_positive_int)
from .kernels import dense, epoch, loss, onehot, shuffle, sync
from .persistence import load_model, save_model
from .predict import predict_labels
from .threads import threads_for
from .training import train_epochs

# The chapter's plain-NumPy helpers need no kernel: one vectorised expression each.
InitializeModel = reference.InitializeModel
sigmoid = reference.sigmoid
relu = reference.relu
accuracy = reference.accuracy

EVAL_BLOCK = 64  # rows per block in the fused evaluation; a multiple of 4 (see kernels.dense)
# Minibatches up to this size train in epoch.train_steps_by_unit (one parallel region, threads
# owning hidden units); larger ones in epoch.train_steps (rows split, two regions per step).
# Measured (2-core VM, float64, 5,500 rows, ms per epoch, 2 threads, by unit / by rows):
# hidden 50: batch 1 29 / 94, batch 10 16 / 26, batch 64 15 / 17, batch 100 18 / 15;
# hidden 1024: batch 10 271 / 506, batch 32 192 / 247. At 1 thread the two tie (within 5%)
# from batch 8 to 64 and by unit wins below (batch 1: 44 / 94).
BY_UNIT_MAX_BATCH = 64


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
        Plain NumPy arrays of ``dtype``; they may be read and assigned. fastmlp
        allocates them on a cache-line boundary (:mod:`fastmlp._memory`); an
        assigned array is used as it is, correct either way, a little slower if not aligned.
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
            setattr(self, name, aligned_copy(getattr(self, name).astype(self.dtype, copy=False)))

    def forward(self, x):
        """Return ``(a_h, a_out)`` for ``x`` of shape (n, num_features), or one example of shape (num_features,)."""
        params = check_parameters(self)
        X = check_features(x, params[0].shape[1], self.dtype, name="x", allow_1d=True)
        a_h = np.empty((X.shape[0], params[0].shape[0]), self.dtype)
        a_out = np.empty((X.shape[0], self.num_classes), self.dtype)
        with threads_for(a_h.size * X.shape[1]) as threads:
            dense.forward(X, *params, check_activation(self.activation), a_h, a_out, threads)
        if np.ndim(x) == 1:
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
        n, dtype = X.shape[0], self.dtype
        grads = (np.empty_like(weight_out), np.empty(self.num_classes, dtype),
                 np.empty_like(weight_h), np.empty(num_hidden, dtype))
        with threads_for(n * weight_h.size) as threads:
            dense.backward(X, a_h, a_out, y, weight_out, check_activation(self.activation),
                           np.empty((self.num_classes, n), dtype), np.empty((n, num_hidden), dtype),
                           np.empty((num_hidden, n), dtype), *grads, threads)
        return grads

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
    return _evaluate(params, check_activation(getattr(nnet, "activation", "sigmoid")),
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
    compiled call. The model's arrays are updated in place.

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
        params = check_parameters(model)
        self.dtype = params[0].dtype.type
        self.X, self.y = self.check_data(X, y, "X_train", "y_train")
        _check_enough_rows(self.X, self.minibatch_size, "X_train")
        self.num_examples = self.X.shape[0]
        self.num_steps = self.num_examples // self.minibatch_size
        self._by_unit = self.minibatch_size <= BY_UNIT_MAX_BATCH
        self._workspace = (_by_unit_workspace if self._by_unit else _train_workspace)(
            params, self.minibatch_size)

    def check_data(self, X, y, x_name="X", y_name="y"):
        """``(X, y)`` validated against the model and converted to its dtype."""
        X = check_features(X, np.shape(self.model.weight_h)[1], self.dtype, name=x_name)
        return X, check_labels(y, self.model.num_classes, X.shape[0], name=y_name)

    def run(self, order, first_step=0, last_step=None):
        """SGD steps ``first_step:last_step`` (default: all) over minibatches of ``order``."""
        last_step = self.num_steps if last_step is None else last_step
        params = check_parameters(self.model)
        if self._by_unit:  # one parallel region for all the steps
            work = max(0, last_step - first_step) * self.minibatch_size * params[0].size
            *xb_yb_a_h_delta_h, private, barrier_state = self._workspace
            with threads_for(work) as threads:
                team = min(threads, -(-params[0].shape[0] // 4))  # a thread per 4 hidden units at most
                epoch.train_steps_by_unit(self.X, self.y, order, first_step, last_step,
                                          self.minibatch_size, self.learning_rate, self.activation,
                                          *params, *xb_yb_a_h_delta_h, private[:team], barrier_state)
            return
        with threads_for(self.minibatch_size * params[0].size) as threads:
            epoch.train_steps(self.X, self.y, order, first_step, last_step,
                              self.minibatch_size, self.learning_rate, self.activation, *params,
                              *self._workspace, threads)

    def evaluate(self, X, y, minibatch_size=100):
        """The chapter's ``compute_mse_and_acc`` on validated ``X, y`` (draws its shuffle)."""
        return _evaluate(check_parameters(self.model), self.activation, X, y,
                         permutation(X.shape[0]), minibatch_size)


def permutation(n):
    """``np.random.shuffle(np.arange(n))``'s result, drawn by the kernel from the global state."""
    order = np.empty(n, np.int64)
    with global_mt19937() as (key, pos):
        shuffle.permutation(key, pos, order)
    return order


def _evaluate(params, activation, X, y, order, minibatch_size):
    """The fused evaluation of the rows that ``order``'s full minibatches visit."""
    num_used = X.shape[0] // minibatch_size * minibatch_size
    include = np.zeros(X.shape[0], np.bool_)
    include[order[:num_used]] = True
    dtype = params[0].dtype
    num_blocks = -(-X.shape[0] // EVAL_BLOCK)
    block_sse = np.empty(num_blocks)
    block_correct = np.empty(num_blocks, np.int64)
    with threads_for(X.size * params[0].shape[0]) as threads:
        epoch.evaluate(X, y, include, *params, activation,
                       empty_aligned((threads, EVAL_BLOCK, X.shape[1]), dtype),
                       np.empty((threads, EVAL_BLOCK, params[0].shape[0]), dtype),
                       np.empty((threads, EVAL_BLOCK, params[2].shape[0]), dtype),
                       block_sse, block_correct)
    mse = np.float64(block_sse.sum() / (num_used * params[2].shape[0]))
    return mse, block_correct.sum() / num_used


def _train_workspace(params, minibatch_size):
    """The arrays ``kernels.epoch.train_steps`` works in (see its docstring for shapes)."""
    weight_h, _, weight_out, _ = params
    (num_hidden, num_features), num_classes = weight_h.shape, weight_out.shape[0]
    b, dtype = minibatch_size, weight_h.dtype
    xb = empty_aligned((2, b, num_features), dtype)
    return (xb, np.empty((2, b), np.int64),
            np.empty((b, num_hidden), dtype), np.empty((b, num_classes), dtype),
            np.empty((num_classes, b), dtype), np.empty((b, num_hidden), dtype),
            np.empty((num_hidden, b), dtype),
            np.empty((num_classes, num_hidden), dtype), np.empty(num_classes, dtype),
            np.empty((dense.blas_pieces(num_hidden, xb[0]), num_features), dtype),
            np.empty(num_hidden, dtype))


def _by_unit_workspace(params, minibatch_size):
    """The arrays ``kernels.epoch.train_steps_by_unit`` works in, with a slice for each
    thread Numba may run (``NUMBA_NUM_THREADS``) in ``xb``, ``yb`` and ``private``."""
    weight_h, _, weight_out, _ = params
    (num_hidden, num_features), num_classes = weight_h.shape, weight_out.shape[0]
    b, dtype = minibatch_size, weight_h.dtype
    width = epoch.private_layout(num_classes, num_hidden, b, num_features, dtype.itemsize)[-1]
    t = numba.config.NUMBA_NUM_THREADS
    return (empty_aligned((t, 3, b, num_features), dtype), np.empty((t, 3, b), np.int64),
            np.empty((2, b, num_hidden), dtype), np.empty((num_hidden, b), dtype),
            empty_aligned((t, width), dtype),
            empty_aligned(sync.SYNC_SIZE, np.int64))


def _check_num_labels(nnet, num_labels):
    if num_labels != nnet.num_classes:
        raise ValueError(f"num_labels={num_labels} does not match the model's "
                         f"{nnet.num_classes} classes; pass num_labels={nnet.num_classes}")


def _check_enough_rows(X, minibatch_size, name):
    if X.shape[0] < minibatch_size:
        raise ValueError(f"{name} has {X.shape[0]} examples, fewer than one minibatch of "
                         f"{minibatch_size}: the chapter's loop would visit none")
