"""The one epoch loop (fastmlp.training): the chapter's lines and draws, in pieces or whole."""
import contextlib
import io

import numpy as np
import pytest

import fastmlp
from fastmlp import model, reference, training
from tests.conftest import quiet

pytestmark = pytest.mark.usefixtures("one_kernel_thread")  # small data: see conftest


def test_reference_trainer_through_the_loop_is_the_chapters_train(small_data):
    X_train, y_train, X_valid, y_valid = small_data
    chapter = quiet(reference.NeuralNetMLP, 784, 20, 10)
    np.random.seed(5)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        expected = reference.train(chapter, X_train, y_train, X_valid, y_valid, 3, 0.1, 50)
    ours = quiet(reference.NeuralNetMLP, 784, 20, 10)
    np.random.seed(5)
    shown = []
    history = training.train_epochs(training.ReferenceTrainer(ours, X_train, y_train, 0.1, 50),
                                    X_valid, y_valid, 3, training.reference_permutation,
                                    show=shown.append)
    assert shown == history.lines == out.getvalue().splitlines()[-3:]
    assert (history.epoch_loss, history.epoch_train_acc, history.epoch_valid_acc) == expected
    for name in ("weight_h", "bias_h", "weight_out", "bias_out"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(chapter, name))


@pytest.mark.parametrize("batch", [1, 3, 100])
def test_pieces_of_one_step_give_the_bits_of_whole_epochs(small_data, batch):
    X_train, y_train, X_valid, y_valid = small_data
    X_train, y_train = X_train[:600], y_train[:600]
    results = []
    for piece_seconds in (None, 0.0):  # whole epochs; one step per compiled call
        net = quiet(fastmlp.NeuralNetMLP, 784, 20, 10)
        trainer = model.EpochTrainer(net, X_train, y_train, 0.1, batch)
        np.random.seed(3)
        history = training.train_epochs(trainer, *trainer.check_data(X_valid, y_valid), 2,
                                        model.permutation, show=None,
                                        piece_seconds=piece_seconds)
        results.append((history.lines, [net.weight_h.copy(), net.weight_out.copy()]))
    (whole_lines, whole), (piece_lines, pieces) = results
    assert piece_lines == whole_lines
    for a, b in zip(whole, pieces):
        np.testing.assert_array_equal(a, b)


def test_a_stop_between_pieces_keeps_the_completed_epochs(small_data):
    X_train, y_train, X_valid, y_valid = small_data
    net = quiet(fastmlp.NeuralNetMLP, 784, 20, 10)
    trainer = model.EpochTrainer(net, X_train, y_train, 0.1, 100)
    checks = iter(range(100))
    # a check before each of the 18 one-step pieces and one after each epoch: stop at the 25th
    history = training.train_epochs(trainer, *trainer.check_data(X_valid, y_valid), 3,
                                    model.permutation, show=None, piece_seconds=0.0,
                                    stop=lambda: next(checks) >= 24)
    assert history.interrupted == "during epoch 2 (5/18 steps)"
    assert len(history.lines) == len(history.epoch_loss) == 1
    assert history.train_seconds > 0 and history.eval_seconds > 0


@pytest.mark.parametrize("batch", [1, 3, 100])
def test_runs_of_odd_steps_and_segments_give_the_bits_of_one_run(small_data, monkeypatch, batch):
    """``EpochTrainer.run`` over steps ``0:3``, ``3:8``, ``8:`` (and, inside one call, team
    calls of 3 steps each: ``SEGMENT_WORK``, ``FULL_TEAM_SEGMENT_WORK``) trains to the bits
    of one whole run."""
    X_train, y_train = small_data[0][:900], small_data[1][:900]
    order = np.random.default_rng(7).permutation(900)
    results = []
    for cuts, segment_steps in (((0, None), None), ((0, 3, 8, None), None), ((0, None), 3)):
        if segment_steps is not None:
            work = batch * 784 * 20
            monkeypatch.setattr(model.team, "SEGMENT_WORK", 2 * work * segment_steps)
            monkeypatch.setattr(model.team, "FULL_TEAM_SEGMENT_WORK", 2 * work * segment_steps)
        net = quiet(fastmlp.NeuralNetMLP, 784, 20, 10)
        trainer = model.EpochTrainer(net, X_train, y_train, 0.1, batch)
        for first, last in zip(cuts[:-1], cuts[1:]):
            trainer.run(order, first, last)
        results.append([net.weight_h.copy(), net.bias_h.copy(), net.weight_out.copy()])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_a_full_team_runs_long_segments_and_a_smaller_one_short_ones(small_data, monkeypatch):
    """While ``team.size`` gives fewer threads than asked for, each team call runs
    ``SEGMENT_WORK``'s steps (the team is chosen again soon); with all of them,
    ``FULL_TEAM_SEGMENT_WORK``'s."""
    X_train, y_train = small_data[0][:1800], small_data[1][:1800]
    work = 100 * 784 * 20  # multiply-adds of a step
    monkeypatch.setattr(model.team, "SEGMENT_WORK", 2 * work * 3)
    monkeypatch.setattr(model.team, "FULL_TEAM_SEGMENT_WORK", 2 * work * 7)
    monkeypatch.setattr(model, "TEAM_MIN_WORK", 1)
    monkeypatch.setattr(model, "TEAM_CALL_MIN_WORK", 0)
    monkeypatch.setattr(model, "get_num_threads", lambda: 2)
    sizes = iter([1, 1, 2, 2])
    monkeypatch.setattr(model.team, "size", lambda wanted: next(sizes))
    calls, run = [], model.team.run
    monkeypatch.setattr(model.team, "run", lambda kernel, size, *args: (
        calls.append((args[3], args[4], size)), run(kernel, size, *args)))
    net = quiet(fastmlp.NeuralNetMLP, 784, 20, 10)
    model.EpochTrainer(net, X_train, y_train, 0.1, 100).run(np.arange(1800))
    assert calls == [(0, 3, 1), (3, 6, 1), (6, 13, 2), (13, 18, 2)]
