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
