"""The workloads: a case's inputs and workspaces allocated, ready to time."""
import collections
import contextlib
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import model, reference, training
from ..kernels import onehot
from .cases import (LEARNING_RATE, NUM_CLASSES, NUM_FEATURES, PEERS, Case, dataset,
                    validation_rows)
from .peers import PEER_WORKLOADS



@dataclass(frozen=True)
class Workload:
    """A case ready to time: ``run()`` does the work once; inputs and workspaces are allocated."""

    run: Callable[[], object]
    case: Case


def _model(case):
    """The case's model (the chapter's seed), with the chapter's "Model initialization" silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        if case.impl == "reference":
            return reference.NeuralNetMLP(NUM_FEATURES, case.hidden, NUM_CLASSES)
        return model.NeuralNetMLP(NUM_FEATURES, case.hidden, NUM_CLASSES,
                                  dtype=np.dtype(case.dtype).type)


def _draw_minibatches(minibatch_generator, X, y, minibatch_size):
    """Draw one epoch's minibatches (the shuffle, then the gathers), discarding them."""
    collections.deque(minibatch_generator(X, y, minibatch_size), maxlen=0)


def _reference_epoch(net, X, y, X_valid, y_valid, minibatch_size):
    """One epoch of the chapter's ``train`` (its steps, then both evaluations), not printing."""
    with contextlib.redirect_stdout(io.StringIO()):
        reference.train(net, X, y, X_valid, y_valid, 1, LEARNING_RATE, minibatch_size)


def _onehot_workload(case, dtype):
    _, y = dataset(case.batch, dtype, 0)
    if case.impl == "reference":
        return functools.partial(reference.int_to_onehot, y, NUM_CLASSES)
    return functools.partial(onehot.onehot, y, np.empty((case.batch, NUM_CLASSES), dtype))


def _shuffle_workload(case, dtype):
    X, y = dataset(case.rows, dtype, 0)
    generator = (reference if case.impl == "reference" else model).minibatch_generator
    return functools.partial(_draw_minibatches, generator, X, y, case.batch)


def _forward_workload(case, dtype):
    X, _ = dataset(case.batch, dtype, 0)
    return functools.partial(_model(case).forward, X)


def _backward_workload(case, dtype):
    X, y = dataset(case.batch, dtype, 0)
    net = _model(case)
    return functools.partial(net.backward, X, *net.forward(X), y)


def _step_workload(case, dtype):
    X, y = dataset(case.batch, dtype, 0)
    net = _model(case)
    if case.impl == "reference":
        return functools.partial(training.reference_step, net, X, y, LEARNING_RATE)
    trainer = model.EpochTrainer(net, X, y, LEARNING_RATE, case.batch)
    return functools.partial(trainer.run, np.arange(case.batch))


def _evaluate_workload(case, dtype):
    X, y = dataset(case.rows, dtype, 0)
    function = (reference if case.impl == "reference" else model).compute_mse_and_acc
    return functools.partial(function, _model(case), X, y)


def _epoch_workload(case, dtype):
    X, y = dataset(case.rows, dtype, 0)
    X_valid, y_valid = dataset(validation_rows(case.rows), dtype, 1)
    net = _model(case)
    if case.impl == "reference":
        return functools.partial(_reference_epoch, net, X, y, X_valid, y_valid, case.batch)
    trainer = model.EpochTrainer(net, X, y, LEARNING_RATE, case.batch)
    # one epoch as fastmlp.train runs it, without its print
    return functools.partial(training.train_epochs, trainer,
                             *trainer.check_data(X_valid, y_valid), 1, model.permutation,
                             show=None)


_WORKLOADS = {"onehot": _onehot_workload, "shuffle": _shuffle_workload,
              "forward": _forward_workload, "backward": _backward_workload,
              "step": _step_workload, "evaluate": _evaluate_workload, "epoch": _epoch_workload}


def build_workload(case):
    """Allocate the inputs and workspaces of ``case``; call inside :func:`~.timing.thread_limit`.

    Both implementations run through the same interface: the model's
    ``forward`` and ``backward``, ``compute_mse_and_acc``, ``minibatch_generator``
    (the shuffle training draws, then an epoch's gathers), one epoch of
    ``train`` (fastmlp's through :func:`fastmlp.training.train_epochs`, as
    :func:`fastmlp.train` runs it); fastmlp's SGD step is one compiled step of
    :class:`~fastmlp.model.EpochTrainer` (the reference's,
    :func:`fastmlp.training.reference_step`, the chapter's loop body).
    fastmlp's one-hot encoding runs its kernel on a preallocated array.
    """
    if case.impl in PEERS:
        return Workload(PEER_WORKLOADS[case.impl](case, np.dtype(case.dtype)), case)
    return Workload(_WORKLOADS[case.kernel](case, np.dtype(case.dtype)), case)
