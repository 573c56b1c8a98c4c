"""The general network: the NumPy twin against finite differences, the kernels against the twin.

Tolerances: the kernels and the twin do the same float64 arithmetic in other orders
(BLAS blocking, fused loops), so they agree to rounding: ``1e-10`` of the largest
entry. Central differences with step ``h = 1e-5`` have truncation error
``O(h**2)`` and rounding ``O(eps / h)``: ``1e-6`` of the largest entry. float32:
rounding ``O(1e-7)`` per operation grows over a few layers and an epoch: ``1e-4``.
"""
import numpy as np
import pytest

from fastmlp import reference_deep as ref

TOL = 1e-10
FD_TOL = 1e-6
F32_TOL = 1e-4


def network(units, seed=0, scale=0.7):
    rng = np.random.default_rng(seed)
    coefs = [rng.uniform(-scale, scale, (a, b)) for a, b in zip(units[:-1], units[1:])]
    intercepts = [rng.uniform(-0.3, 0.3, b) for b in units[1:]]
    return coefs, intercepts


def batch(n, n_features, n_classes, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_features)), rng.integers(0, n_classes, n)


def objective(coefs, intercepts, x, y, activation, loss, alpha):
    """The function the twin's gradients differentiate.

    log-loss: scikit-learn's batch loss. mse: the chapter's gradient is that of the
    per-example sum of squared errors (its MSE times the number of outputs).
    """
    a_out = ref.forward(coefs, intercepts, x, activation, loss)[-1]
    t = ref.targets(y, a_out.shape[1])
    value = ref.loss_value(coefs, a_out, t, alpha, loss)
    if loss == "mse":
        value += (a_out.shape[1] - 1) * np.mean((t - a_out) ** 2)
    return value


def assert_close(actual, expected, tol):
    scale = max(np.abs(e).max() for e in expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        assert np.abs(a - e).max() <= tol * scale, np.abs(a - e).max() / scale


@pytest.mark.parametrize("activation", ref.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss,units", [("log_loss", [4, 5, 3]), ("log_loss", [3, 4, 3, 1]),
                                        ("mse", [4, 6, 3]), ("mse", [3, 5, 4, 2])])
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_twin_gradients_match_central_differences(activation, loss, units, alpha):
    coefs, intercepts = network(units)
    x, y = batch(6, units[0], max(units[-1], 2))
    _, coef_grads, intercept_grads = ref.gradients(coefs, intercepts, x, y, activation, loss,
                                                   alpha)
    h = 1e-5
    numeric = []
    for param in coefs + intercepts:
        grad = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            saved = param[idx]
            param[idx] = saved + h
            up = objective(coefs, intercepts, x, y, activation, loss, alpha)
            param[idx] = saved - h
            down = objective(coefs, intercepts, x, y, activation, loss, alpha)
            param[idx] = saved
            grad[idx] = (up - down) / (2 * h)
        numeric.append(grad)
    assert_close(coef_grads + intercept_grads, numeric, FD_TOL)


# ---- the kernels (fastmlp.network) against the twin ----

from fastmlp.network import Network, Trainer, make_optimizer  # noqa: E402

GRID = [  # (units, batch size)
    ([6, 3], 1), ([5, 7, 3], 4), ([8, 16, 9, 4], 33), ([3, 5, 4, 6, 2], 10),
    ([10, 32, 1], 17), ([7, 1, 5], 2)]


def twin_copy(net):
    return [c.astype(np.float64) for c in net.coefs], [b.astype(np.float64)
                                                       for b in net.intercepts]


@pytest.mark.parametrize("units,n", GRID, ids=str)
@pytest.mark.parametrize("activation", ref.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss", ref.LOSSES)
def test_kernel_gradients_match_twin(units, n, activation, loss):
    net = Network(units, activation, loss, alpha=0.05)
    net.initialize(np.random.RandomState(3))
    x, y = batch(n, units[0], net.num_classes, seed=n)
    value, coef_grads, intercept_grads = net.gradient(x, y)
    expected_value, *expected = ref.gradients(*twin_copy(net), x, y, activation, loss, 0.05)
    assert_close(coef_grads + intercept_grads, expected[0] + expected[1], TOL)
    assert value == pytest.approx(expected_value, rel=TOL)


SOLVER_CASES = [("sgd", 0.0, False, 0.1), ("sgd", 0.9, False, 0.05), ("sgd", 0.9, True, 0.05),
                ("adam", 0.9, True, 0.01)]


def epochs_both(units, activation, loss, solver, momentum, nesterov, lr, dtype, epochs=2,
                n=45, batch_size=8, alpha=1e-3):
    """The network's and the twin's weights and losses after ``epochs`` shuffled epochs."""
    net = Network(units, activation, loss, alpha=alpha, dtype=dtype)
    net.initialize(np.random.RandomState(5))
    coefs, intercepts = twin_copy(net)
    x, y = batch(n, units[0], net.num_classes, seed=9)
    opt = make_optimizer(net, solver, lr, momentum, nesterov)
    trainer = Trainer(net, x, y, batch_size, opt)
    twin_opt = ref.Optimizer(coefs + intercepts, solver, lr, momentum, nesterov)
    rng = np.random.default_rng(0)
    losses, twin_losses = [], []
    for _ in range(epochs):
        order = rng.permutation(n)
        losses.append(trainer.run(order))
        twin_losses.append(ref.train_epoch(coefs, intercepts, twin_opt, x, y, order,
                                           batch_size, activation, loss, alpha))
    return net, coefs + intercepts, losses, twin_losses


@pytest.mark.parametrize("solver,momentum,nesterov,lr", SOLVER_CASES)
@pytest.mark.parametrize("units,activation,loss", [
    ([6, 9, 4], "relu", "log_loss"), ([5, 8, 6, 3], "tanh", "mse"),
    ([4, 7, 1], "logistic", "log_loss"), ([5, 6, 5, 4, 3], "identity", "log_loss")])
def test_fused_epochs_match_twin(units, activation, loss, solver, momentum, nesterov, lr):
    net, expected, losses, twin_losses = epochs_both(units, activation, loss, solver, momentum,
                                                     nesterov, lr, np.float64)
    assert_close(net.coefs + net.intercepts, expected, TOL)
    np.testing.assert_allclose(losses, twin_losses, rtol=TOL)


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize("solver,momentum,nesterov,lr", SOLVER_CASES[::2] + SOLVER_CASES[3:])
@pytest.mark.parametrize("units,activation,loss,batch_size", [
    ([6, 9, 5, 4], "relu", "log_loss", 8), ([3, 2, 1], "logistic", "log_loss", 3),
    ([5, 8, 6, 3], "tanh", "mse", 16)])
def test_team_epochs_match_twin(monkeypatch, size, units, activation, loss, batch_size, solver,
                                momentum, nesterov, lr):
    """A team of ``size`` threads (more than the rows of a batch or the units of a layer, in
    some cases: their shares are empty) gives the twin's weights and losses."""
    from fastmlp import network
    sizes = []
    run = network.team.run
    monkeypatch.setattr(network, "TEAM_MIN_WORK", 0)
    monkeypatch.setattr(network, "get_num_threads", lambda: size)  # even on fewer CPUs
    monkeypatch.setattr(network.team, "size", lambda wanted: wanted)
    monkeypatch.setattr(network.team, "run", lambda kernel, k, *args: (sizes.append(k),
                                                                        run(kernel, k, *args)))
    net, expected, losses, twin_losses = epochs_both(units, activation, loss, solver, momentum,
                                                     nesterov, lr, np.float64, batch_size=batch_size)
    assert sizes == [min(size, batch_size)] * 2
    assert_close(net.coefs + net.intercepts, expected, TOL)
    np.testing.assert_allclose(losses, twin_losses, rtol=TOL)


@pytest.mark.parametrize("solver,momentum,nesterov,lr", SOLVER_CASES[1:])
def test_epochs_in_segments_on_changing_teams_match_twin(monkeypatch, solver, momentum, nesterov,
                                                          lr):
    """An epoch cut into team calls (``team.segments``: a call of ``SEGMENT_WORK``'s steps
    while the team is smaller than asked for, of ``FULL_TEAM_SEGMENT_WORK``'s once it is
    full), the team size changing between calls, gives the twin's weights and losses (Adam's
    step count and the epoch's loss carried across calls)."""
    import itertools

    from fastmlp import network
    step_work = 8 * (2 * (6 * 9 + 9 * 5 + 5 * 4) + 9 * 5 + 5 * 4)  # batch 8, [6, 9, 5, 4]
    calls, run = [], network.team.run
    monkeypatch.setattr(network, "TEAM_MIN_WORK", 0)
    monkeypatch.setattr(network.team, "SEGMENT_WORK", 2 * step_work)
    monkeypatch.setattr(network.team, "FULL_TEAM_SEGMENT_WORK", 3 * step_work)
    monkeypatch.setattr(network, "get_num_threads", lambda: 3)
    sizes = itertools.cycle([1, 3, 3, 2, 3, 3])
    monkeypatch.setattr(network.team, "size", lambda wanted: next(sizes))
    monkeypatch.setattr(network.team, "run", lambda kernel, k, *args: (
        calls.append((args[4], args[5], k)), run(kernel, k, *args)))
    net, expected, losses, twin_losses = epochs_both([6, 9, 5, 4], "relu", "log_loss", solver,
                                                     momentum, nesterov, lr, np.float64)
    assert calls == [(0, 2, 1), (2, 5, 3), (5, 6, 3), (0, 2, 2), (2, 5, 3), (5, 6, 3)]
    assert_close(net.coefs + net.intercepts, expected, TOL)
    np.testing.assert_allclose(losses, twin_losses, rtol=TOL)


@pytest.mark.parametrize("solver,momentum,nesterov,lr", SOLVER_CASES[::3])
def test_float32_epochs_close_to_twin(solver, momentum, nesterov, lr):
    net, expected, losses, twin_losses = epochs_both([6, 9, 5, 4], "relu", "log_loss", solver,
                                                     momentum, nesterov, lr, np.float32)
    assert net.params.dtype == np.float32
    assert_close(net.coefs + net.intercepts, expected, F32_TOL)
    np.testing.assert_allclose(losses, twin_losses, rtol=F32_TOL)


def test_forward_output_matches_twin_in_chunks(monkeypatch):
    from fastmlp import network
    monkeypatch.setattr(network, "PREDICT_ROWS", 7)  # several chunks, the last one partial
    net = Network([5, 6, 4], "relu", "log_loss")
    net.initialize(np.random.RandomState(1))
    x, _ = batch(30, 5, 4)
    expected = ref.forward(*twin_copy(net), x, "relu", "log_loss")[-1]
    assert_close([net.forward_output(x)], [expected], TOL)
    np.testing.assert_allclose(net.forward_output(x).sum(axis=1), 1.0)


@pytest.mark.parametrize("kwargs,message", [
    (dict(units=[5]), "at least two"), (dict(units=[5, 0, 3]), ">= 1"),
    (dict(units=[5, 3], activation="softplus"), "activation"),
    (dict(units=[5, 3], loss="hinge"), "loss"), (dict(units=[5, 3], alpha=-1), "alpha"),
    (dict(units=[5, 3], dtype=np.int32), "dtype")])
def test_network_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Network(**kwargs)


def test_bad_data_and_settings_raise_before_any_kernel():
    net = Network([4, 5, 3])
    x, y = batch(10, 4, 3)
    opt = make_optimizer(net)
    before = net.params.copy()
    for bad_x, bad_y, message in [(x[:, :3], y, "features"), (x, y + 1, r"\[0, 3\)"),
                                  (x, y[:5], "labels"), (np.full_like(x, np.nan), y, "NaN")]:
        with pytest.raises(ValueError, match=message):
            Trainer(net, bad_x, bad_y, 4, opt)
    trainer = Trainer(net, x, y, 4, opt)
    for order, message in [(np.array([0, 10]), "outside"), (np.array([-1]), "outside"),
                           (np.array([], np.int64), "non-empty")]:
        with pytest.raises(ValueError, match=message):
            trainer.run(order)
    with pytest.raises(ValueError, match="lbfgs"):
        make_optimizer(net, "lbfgs")
    with pytest.raises(ValueError, match="beta_2"):
        make_optimizer(net, beta_2=1.0)
    with pytest.raises(ValueError, match="another network"):
        Trainer(net, x, y, 4, make_optimizer(Network([4, 3])))
    with pytest.raises(ValueError, match="shape"):
        net.set_weights([c.T for c in net.coefs], net.intercepts)
    np.testing.assert_array_equal(net.params, before)


def test_blas_threads_follow_fastmlp_for_large_products_only():
    from fastmlp import network, threads
    blas = threads._blas_controller()
    with threads.limit(2) as n:
        with network._blas_threads(np.array([784, 256, 10]), 100):  # 20 M multiply-adds
            assert {info["num_threads"] for info in blas.info()} == {n}
        with network._blas_threads(np.array([64, 100, 10]), 200):  # 1.3 M
            assert {info["num_threads"] for info in blas.info()} == {1}
