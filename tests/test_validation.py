"""Bad input raises a ValueError that says what is wrong, before any kernel runs."""
import numpy as np
import pytest

import fastmlp
from fastmlp.model import EpochTrainer
from tests.conftest import quiet

WEIGHTS = ("weight_h", "bias_h", "weight_out", "bias_out")


@pytest.fixture
def model():
    return quiet(fastmlp.NeuralNetMLP, 20, 8, 4)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (300, 20)), rng.integers(0, 4, 300)


def snapshot(model):
    return [getattr(model, name).copy() for name in WEIGHTS]


def bad_cases(X, y):
    """(description, X_train, y_train, X_valid, y_valid, kwargs, message fragment)."""
    nan_X = X.copy()
    nan_X[5, 3] = np.nan
    inf_X = X.copy()
    inf_X[0, 0] = -np.inf
    yield "label = num_classes", X, np.where(np.arange(300) == 7, 4, y), X, y, {}, r"\[0, 4\)"
    yield "negative label", X, np.where(np.arange(300) == 7, -1, y), X, y, {}, r"\[0, 4\)"
    yield "bad valid label", X, y, X, np.full(300, 9), {}, "y_valid"
    yield "fractional labels", X, y + 0.5, X, y, {}, "integer"
    yield "string labels", X, y.astype(str), X, y, {}, "integer"
    yield "2-D labels", X, y[:, None], X, y, {}, "1-D"
    yield "feature count", X[:, :19], y, X, y, {}, "19 features"
    yield "valid feature count", X, y, X[:, :5], y, {}, "5 features"
    yield "NaN in X", nan_X, y, X, y, {}, "NaN"
    yield "infinity in X_valid", X, y, inf_X, y, {}, "NaN or infinity"
    yield "length mismatch", X, y[:-1], X, y, {}, "299 labels"
    yield "minibatch_size 0", X, y, X, y, {"minibatch_size": 0}, "minibatch_size"
    yield "minibatch_size float", X, y, X, y, {"minibatch_size": 2.5}, "minibatch_size"
    yield "minibatch larger than data", X, y, X, y, {"minibatch_size": 301}, "fewer than one"
    yield "negative learning rate", X, y, X, y, {"learning_rate": -0.1}, "learning_rate"
    yield "NaN learning rate", X, y, X, y, {"learning_rate": np.nan}, "learning_rate"
    yield "negative epochs", X, y, X, y, {"num_epochs": -1}, "num_epochs"
    yield "complex X", X.astype(complex), y, X, y, {}, "real numbers"
    yield "3-D X", X[None], y, X, y, {}, "2-D"


BAD_CASES = ("label = num_classes", "negative label", "bad valid label", "fractional labels",
             "string labels", "2-D labels", "feature count", "valid feature count", "NaN in X",
             "infinity in X_valid", "length mismatch", "minibatch_size 0",
             "minibatch_size float", "minibatch larger than data", "negative learning rate",
             "NaN learning rate", "negative epochs", "complex X", "3-D X")
"""The names of :func:`bad_cases`, one test each (a case not listed fails the next test)."""


def test_every_bad_case_is_listed_once(data):
    assert [case[0] for case in bad_cases(*data)] == list(BAD_CASES)


@pytest.mark.parametrize("name", BAD_CASES)
def test_train_rejects_bad_input_and_leaves_weights_alone(model, data, name):
    [(description, X_train, y_train, X_valid, y_valid, kwargs, message)] = \
        [case for case in bad_cases(*data) if case[0] == name]
    before = snapshot(model)
    kwargs = {"num_epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        fastmlp.train(model, X_train, y_train, X_valid, y_valid, **kwargs)
    for name, old in zip(WEIGHTS, before):
        np.testing.assert_array_equal(getattr(model, name), old, err_msg=description)


def test_unknown_activation_and_dtype():
    with pytest.raises(ValueError, match="activation"):
        fastmlp.NeuralNetMLP(4, 3, 2, activation="tanh")
    with pytest.raises(ValueError, match="dtype"):
        fastmlp.NeuralNetMLP(4, 3, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="num_hidden"):
        fastmlp.NeuralNetMLP(4, 0, 2)


def test_forward_backward_and_helpers_validate(model, data):
    X, y = data
    with pytest.raises(ValueError, match="features"):
        model.forward(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        model.forward(np.full((2, 20), np.nan))
    a_h, a_out = model.forward(X)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        model.backward(X, a_h, a_out, np.full(300, 4))
    with pytest.raises(ValueError, match="rows"):
        model.backward(X, a_h[:10], a_out, y)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        fastmlp.int_to_onehot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="num_labels"):
        fastmlp.compute_mse_and_acc(model, X, y)  # 4 classes, num_labels defaults to 10
    with pytest.raises(ValueError, match="fewer than one"):
        fastmlp.compute_mse_and_acc(model, X[:50], y[:50], num_labels=4)
    with pytest.raises(ValueError, match="minibatch_size"):
        next(fastmlp.minibatch_generator(X, y, 0))


def test_other_layouts_and_dtypes_are_converted(model, data):
    X, y = data
    wide = np.zeros((300, 40))
    wide[:, ::2] = X
    strided = wide[:, ::2]  # non-contiguous view
    want = model.forward(X)[1]
    np.testing.assert_array_equal(model.forward(strided)[1], want)
    np.testing.assert_array_equal(model.forward(np.asfortranarray(X))[1], want)
    np.testing.assert_allclose(model.forward(X.astype(np.float32))[1],
                               model.forward(X.astype(np.float32).astype(np.float64))[1])
    assert model.forward((X > 0).astype(np.int8))[1].dtype == np.float64
    a_h, a_out = model.forward(X)
    np.testing.assert_array_equal(model.backward(X, a_h, a_out, y.astype(np.uint8))[2],
                                  model.backward(X, a_h, a_out, y)[2])
    # weights a user assigned in another dtype and layout are converted, not rejected
    model.weight_h = np.asfortranarray(model.weight_h.astype(np.float32))
    a_h, a_out = model.forward(X)
    assert model.weight_h.dtype == np.float64 and model.weight_h.flags.c_contiguous


def test_weights_of_the_wrong_shape_are_rejected(model, data):
    X, y = data
    model.weight_out = np.zeros((3, 8))
    with pytest.raises(ValueError, match="weight_out"):
        model.forward(X)


def test_float32_model_converts_and_checks_float64_input(data):
    X, y = data
    model = quiet(fastmlp.NeuralNetMLP, 20, 8, 4, dtype=np.float32)
    np.testing.assert_array_equal(model.forward(X)[1], model.forward(X.astype(np.float32))[1])
    bad = X.copy()
    bad[-1, -1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.forward(bad)
    with pytest.raises(ValueError, match="NaN or infinity"):
        fastmlp.train(model, bad, y, X, y, 1)


@pytest.mark.parametrize("order, first, last, message", [
    (np.array([0, 1, 300]), 0, None, r"row indices in \[0, 300\]"),
    (np.array([-1, 2, 3]), 0, None, r"row indices in \[-1, 3\]"),
    (np.arange(300.0), 0, None, "integer row indices"),
    (np.arange(300).reshape(3, 100), 0, None, "1-D array"),
    (np.arange(300), 0, 4, "steps 0:4 are not within the 3 steps"),
    (np.arange(300), 2, 1, "steps 2:1"),
    (np.arange(300), -1, 2, "first_step must be >= 0"),
    (np.arange(150), 0, 2, "steps 0:2 are not within the 1 steps"),
], ids=["index-past-the-end", "negative-index", "float-order", "2-d-order", "steps-past-the-end",
        "steps-reversed", "negative-first-step", "order-too-short"])
def test_epoch_trainer_run_checks_order_and_steps_before_any_kernel(order, first, last, message):
    """``EpochTrainer.run`` is documented API: an order or a step range that would read
    outside ``X`` (Numba does not bounds-check) is a ValueError, and the weights stay."""
    rng = np.random.default_rng(0)
    model = quiet(fastmlp.NeuralNetMLP, 784, 20, 10)
    trainer = EpochTrainer(model, rng.random((300, 784)), rng.integers(0, 10, 300), 0.1, 100)
    before = model.weight_h.copy()
    with pytest.raises(ValueError, match=message):
        trainer.run(order, first, last)
    np.testing.assert_array_equal(model.weight_h, before)
