"""The kernels' parts against naive NumPy twins: BLAS on strided pieces, the layer units,
the partition helper, the barrier and the thread team; and one training step against the
chapter's backward pass.

Tolerance of the float64 pieces: each checked value is a sum of at most a few hundred
products of order 1 in another order than NumPy's, ``1e-12`` of the largest entry
(K * 2**-53 ~ 1e-13 at K = 900). float32 ``1e-5`` (K * 2**-24 ~ 2e-5 at K = 300 is the
worst case; random terms cancel well below it). The training runs themselves are checked
against the chapter's code in ``test_parity.py``.
"""
import ctypes
import os
import threading
import time

import numba
import numpy as np
import pytest

import fastmlp
from fastmlp import model as fast_model
from fastmlp import reference, team
from fastmlp.kernels import blas, epoch, layers, sync
from fastmlp.kernels._config import ONE, RELU, SIGMOID
from fastmlp.kernels.blas import gemm_nt, gemm_tn
from fastmlp.kernels.sync import SYNC_SIZE, atomic_add, atomic_load, barrier
from tests.conftest import quiet
from tests.test_parity import F64_RTOL, FLOAT32_RTOL

RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def close(got, want, dtype=np.float64):
    want = np.asarray(want, np.float64)
    return np.max(np.abs(got - want)) <= RTOL[dtype] * max(np.max(np.abs(want)), 1e-300)


# Internal kernels have no Python wrapper (kernels._config): the tests call them from these.
@numba.njit
def _gemm_pieces(a, b, c, alpha, beta, f0, f1, transposed):
    if transposed:
        gemm_tn(a, b[:, f0:f1], c[:, f0:f1], alpha, beta)
    else:
        gemm_nt(a[:, f0:f1], b[:, f0:f1], c, alpha, beta)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, k, n, f0, f1", [(1, 9, 1, 0, 9), (7, 37, 5, 3, 20), (100, 784, 50, 192, 384),
                                             (3, 16, 2, 16, 16), (33, 300, 4, 0, 300)])
def test_gemm_on_column_pieces_is_numpy(dtype, m, k, n, f0, f1):
    rng = np.random.default_rng(m * 1000 + k)
    a, b, c = (rng.standard_normal(shape).astype(dtype) for shape in ((m, k), (n, k), (m, n)))
    expected = 0.5 * c - 0.1 * (a[:, f0:f1].astype(np.float64) @ b[:, f0:f1].T)
    _gemm_pieces(a, b, c, dtype(-0.1), dtype(0.5), f0, f1, False)
    assert close(c, expected, dtype)
    # the update form: w[:, f0:f1] = alpha * d.T @ x[:, f0:f1] + beta * w[:, f0:f1], rest untouched
    d, x, w = (rng.standard_normal(shape).astype(dtype) for shape in ((m, n), (m, k), (n, k)))
    expected = w.astype(np.float64)
    expected[:, f0:f1] += -0.1 * (d.astype(np.float64).T @ x[:, f0:f1])
    _gemm_pieces(d, x, w, dtype(-0.1), dtype(1), f0, f1, True)
    assert close(w, expected, dtype)


@numba.njit
def _layer_units(x, w_h, b_h, w_out, b_out, activation, y, pieces, f_align):
    batch, num_hidden, num_classes = x.shape[0], w_h.shape[0], w_out.shape[0]
    partial = np.empty((pieces, batch, num_hidden))
    for p in range(pieces):
        f0, f1 = layers.chunk(x.shape[1], pieces, p, f_align)
        layers.hidden_partial(x, w_h, partial[p], f0, f1, ONE)
    a_h, a_out = np.empty((batch, num_hidden)), np.empty((batch, num_classes))
    for n0 in range(batch):  # row by row: any split of the rows gives the same values
        layers.hidden_rows(partial, b_h, activation, a_h, n0, n0 + 1)
        layers.output_rows(a_h, w_out, b_out, a_out, n0, n0 + 1)
    delta_out, delta_h = np.empty((batch, num_classes)), np.empty((batch, num_hidden))
    layers.delta_rows(a_h, a_out, y, w_out, activation, delta_out, delta_h, 0, batch)
    d_w_h, d_b_h = np.empty_like(w_h), np.empty_like(b_h)
    layers.add_gradient(delta_h, x, d_w_h, 1.0, 0.0, 0, x.shape[1], ONE)
    layers.add_bias_gradient(delta_h, d_b_h, 1.0, 0.0, d_b_h)
    return a_h, a_out, delta_out, delta_h, d_w_h, d_b_h


@pytest.mark.parametrize("activation", [SIGMOID, RELU])
@pytest.mark.parametrize("batch, features, hidden, pieces", [(1, 784, 50, 4), (7, 37, 5, 3), (100, 64, 13, 1)])
def test_layer_units_are_the_chapters_formulas(activation, batch, features, hidden, pieces):
    rng = np.random.default_rng(batch + features)
    x = rng.uniform(-1, 1, (batch, features))
    w_h, b_h = rng.normal(0, 0.1, (hidden, features)), rng.normal(0, 0.5, hidden)
    w_out, b_out = rng.normal(0, 0.3, (10, hidden)), rng.normal(0, 0.5, 10)
    y = rng.integers(0, 10, batch)
    got = _layer_units(x, w_h, b_h, w_out, b_out, activation, y, pieces, 16)
    z_h = x @ w_h.T + b_h  # the naive twin, the chapter's NumPy
    a_h = np.maximum(0, z_h) if activation == RELU else 1 / (1 + np.exp(-z_h))
    a_out = 1 / (1 + np.exp(-(a_h @ w_out.T + b_out)))
    onehot = np.eye(10)[y]
    delta_out = 2 * (a_out - onehot) / batch * a_out * (1 - a_out)
    derivative = (a_h > 0) if activation == RELU else a_h * (1 - a_h)
    delta_h = (delta_out @ w_out) * derivative
    for name, value, want in zip(("a_h", "a_out", "delta_out", "delta_h", "d_w_h", "d_b_h"), got,
                                 (a_h, a_out, delta_out, delta_h, delta_h.T @ x, delta_h.sum(0))):
        assert close(value, want), name


@numba.njit
def _parts(n, parts, align):
    out = np.empty((parts, 2), np.int64)
    for i in range(parts):
        out[i] = layers.chunk(n, parts, i, align)
    return out


@pytest.mark.parametrize("n, parts, align", [(784, 4, 16), (50, 3, 1), (1, 2, 1), (10, 8, 4), (0, 3, 1)])
def test_chunk_cuts_the_range_into_adjacent_aligned_parts(n, parts, align):
    bounds = _parts(n, parts, align)
    assert bounds[0, 0] == 0 and bounds[-1, 1] == n
    assert np.all(bounds[1:, 0] == bounds[:-1, 1]) and np.all(bounds[:, 1] >= bounds[:, 0])
    assert np.all((bounds[:, 0] % align == 0) | (bounds[:, 0] == n))
    sizes = -(-(bounds[:, 1] - bounds[:, 0]) // align)  # tiles per part
    assert sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize("batch, hidden, itemsize, want",
                         [(100, 50, 8, (4, 1)), (1, 1024, 8, (4, 1)), (1000, 50, 8, (2, 2)),
                          (1000, 50, 4, (4, 1)), (100, 1024, 8, (1, 4)), (1000, 1024, 4, (1, 4))])
def test_tiles_trade_pieces_for_unit_blocks_as_the_partial_sums_outgrow_the_budget(
        batch, hidden, itemsize, want):
    pieces, units = epoch.tiles(784, batch, hidden, itemsize)
    assert (pieces, units) == want
    assert pieces * units == epoch.feature_pieces(784)
    assert pieces == 1 or pieces * batch * hidden * itemsize <= epoch.PARTIAL_BUDGET


@numba.njit(nogil=True)
def _count_between_barriers(slot, size, sync, counts, seen):
    """Thread ``slot`` adds 1 to counts[0], meets the others, records what it sees, meets again."""
    generation = 0
    for r in range(seen.shape[1]):
        atomic_add(counts, 0, 1)
        generation = barrier(sync, generation, size)
        seen[slot, r] = atomic_load(counts, 0)
        generation = barrier(sync, generation, size)


@pytest.mark.parametrize("size", [2, 3])
def test_team_barrier_holds_every_thread_until_all_arrive(size):
    rounds = 2000
    sync, counts = np.zeros(SYNC_SIZE, np.int64), np.zeros(8, np.int64)
    seen = np.zeros((size, rounds), np.int64)
    team.run(_count_between_barriers, size, sync, counts, seen)
    expected = size * np.arange(1, rounds + 1)
    np.testing.assert_array_equal(seen, np.broadcast_to(expected, seen.shape))


def _record(slot, size, out):
    out.append((slot, size, threading.get_ident()))


def test_team_runs_every_slot_once_on_its_own_thread():
    out = []
    team.run(_record, 3, out)
    assert sorted((slot, size) for slot, size, _ in out) == [(0, 3), (1, 3), (2, 3)]
    assert len({ident for *_, ident in out}) == 3
    assert [ident for slot, _, ident in out if slot == 0] == [threading.get_ident()]


def _fail_in(slot, size, bad_slot):
    if slot == bad_slot:
        raise RuntimeError(f"slot {slot} failed")


@pytest.mark.parametrize("bad_slot", [0, 1])
def test_team_raises_what_a_member_raised(bad_slot):
    with pytest.raises(RuntimeError, match=f"slot {bad_slot} failed"):
        team.run(_fail_in, 2, bad_slot)
    out = []
    team.run(_record, 2, out)  # the team still works after
    assert len(out) == 2


def test_team_size_survives_threads_that_end_while_it_counts():
    """``team.size`` reads every thread's state from /proc; a thread that ends between the
    open and the read (as the helper's reaper does, fastmlp._compile_ahead) is skipped, not
    an error (ESRCH). Threads start and end here while it counts, thousands of times."""
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            short = threading.Thread(target=time.sleep, args=(0,))
            short.start()
            short.join()

    churners = [threading.Thread(target=churn) for _ in range(2)]
    for thread in churners:
        thread.start()
    try:
        for _ in range(3000):
            assert team.size(2) in (1, 2)
    finally:
        stop.set()
        for thread in churners:
            thread.join()


def test_two_callers_have_their_own_teams():
    """Two Python threads run barrier kernels at once: with a shared team they would deadlock."""
    results = []

    def caller():
        sync, counts = np.zeros(SYNC_SIZE, np.int64), np.zeros(8, np.int64)
        seen = np.zeros((2, 500), np.int64)
        team.run(_count_between_barriers, 2, sync, counts, seen)
        results.append(seen[:, -1].tolist())

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [[1000, 1000], [1000, 1000]]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3, 10, 100])
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


def _shim_variants():
    """(name, addresses, ilp64) of every way the gemm shim can be built here."""
    import scipy.linalg.cython_blas  # noqa: F401  loads SciPy's BLAS, so threadpoolctl sees it
    from threadpoolctl import ThreadpoolController
    variants = [("numba_xxgemm", {"d": None, "s": None}, False)]
    for controller in ThreadpoolController().select(user_api="blas").lib_controllers:
        found = blas.cblas_gemms(controller)
        if found is not None:
            variants.append((os.path.basename(controller.filepath),) + found)
    return variants


SHIM_VARIANTS = _shim_variants()


@pytest.mark.parametrize("name,addresses,ilp64", SHIM_VARIANTS, ids=[v[0] for v in SHIM_VARIANTS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_gemm_shim_variant_matches_numpy(name, addresses, ilp64, dtype):
    """Each library the shim can call (NumPy's ILP64 CBLAS, SciPy's LP64 one, Numba's own
    entry point): C = alpha op(A) op(B) + beta C on strided row-major blocks, every
    transposition, against NumPy at float rounding (sums of 30 terms: 30 eps of the largest)."""
    kind = "d" if dtype == np.float64 else "s"
    engine = blas.compile_shims(addresses, ilp64)
    real = ctypes.c_double if kind == "d" else ctypes.c_float
    shim = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64,
                            ctypes.c_int64, real, ctypes.c_void_p, ctypes.c_int64,
                            ctypes.c_void_p, ctypes.c_int64, real, ctypes.c_void_p,
                            ctypes.c_int64)(engine.get_function_address(f"fastmlp_{kind}gemm_shim"))
    rng = np.random.default_rng(3)
    m, n, k = 7, 5, 30
    for trans_a in (False, True):
        for trans_b in (False, True):
            a = rng.standard_normal((k, m + 3) if trans_a else (m, k + 3)).astype(dtype)
            b = rng.standard_normal((n, k + 2) if trans_b else (k, n + 2)).astype(dtype)
            a, b = (a[:, :m] if trans_a else a[:, :k]), (b[:, :k] if trans_b else b[:, :n])
            c = rng.standard_normal((m, n + 4)).astype(dtype)
            want = 0.5 * (a.T if trans_a else a) @ (b.T if trans_b else b) + 2.0 * c[:, :n]
            view = c[:, :n]
            shim(blas.TRANS if trans_a else blas.NO_TRANS, blas.TRANS if trans_b else blas.NO_TRANS,
                 m, n, k, 0.5, a.ctypes.data, a.strides[0] // a.itemsize, b.ctypes.data,
                 b.strides[0] // b.itemsize, 2.0, view.ctypes.data, c.strides[0] // c.itemsize)
            tol = 30 * np.finfo(dtype).eps * np.abs(want).max()
            np.testing.assert_allclose(view, want, rtol=0, atol=tol, err_msg=name)


def _wait_until_asleep(workers, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not all(w._state[0] == sync.ASLEEP for w in workers):
        assert time.monotonic() < deadline, "the workers never went to sleep"
        time.sleep(0.005)


def test_team_hands_calls_to_spinning_sleeping_and_nudged_workers(monkeypatch):
    """A worker spins for a call, then sleeps: calls posted in every state run exactly once,
    and :func:`team.awake_size` offers the team only while its workers spin (waking them)."""
    monkeypatch.setattr(team, "SPIN_CYCLES", 1 << 16)  # asleep within ~0.1 ms
    monkeypatch.setattr(team, "size", lambda wanted: wanted)
    box = {}

    def caller():  # a fresh calling thread: workers started with the patched spin
        out = []
        team.run(_record, 3, out)  # workers just started
        for _ in range(50):  # back to back: spinning workers
            team.run(_record, 3, out)
        workers = team._local.team.workers
        _wait_until_asleep(workers)
        box["asleep"] = team.awake_size(3)  # 1, and nudges them
        team.run(_record, 3, out)  # posted to nudged (or asleep again) workers
        _wait_until_asleep(workers)
        team.run(_record, 3, out)  # posted to sleeping workers
        box["slots"] = sorted(slot for slot, _, _ in out)
        monkeypatch.setattr(team, "SPIN_CYCLES", 1 << 31)  # ~1 s: still spinning when asked
        team.run(_record, 3, out)
        box["awake"] = team.awake_size(3)

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(timeout=60)
    assert box["slots"] == sorted(list(range(3)) * 53)
    assert box["asleep"] == 1 and box["awake"] == 3
