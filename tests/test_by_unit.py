"""Small-minibatch training by hidden unit (``kernels.epoch.train_steps_by_unit``): its
layer functions against NumPy, its synchronisation (``kernels.sync``), and its
fallback when the threads it asks for do not all start.

Tolerance: each checked value is a float64 sum of at most a few hundred products of
order 1, in another order than NumPy's: ``1e-12`` of the largest entry (K * 2**-53 ~
1e-13 at K = 900). The training runs themselves are checked against the chapter's
code in ``test_parity.py`` (batches 1, 3 and 32).
"""
import threading

import numba
import numpy as np
import pytest

import fastmlp
from fastmlp import model as fast_model
from fastmlp import reference
from fastmlp._memory import aligned_copy, empty_aligned
from fastmlp.kernels import dense, epoch
from fastmlp.kernels._config import RELU, SIGMOID
from fastmlp.kernels.sync import (ALONE, ARRIVED, GENERATION, JOINED, SYNC_SIZE, atomic_add,
                                  atomic_load, atomic_store, barrier, compare_and_swap, join_team)
from tests.conftest import quiet
from tests.test_parity import F64_RTOL, FLOAT32_RTOL

RTOL = 1e-12


def close(got, want):
    return np.max(np.abs(got - want)) <= RTOL * max(np.max(np.abs(want)), 1e-300)


@pytest.mark.parametrize("batch, num_hidden, h0, h1", [(1, 50, 0, 50), (3, 50, 24, 50), (5, 9, 4, 9),
                                                        (1, 3, 0, 3), (2, 10, 8, 10)])
def test_update_rows_and_unit_deltas_match_numpy(batch, num_hidden, h0, h1):
    rng = np.random.default_rng(batch * 100 + num_hidden)
    num_classes, num_features = 10, 37
    delta_t = rng.standard_normal((num_hidden, batch))
    x = rng.standard_normal((batch, num_features))
    weight = rng.standard_normal((num_hidden, num_features))
    expected = weight.copy()
    expected[h0:h1] -= 0.1 * (delta_t[h0:h1] @ x)
    dense.update_rows(delta_t, x, weight, np.empty((4, num_features)), 0.1, h0, h1)
    assert close(weight, expected)

    a_h = rng.random((batch, num_hidden))
    delta_out_t = rng.standard_normal((num_classes, batch))
    weight_out = rng.standard_normal((num_classes, num_hidden))
    for activation, derivative in ((SIGMOID, a_h * (1 - a_h)), (RELU, (a_h > 0.5) * 1.0)):
        if activation == RELU:
            a_h = np.where(a_h > 0.5, a_h, 0.0)
        got = np.full((num_hidden, batch), np.nan)
        dense.unit_deltas(a_h, delta_out_t, weight_out, activation, got, h0, h1)
        want = ((delta_out_t.T @ weight_out) * derivative).T
        assert close(got[h0:h1], want[h0:h1])
        assert np.isnan(got[:h0]).all() and np.isnan(got[h1:]).all()  # other threads' rows untouched


@pytest.mark.parametrize("activation", [SIGMOID, RELU])
@pytest.mark.parametrize("num_hidden, h0, h1", [(50, 0, 50), (50, 24, 50), (7, 4, 7), (3, 0, 3)])
def test_update_forward_one_is_update_then_forward(activation, num_hidden, h0, h1):
    rng = np.random.default_rng(num_hidden + h0)
    num_features = 784
    delta_t = rng.standard_normal((num_hidden, 1)) * 0.1
    x, x_next = (aligned_copy(rng.random((1, num_features))) for _ in range(2))
    weight = aligned_copy(rng.standard_normal((num_hidden, num_features)) * 0.05)
    bias = rng.standard_normal(num_hidden) * 0.1
    expected_w = weight.copy()
    expected_w[h0:h1] -= 0.1 * (delta_t[h0:h1] @ x)
    z = x_next @ expected_w.T + bias
    expected_a = np.maximum(z, 0) if activation == RELU else 1 / (1 + np.exp(-z))
    a_next = np.full((1, num_hidden), np.nan)
    dense.update_forward_one(delta_t, x, x_next, weight, bias, activation, a_next, 0.1, h0, h1)
    assert close(weight, expected_w)
    assert close(a_next[:, h0:h1], expected_a[:, h0:h1])
    assert np.isnan(a_next[:, :h0]).all() and np.isnan(a_next[:, h1:]).all()


@numba.njit
def _atomics(sync):
    before = atomic_add(sync, 3, 5)
    atomic_store(sync, 4, 7)
    swapped = compare_and_swap(sync, 4, 7, 9)
    not_swapped = compare_and_swap(sync, 4, 7, 11)
    return before, atomic_load(sync, 3), swapped, not_swapped, atomic_load(sync, 4)


def test_atomics():
    sync = np.zeros(8, np.int64)
    sync[3] = 2
    assert _atomics(sync) == (2, 7, True, False, 9)


@numba.njit(nogil=True)
def _count_between_barriers(sync, counts, seen, slot, team):
    """Thread ``slot`` adds 1 to counts[0], meets the others, records what it sees, meets again."""
    generation = 0
    for r in range(seen.shape[1]):
        atomic_add(counts, 0, 1)
        generation = barrier(sync, generation, team)
        seen[slot, r] = atomic_load(counts, 0)
        generation = barrier(sync, generation, team)


def test_barrier_holds_every_thread_until_all_arrive():
    """Two threads started here (the kernel releases the GIL), whatever Numba's thread count."""
    team, rounds = 2, 2000
    sync, counts = np.zeros(SYNC_SIZE, np.int64), np.zeros(8, np.int64)
    seen = np.zeros((team, rounds), np.int64)
    _count_between_barriers(sync, counts, seen[:, :1].copy(), 0, 1)  # compile first
    counts[:] = 0
    threads = [threading.Thread(target=_count_between_barriers, args=(sync, counts, seen, slot, team))
               for slot in range(team)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    expected = team * np.arange(1, rounds + 1)
    np.testing.assert_array_equal(seen, np.broadcast_to(expected, seen.shape))


@numba.njit(parallel=True)
def _join(sync, team, out):
    sync[:] = 0
    for t in numba.prange(team):
        slot, size = join_team(sync, team)
        out[t, 0] = slot
        out[t, 1] = size


def test_join_team_runs_alone_when_the_others_do_not_start():
    """One Numba thread runs a region's iterations one after the other: the first waits
    for the second in vain, then runs alone; the second finds that out and leaves."""
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        sync = np.zeros(SYNC_SIZE, np.int64)
        out = np.zeros((2, 2), np.int64)
        _join(sync, 2, out)
    finally:
        numba.set_num_threads(previous)
    assert out[0].tolist() == [0, 1]  # slot 0, alone
    assert out[1, 1] == 0  # leaves (its slot is meaningless)
    assert sync[JOINED] >= ALONE and sync[ARRIVED] == 0 and sync[GENERATION] == 0


def _trained(team, batch, num_hidden, data):
    """An epoch by one call of the kernel on one Numba thread, asking for a team of ``team``."""
    X, y = data
    model = quiet(fastmlp.NeuralNetMLP, X.shape[1], num_hidden, 10, random_seed=5)
    trainer = fast_model.EpochTrainer(model, X, y, 0.1, batch)
    assert trainer._by_unit
    xb, yb, a_h, delta_h_t, private, sync = trainer._workspace
    # rows for the team asked for, however many threads Numba may run here
    xb, yb = empty_aligned((team,) + xb.shape[1:], xb.dtype), np.empty((team,) + yb.shape[1:], yb.dtype)
    private = empty_aligned((team, private.shape[1]), private.dtype)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        epoch.train_steps_by_unit(trainer.X, trainer.y, np.arange(X.shape[0])[::-1].copy(), 0,
                                  trainer.num_steps, batch, 0.1, trainer.activation,
                                  *fast_model.check_parameters(model), xb, yb, a_h, delta_h_t,
                                  private, sync)
    finally:
        numba.set_num_threads(previous)
    return [model.weight_h, model.bias_h, model.weight_out, model.bias_out]


@pytest.mark.parametrize("batch, num_hidden", [(1, 50), (3, 22), (10, 50)])
def test_a_team_that_cannot_start_gives_the_one_thread_result(batch, num_hidden):
    """On one Numba thread, the region's two iterations run one after the other: the first
    waits for the second in vain, then trains alone, to the bits of a team of one."""
    rng = np.random.default_rng(0)
    data = rng.random((60, 784)), rng.integers(0, 10, 60)
    alone = _trained(1, batch, num_hidden, data)
    asked_for_two = _trained(2, batch, num_hidden, data)
    for got, want in zip(asked_for_two, alone):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3, 10, 100])  # by hidden unit (<= 64), by rows (100)
def test_one_step_is_the_chapters_update(dtype, batch):
    """One step of EpochTrainer against the chapter's backward pass on the same minibatch.

    The update ``-lr * grad`` is compared with the tolerances of test_parity.py, plus,
    in float32, the rounding of the stored weights before and after (2 eps * max|w|).
    """
    rng = np.random.default_rng(batch)
    X = rng.uniform(-1, 1, (2 * batch, 784)).astype(dtype)
    y = rng.integers(0, 10, 2 * batch)
    fast = quiet(fastmlp.NeuralNetMLP, 784, 50, 10, random_seed=3, dtype=dtype)
    ref = quiet(reference.NeuralNetMLP, 784, 50, 10, random_seed=3)
    names = ("weight_h", "bias_h", "weight_out", "bias_out")
    for name in names:
        setattr(ref, name, getattr(fast, name).astype(np.float64))
    before = [getattr(fast, name).astype(np.float64) for name in names]
    order = np.arange(2 * batch)[::-1].copy()
    fast_model.EpochTrainer(fast, X, y, 0.1, batch).run(order, 0, 1)
    rows = order[:batch]
    X64 = X.astype(np.float64)
    a_h, a_out = ref.forward(X64[rows])
    d_w_out, d_b_out, d_w_h, d_b_h = ref.backward(X64[rows], a_h, a_out, y[rows])
    rtol = F64_RTOL if dtype == np.float64 else FLOAT32_RTOL
    for name, start, grad in zip(names, before, (d_w_h, d_b_h, d_w_out, d_b_out)):
        after = getattr(fast, name)
        assert after.dtype == dtype
        expected = -0.1 * grad
        slack = 0.0 if dtype == np.float64 else 2 * np.finfo(dtype).eps * np.max(np.abs(start))
        error = np.max(np.abs((after.astype(np.float64) - start) - expected))
        assert error <= rtol * np.max(np.abs(expected)) + slack, name
