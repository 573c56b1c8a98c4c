"""The chapter's epoch loop, written once: steps, per-epoch evaluation, the chapter's line.

:func:`train_epochs` runs it over any object with the interface of
:class:`fastmlp.model.EpochTrainer` (``run(order, first_step, last_step)``,
``evaluate(X, y)``, ``num_steps``, ``num_examples``, ``X``, ``y``):
:func:`fastmlp.train`, the command line (both backends), and the benchmarks
all train through it. :class:`ReferenceTrainer` is that interface over the
chapter's pure-NumPy step, so the reference runs through the same loop.
:func:`fastmlp.reference.train` stays the chapter's own code.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from . import reference


def epoch_line(epoch, num_epochs, train_mse, train_acc, valid_acc, loss_name="MSE"):
    """The chapter's per-epoch line; `epoch` counts from 1, accuracies are in %.

    `loss_name` names the training loss (``Train MSE: ...``, the chapter's).
    """
    return (f'Epoch: {epoch:03d}/{num_epochs:03d} '
            f'| Train {loss_name}: {train_mse:.4f} '
            f'| Train Acc: {train_acc:.2f}% '
            f'| Valid Acc: {valid_acc:.2f}%')


class NoProgress:
    """The progress interface of :func:`train_epochs`, doing nothing.

    ``begin(label)`` at the start of each epoch, ``update(done, total)`` after
    each compiled piece of steps, ``clear()`` at the end of each epoch (before
    its line is shown).
    """

    def begin(self, label):
        """Start an epoch called `label`."""

    def update(self, done, total):
        """`done` of the epoch's `total` steps have run."""

    def clear(self):
        """The epoch's steps are over."""


@dataclass
class History:
    """What :func:`train_epochs` returns: per-epoch values, printed lines, where it stopped.

    ``train_seconds`` is the time spent in the SGD steps (and the shuffles),
    ``eval_seconds`` in the two evaluations per epoch.
    """

    epoch_loss: list = field(default_factory=list)
    epoch_train_acc: list = field(default_factory=list)  # in %
    epoch_valid_acc: list = field(default_factory=list)  # in %
    lines: list = field(default_factory=list)  # the chapter's epoch lines
    interrupted: str = None  # e.g. "during epoch 3 (12/550 steps)", None if it ran to the end
    train_seconds: float = 0.0
    eval_seconds: float = 0.0


def train_epochs(trainer, X_valid, y_valid, num_epochs, permutation, *, show=print,
                 loss_name="MSE", piece_seconds=None, progress=None, stop=None):
    """The chapter's loop: per epoch, SGD over a fresh shuffle, then evaluate train and valid.

    The random draws are the chapter's: per epoch the training order
    (``permutation(trainer.num_examples)``), then one shuffle inside each of
    the two evaluations. Accuracies are kept in % as the chapter keeps them.

    Parameters
    ----------
    trainer : fastmlp.model.EpochTrainer or ReferenceTrainer
        Holds the model and the (validated) training data.
    X_valid, y_valid : numpy.ndarray
        Validation data, already checked (``trainer.check_data``).
    num_epochs : int
    permutation : callable
        ``n -> order``: the epoch's training order, drawn from ``np.random``
        (:func:`fastmlp.model.permutation`, or :func:`reference_permutation`).
    show : callable or None, default print
        Receives each epoch line; None shows nothing.
    loss_name : str, default "MSE"
        The loss ``trainer.evaluate`` returns, as the epoch lines name it.
    piece_seconds : float, optional
        Run each epoch in compiled pieces of about this many seconds (the
        first piece is one step; each next one at most ten times longer),
        checking `stop` and updating `progress` between them. None: each
        epoch in one ``trainer.run`` call.
    progress : NoProgress-like, optional
        See :class:`NoProgress`.
    stop : callable, optional
        ``() -> bool``; when true between pieces or epochs, training stops
        with the epochs completed so far (``History.interrupted`` says where).

    Returns
    -------
    History
    """
    progress = progress or NoProgress()
    stop = stop or (lambda: False)
    history = History()
    piece = 1
    for e in range(num_epochs):
        tic = time.perf_counter()
        progress.begin(f"Epoch {e+1:03d}/{num_epochs:03d}")
        order = permutation(trainer.num_examples)
        if piece_seconds is None:
            trainer.run(order)
            step = trainer.num_steps
        else:
            step, piece = _run_in_pieces(trainer, order, piece, piece_seconds, progress, stop)
        progress.clear()
        toc = time.perf_counter()
        history.train_seconds += toc - tic
        if step < trainer.num_steps:
            history.interrupted = f"during epoch {e+1} ({step}/{trainer.num_steps} steps)"
            break
        train_mse, train_acc = trainer.evaluate(trainer.X, trainer.y)
        valid_mse, valid_acc = trainer.evaluate(X_valid, y_valid)
        history.eval_seconds += time.perf_counter() - toc
        train_acc, valid_acc = train_acc*100, valid_acc*100
        history.epoch_loss.append(train_mse)
        history.epoch_train_acc.append(train_acc)
        history.epoch_valid_acc.append(valid_acc)
        history.lines.append(epoch_line(e + 1, num_epochs, train_mse, train_acc, valid_acc,
                                        loss_name))
        if show is not None:
            show(history.lines[-1])
        if stop() and e + 1 < num_epochs:
            history.interrupted = f"after epoch {e+1}"
            break
    return history


def _run_in_pieces(trainer, order, piece, piece_seconds, progress, stop):
    """One epoch's steps in pieces of about `piece_seconds`; returns ``(steps done, piece)``."""
    step = 0
    while step < trainer.num_steps and not stop():
        end = min(step + piece, trainer.num_steps)
        tic = time.perf_counter()
        trainer.run(order, step, end)
        # next piece: about piece_seconds long, growing at most tenfold
        seconds_per_step = max(time.perf_counter() - tic, 1e-9) / (end - step)
        piece = max(1, min(10 * piece, int(piece_seconds / seconds_per_step)))
        step = end
        progress.update(step, trainer.num_steps)
    return step, piece


def reference_step(model, X_mini, y_mini, learning_rate):
    """One SGD step of the chapter's loop body, on a :class:`fastmlp.reference.NeuralNetMLP`."""
    a_h, a_out = model.forward(X_mini)
    d_loss__d_w_out, d_loss__d_b_out, d_loss__d_w_h, d_loss__d_b_h = \
        model.backward(X_mini, a_h, a_out, y_mini)
    model.weight_h -= learning_rate * d_loss__d_w_h
    model.bias_h -= learning_rate * d_loss__d_b_h
    model.weight_out -= learning_rate * d_loss__d_w_out
    model.bias_out -= learning_rate * d_loss__d_b_out


def reference_permutation(n):
    """The chapter's ``np.random.shuffle`` of ``np.arange(n)``."""
    indices = np.arange(n)
    np.random.shuffle(indices)
    return indices


class ReferenceTrainer:
    """:class:`fastmlp.model.EpochTrainer`'s interface over the chapter's pure-NumPy step.

    :meth:`run` does what one pass of :func:`fastmlp.reference.train`'s
    minibatch loop does, for the steps asked for; :meth:`evaluate` is the
    reference's ``compute_mse_and_acc``. The numbers are the reference's, bit
    for bit.

    Parameters
    ----------
    model : fastmlp.reference.NeuralNetMLP
    X, y : numpy.ndarray of shape (n_examples, num_features) and (n_examples,)
    learning_rate : float
    minibatch_size : int
    """

    def __init__(self, model, X, y, learning_rate, minibatch_size):
        if len(X) < minibatch_size:
            raise ValueError(f"X_train has {len(X)} examples, fewer than one minibatch of "
                             f"{minibatch_size}: the chapter's loop would visit none")
        self.model, self.X, self.y = model, X, y
        self.learning_rate, self.minibatch_size = learning_rate, minibatch_size
        self.num_examples = len(X)
        self.num_steps = self.num_examples // minibatch_size

    def check_data(self, X, y, x_name="X", y_name="y"):
        """``(X, y)`` unchanged: the reference takes its data as they are."""
        return X, y

    def run(self, order, first_step=0, last_step=None):
        """SGD steps ``first_step:last_step`` (default: all) over minibatches of ``order``."""
        b = self.minibatch_size
        for step in range(first_step, self.num_steps if last_step is None else last_step):
            batch_idx = order[step * b:(step + 1) * b]
            reference_step(self.model, self.X[batch_idx], self.y[batch_idx],  # [B, F], [B]
                           self.learning_rate)

    def evaluate(self, X, y):
        """The reference's ``compute_mse_and_acc`` (draws its shuffle)."""
        return reference.compute_mse_and_acc(self.model, X, y, self.model.num_classes)
