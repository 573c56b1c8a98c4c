"""Every fast function against its twin in fastmlp.reference (the chapter's code).

Tolerances, written once:

* float64 -- ``max|fast - ref| <= 1e-10 * max|ref|`` per array. Both sides sum the
  same few hundred float64 products in different orders; each order is within
  about ``K * 2**-53 ~ 1e-13`` of the exact sum (K <= 900 terms), and the
  backward pass compounds three such stages. 1e-10 leaves a wide margin above
  that and is still ~1e6 times below any real error (a wrong index or a missing term).
  Element-wise relative error is not used: a gradient entry that cancels to 1e-7
  of the largest has no relative accuracy to speak of in either implementation.
* float32 -- ``FLOAT32_RTOL = 3e-4`` of ``max|ref|``, where the reference runs in
  float64 on the same float32-rounded inputs, so only the float32 arithmetic
  differs. Unit roundoff u = 2**-24 = 6e-8; a K-term float32 sum is within
  ``K * u * sum|terms|`` (K = 900: 5.4e-5 of sum|terms|), sum|terms| exceeds
  max|result| by a small factor for these random inputs, and the gradients
  compose the forward sums with two more products: 3e-4 bounds that chain.
"""
import numpy as np
import pytest

import fastmlp
from fastmlp import model as fast_model
from fastmlp import reference
from fastmlp.kernels import epoch
from tests.conftest import quiet

F64_RTOL = 1e-10
FLOAT32_RTOL = 3e-4


def max_rel_error(fast, ref):
    ref = np.asarray(ref, dtype=np.float64)
    scale = np.max(np.abs(ref)) if ref.size else 0.0
    return np.max(np.abs(np.asarray(fast, np.float64) - ref)) / (scale if scale > 0 else 1.0)


def _shapes():
    """Edge shapes (every remainder path of the 4 x 4 blocking) and random ones in range."""
    shapes = [(1, 1, 1, 2), (1, 784, 50, 10), (4, 8, 4, 4), (5, 9, 7, 3), (100, 784, 50, 10),
              (257, 900, 300, 20), (3, 2, 5, 2), (8, 1, 1, 2), (13, 17, 6, 11)]
    rng = np.random.default_rng(2024)
    for _ in range(16):
        shapes.append((int(rng.integers(1, 258)), int(rng.integers(1, 901)),
                       int(rng.integers(1, 301)), int(rng.integers(2, 21))))
    return shapes


def _models(shape, activation, dtype=np.float64, seed=0):
    n, num_features, num_hidden, num_classes = shape
    fast = quiet(fastmlp.NeuralNetMLP, num_features, num_hidden, num_classes,
                 random_seed=seed, activation=activation, dtype=dtype)
    ref = quiet(reference.NeuralNetMLP, num_features, num_hidden, num_classes,
                random_seed=seed, activation=activation)
    # non-zero biases, so that their handling is checked too
    rng = np.random.default_rng(seed)
    for name in ("bias_h", "bias_out"):
        bias = rng.normal(0, 0.5, size=getattr(ref, name).shape)
        setattr(ref, name, bias)
        setattr(fast, name, bias.astype(dtype))
    return fast, ref


def _batch(shape, seed=1):
    n, num_features, _, num_classes = shape
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, num_features))
    return X, rng.integers(0, num_classes, size=n)


# Partial-sum budgets (kernels.epoch.PARTIAL_BUDGET) that make a step cut w_h into
# 1 piece x 4 unit blocks (ONE_PIECE) or into 2 x 2 (at batch 100, hidden 50: TWO_PIECES);
# None keeps the default (4 pieces x 1 block at these shapes).
ONE_PIECE, TWO_PIECES = 1, 2 * 100 * 50 * 8


@pytest.fixture(params=["one call", "team", "team of unit blocks"])
def call_path(request, monkeypatch):
    """``forward`` and ``backward`` as one kernel call, or (any shape) as a team of 3 threads,
    the path of large calls (forward: tiles, or blocks of rows; backward: rows, then tiles),
    with the tiles feature pieces (as at the chapter's shape) or blocks of hidden units (as
    past ``PARTIAL_BUDGET``)."""
    if request.param == "team of unit blocks":
        monkeypatch.setattr(epoch, "PARTIAL_BUDGET", ONE_PIECE)
    if request.param != "one call":
        monkeypatch.setattr(fast_model, "TEAM_CALL_MIN_WORK", 0)
        monkeypatch.setattr(fast_model, "PIECES_MIN_WORK", 0)
        monkeypatch.setattr(fast_model, "get_num_threads", lambda: 3)
        monkeypatch.setattr(fast_model.team, "size", lambda wanted: wanted)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("shape", _shapes(), ids=lambda s: "n%d-f%d-h%d-c%d" % s)
def test_forward_and_gradients_match_reference_float64(shape, activation, call_path):
    fast, ref = _models(shape, activation)
    X, y = _batch(shape)
    a_h, a_out = fast.forward(X)
    r_h, r_out = ref.forward(X)
    grads = fast.backward(X, a_h, a_out, y)
    ref_grads = ref.backward(X, r_h, r_out, y)
    names = ["a_h", "a_out", "d_w_out", "d_b_out", "d_w_h", "d_b_h"]
    for name, got, want in zip(names, (a_h, a_out, *grads), (r_h, r_out, *ref_grads)):
        assert got.shape == want.shape, name
        assert got.dtype == np.float64, name
        assert max_rel_error(got, want) <= F64_RTOL, name


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("shape", [(100, 784, 50, 10), (257, 900, 300, 20), (7, 33, 9, 3)],
                         ids=lambda s: "n%d-f%d-h%d-c%d" % s)
def test_float32_matches_reference_within_derived_tolerance(shape, activation):
    fast, ref = _models(shape, activation, dtype=np.float32)
    for name in ("weight_h", "bias_h", "weight_out", "bias_out"):  # the same rounded weights
        setattr(ref, name, getattr(fast, name).astype(np.float64))
    X, y = _batch(shape)
    X = X.astype(np.float32)
    a_h, a_out = fast.forward(X)
    r_h, r_out = ref.forward(X.astype(np.float64))
    grads = fast.backward(X, a_h, a_out, y)
    ref_grads = ref.backward(X.astype(np.float64), r_h, r_out, y)
    for got, want in zip((a_h, a_out, *grads), (r_h, r_out, *ref_grads)):
        assert got.dtype == np.float32
        assert max_rel_error(got, want) <= FLOAT32_RTOL


def test_forward_of_one_image_is_one_dimensional():
    fast, ref = _models((1, 784, 50, 10), "sigmoid")
    image = np.random.default_rng(3).uniform(-1, 1, 784)
    a_h, a_out = fast.forward(image)
    r_h, r_out = ref.forward(image)
    assert a_h.shape == (50,) and a_out.shape == (10,)
    assert max_rel_error(a_out, r_out) <= F64_RTOL
    assert np.argmax(a_out) == np.argmax(r_out)


def test_weights_and_reinitialize_follow_the_chapter():
    fast = quiet(fastmlp.NeuralNetMLP, 784, 50, 10)
    ref = quiet(reference.NeuralNetMLP, 784, 50, 10)
    for name in ("weight_h", "bias_h", "weight_out", "bias_out"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name))
    fast.reinitialize()
    ref.reinitialize()
    np.testing.assert_array_equal(fast.weight_h, ref.weight_h)  # the rng continues
    fast.reinitialize(random_seed=5)
    ref.reinitialize(random_seed=5)
    np.testing.assert_array_equal(fast.weight_out, ref.weight_out)


@pytest.mark.parametrize("num_labels", [2, 10, 20])
def test_int_to_onehot_identical(num_labels):
    y = np.random.default_rng(0).integers(0, num_labels, size=1000)
    got = fastmlp.int_to_onehot(y, num_labels)
    want = reference.int_to_onehot(y, num_labels)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 100, 4097, 55000, 70000])
@pytest.mark.parametrize("seed", [0, 123, 2**32 - 1])
def test_permutation_matches_numpy_shuffle(n, seed):
    np.random.seed(seed)
    np.random.normal(size=3)  # a Gaussian cached or not must survive, as with NumPy
    want_first = np.arange(n)
    np.random.shuffle(want_first)
    want_second = np.arange(n)
    np.random.shuffle(want_second)
    want_state = np.random.get_state()
    np.random.seed(seed)
    np.random.normal(size=3)
    got_first = fastmlp.model.permutation(n)
    got_second = fastmlp.model.permutation(n)
    got_state = np.random.get_state()
    np.testing.assert_array_equal(got_first, want_first)
    np.testing.assert_array_equal(got_second, want_second)
    assert got_state[0] == want_state[0] and got_state[2:] == want_state[2:]
    np.testing.assert_array_equal(got_state[1], want_state[1])


@pytest.mark.parametrize("minibatch_size", [1, 7, 100, 350])
def test_minibatch_generator_identical(small_data, minibatch_size):
    X, y = small_data[2], small_data[3]  # 350 rows
    np.random.seed(11)
    want = list(reference.minibatch_generator(X, y, minibatch_size))
    np.random.seed(11)
    got = list(fastmlp.minibatch_generator(X, y, minibatch_size))
    assert len(got) == len(want) == 350 // minibatch_size
    for (gx, gy), (wx, wy) in zip(got, want):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)


def test_mse_loss_and_accuracy_identical():
    rng = np.random.default_rng(5)
    probas = rng.uniform(size=(500, 10))
    targets = rng.integers(0, 10, 500)
    assert abs(fastmlp.mse_loss(targets, probas) - reference.mse_loss(targets, probas)) <= 1e-15
    predicted = np.argmax(probas, axis=1)
    assert fastmlp.accuracy(targets, predicted) == reference.accuracy(targets, predicted)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("n, minibatch_size", [(1800, 100), (1799, 100), (350, 64), (350, 350)])
def test_compute_mse_and_acc_identical(small_data, activation, n, minibatch_size):
    X, y = small_data[0][:n], small_data[1][:n]
    fast, ref = _models((n, 784, 30, 10), activation)
    np.random.seed(3)
    want = reference.compute_mse_and_acc(ref, X, y, minibatch_size=minibatch_size)
    after_ref = np.random.get_state()[1].copy()
    np.random.seed(3)
    got = fastmlp.compute_mse_and_acc(fast, X, y, minibatch_size=minibatch_size)
    np.testing.assert_array_equal(np.random.get_state()[1], after_ref)
    assert got[1] == want[1]  # accuracy exactly
    assert abs(got[0] - want[0]) <= 1e-12


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("minibatch_size, learning_rate, num_hidden, budget",
                         [(100, 0.1, 50, None), (32, 0.3, 17, None), (1, 0.05, 8, None),
                          (1, 0.1, 50, None), (3, 0.2, 22, None), (100, 0.1, 50, ONE_PIECE),
                          (100, 0.1, 50, TWO_PIECES), (32, 0.3, 17, ONE_PIECE),
                          (1, 0.1, 50, ONE_PIECE)])
def test_training_parity(small_data, capsys, monkeypatch, activation, minibatch_size,
                         learning_rate, num_hidden, budget):
    X_train, y_train, X_valid, y_valid = small_data
    if budget is not None:
        monkeypatch.setattr(epoch, "PARTIAL_BUDGET", budget)
    if minibatch_size < 10:  # 1,800 single-example steps per epoch in the reference: fewer rows
        X_train, y_train = X_train[:400], y_train[:400]
    fast, ref = _models((0, 784, num_hidden, 10), activation, seed=4)
    runs = []
    for model, trainer in ((ref, reference.train), (fast, fastmlp.train)):
        np.random.seed(123)
        history = trainer(model, X_train, y_train, X_valid, y_valid, num_epochs=3,
                          learning_rate=learning_rate, minibatch_size=minibatch_size)
        runs.append((history, capsys.readouterr().out))
    (want, want_out), (got, got_out) = runs
    assert got_out == want_out
    assert got[1] == want[1] and got[2] == want[2]  # accuracies identical
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-12)
    for name in ("weight_h", "bias_h", "weight_out", "bias_out"):
        assert np.max(np.abs(getattr(fast, name) - getattr(ref, name))) <= 1e-9, name


@pytest.mark.parametrize("num_hidden, minibatch_size, budget",
                         [(50, 100, None), (130, 100, None), (50, 10, None), (22, 3, None),
                          (130, 64, None), (50, 100, ONE_PIECE), (50, 100, TWO_PIECES),
                          (22, 3, ONE_PIECE), (50, 1, ONE_PIECE)])
def test_results_do_not_depend_on_thread_count(small_data, monkeypatch, num_hidden,
                                               minibatch_size, budget):
    """Teams of 1 to 4 threads (more than the cores here: the barrier yields) train to the
    same bits, and each team had the size asked for (``EpochTrainer.team_size``), also
    where the step's tiles are unit blocks (``budget``)."""
    X_train, y_train, X_valid, y_valid = small_data
    if budget is not None:
        monkeypatch.setattr(epoch, "PARTIAL_BUDGET", budget)
    results = []
    for threads in (1, 2, 3, 4):
        monkeypatch.setattr(fast_model, "TEAM_MIN_WORK", 1)  # a team even for small steps
        monkeypatch.setattr(fast_model, "TEAM_CALL_MIN_WORK", 0)  # and for small calls
        monkeypatch.setattr(fast_model, "PIECES_MIN_WORK", 0)  # cut into pieces
        monkeypatch.setattr(fast_model, "get_num_threads", lambda threads=threads: threads)
        monkeypatch.setattr(fast_model.team, "size", lambda wanted: wanted)  # even past the cores
        model = quiet(fastmlp.NeuralNetMLP, 784, num_hidden, 10)
        trainer = fast_model.EpochTrainer(model, X_train, y_train, 0.1, minibatch_size)
        np.random.seed(1)
        for _ in range(2):
            trainer.run(fast_model.permutation(trainer.num_examples))
        assert trainer.team_size == threads
        assert trainer._work.num_units == {None: 1, ONE_PIECE: 4, TWO_PIECES: 2}[budget]
        evaluation = trainer.evaluate(X_valid, y_valid)
        a_h, a_out = model.forward(X_valid)
        grads = model.backward(X_valid, a_h, a_out, y_valid)
        x = X_valid[:minibatch_size]  # a call of feature pieces (under EVAL_BLOCK rows)
        pieces = model.forward(x)
        grads += model.backward(x, *pieces, y_valid[:minibatch_size])
        results.append((evaluation, model.weight_h.copy(), model.bias_out.copy(),
                        a_out, pieces[1], grads))
    first = results[0]
    for other in results[1:]:
        assert other[0] == first[0]
        for got, want in zip(other[1:5] + other[5], first[1:5] + first[5]):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_float32_training_over_epochs_follows_the_reference(small_data, activation):
    """Three float32 epochs against the chapter's float64 steps on the same orders.

    Each step's float32 update is within ``FLOAT32_RTOL * max|update|`` of the float64 one
    (the gradient chain above), and storing the weights rounds them by ``eps * max|w|``
    before and after; an error already in the weights feeds into the later gradients,
    scaled by at most ``lr * |d grad / d w|`` (below 1 here: the steps contract). So the
    drift stays under the sum over the steps of ``FLOAT32_RTOL * max|update| + 2 eps max|w|``.
    """
    X_train, y_train, _, _ = small_data
    X32 = X_train.astype(np.float32)
    fast, ref = _models((0, 784, 30, 10), activation, dtype=np.float32, seed=5)
    names = ("weight_h", "bias_h", "weight_out", "bias_out")
    for name in names:
        setattr(ref, name, getattr(fast, name).astype(np.float64))
    trainer = fast_model.EpochTrainer(fast, X32, y_train, 0.1, 100)
    rng = np.random.default_rng(0)
    X64 = X32.astype(np.float64)
    bound = dict.fromkeys(names, 0.0)
    eps = np.finfo(np.float32).eps
    for _ in range(3):
        order = rng.permutation(len(X32))
        trainer.run(order)
        for start in range(0, len(order) - 99, 100):
            rows = order[start:start + 100]
            a_h, a_out = ref.forward(X64[rows])
            d_w_out, d_b_out, d_w_h, d_b_h = ref.backward(X64[rows], a_h, a_out, y_train[rows])
            for name, grad in zip(names, (d_w_h, d_b_h, d_w_out, d_b_out)):
                weights = getattr(ref, name)
                bound[name] += FLOAT32_RTOL * np.max(np.abs(0.1 * grad)) \
                    + 2 * eps * np.max(np.abs(weights))
                weights -= 0.1 * grad
    for name in names:
        error = np.max(np.abs(getattr(fast, name).astype(np.float64) - getattr(ref, name)))
        assert error <= bound[name], (name, error, bound[name])
