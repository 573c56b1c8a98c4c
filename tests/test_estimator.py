"""Tests of fastmlp.estimator.MLPClassifier (scikit-learn API) and fastmlp.predict."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastmlp
from fastmlp import reference
from fastmlp.estimator import MLPClassifier
from fastmlp.predict import predict_labels
from tests.conftest import quiet

pytestmark = pytest.mark.usefixtures("one_kernel_thread")  # tiny data: see conftest


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# Every check passes, so there are no expected_failed_checks. The checks' blobs need a
# higher learning rate than the chapter's 0.1 to reach their 0.83 accuracy in 20 epochs.
@parametrize_with_checks([
    MLPClassifier(max_iter=20, learning_rate_init=0.5),
    MLPClassifier(activation="relu", learning_rate_init=0.2, max_iter=20, batch_size="auto",
                  dtype=np.float32),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_pipeline_and_grid_search_on_digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=10, random_state=0))
    search = GridSearchCV(pipe, {"mlpclassifier__learning_rate_init": [0.1, 1.0],
                                 "mlpclassifier__hidden_layer_sizes": [20, (50,)]}, cv=3)
    search.fit(X_train, y_train)
    assert search.best_params_ == {"mlpclassifier__hidden_layer_sizes": (50,),
                                   "mlpclassifier__learning_rate_init": 1.0}
    assert search.score(X_test, y_test) > 0.9


def test_string_labels(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    clf = MLPClassifier(learning_rate_init=1.0, max_iter=10, random_state=0).fit(X, names[y])
    assert list(clf.classes_) == sorted(names)
    assert set(clf.predict(X)) <= set(names)
    assert clf.score(X, names[y]) > 0.9


def test_predict_proba_is_normalised_sigmoid_output(digits):
    X, y = digits
    clf = MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    _, a_out = clf.model_.forward(X)
    np.testing.assert_allclose(proba, a_out / a_out.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(a_out, axis=1)])


def test_random_state_123_starts_from_the_chapters_weights(digits, capsys):
    X, y = digits
    clf = MLPClassifier(learning_rate_init=0.0, max_iter=1, random_state=123).fit(X, y)
    assert capsys.readouterr().out == ""  # "Model initialization" is swallowed
    chapter = quiet(fastmlp.NeuralNetMLP, 64, 50, 10)
    for name in ("weight_h", "bias_h", "weight_out", "bias_out"):
        np.testing.assert_array_equal(getattr(clf.model_, name), getattr(chapter, name))


def test_fit_never_touches_the_global_random_state(digits):
    X, y = digits
    np.random.seed(0)
    state = np.random.get_state(legacy=True)
    MLPClassifier(max_iter=2).fit(X, y)
    MLPClassifier(max_iter=2, random_state=1).fit(X, y).partial_fit(X, y)
    after = np.random.get_state(legacy=True)
    assert after[2] == state[2]
    np.testing.assert_array_equal(after[1], state[1])


def test_random_state_makes_fit_reproducible(digits):
    X, y = digits

    def weights(**kwargs):
        return MLPClassifier(max_iter=2, **kwargs).fit(X, y).model_.weight_h

    np.testing.assert_array_equal(weights(random_state=3), weights(random_state=3))
    assert not np.array_equal(weights(random_state=3), weights(random_state=4))
    rs = np.random.RandomState(3)
    assert not np.array_equal(weights(random_state=rs), weights(random_state=rs))
    np.testing.assert_array_equal(weights(shuffle=False, random_state=3),
                                  weights(shuffle=False, random_state=3))


def test_partial_fit_runs_one_epoch_at_a_time(digits):
    X, y = digits
    clf = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:500], y[:500], classes=np.arange(10))
    clf.partial_fit(X[500:], y[500:])
    assert clf.n_iter_ == 2
    # the same epochs as fit, when the data and order are the same
    one = MLPClassifier(max_iter=2, shuffle=False, random_state=0).fit(X, y)
    two = MLPClassifier(shuffle=False, random_state=0)
    two.partial_fit(X, y, classes=np.unique(y)).partial_fit(X, y)
    np.testing.assert_array_equal(one.model_.weight_h, two.model_.weight_h)
    with pytest.raises(ValueError, match="not in classes"):
        two.partial_fit(X[:10], y[:10] + 10)
    with pytest.raises(ValueError, match="differs from the classes"):
        two.partial_fit(X, y, classes=np.arange(11))


def test_batch_size_is_clipped_and_auto(digits):
    X, y = digits

    def weights(batch_size, n):
        clf = MLPClassifier(batch_size=batch_size, max_iter=2, shuffle=False, random_state=0)
        return clf.fit(X[:n], y[:n]).model_.weight_h

    np.testing.assert_array_equal(weights(10_000, 50), weights(50, 50))  # min(batch_size, n)
    np.testing.assert_array_equal(weights("auto", 1000), weights(200, 1000))  # min(200, n)
    np.testing.assert_array_equal(weights("auto", 150), weights(150, 150))


@pytest.mark.parametrize("params, message", [
    ({"hidden_layer_sizes": (50, 20)}, "one hidden layer"),
    ({"hidden_layer_sizes": "50"}, "one hidden layer"),
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes must be >= 1"),
    ({"activation": "tanh"}, "activation must be one of"),
    ({"learning_rate_init": -1.0}, "learning_rate"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"max_iter": 0}, "max_iter must be >= 1"),
    ({"dtype": np.int32}, "dtype must be"),
])
def test_bad_parameters_raise_in_fit(digits, params, message):
    X, y = digits
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**params).fit(X, y)


def test_verbose_prints_one_line_per_epoch(digits, capsys):
    X, y = digits
    MLPClassifier(max_iter=3, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line[:12] for line in lines] == ["Epoch: 001 |", "Epoch: 002 |", "Epoch: 003 |"]
    assert all("| Train MSE: " in line and "| Train Acc: " in line for line in lines)


# ------------------------------------------------------------- fastmlp.predict

@pytest.fixture(scope="module")
def mnist_shaped_model():
    model = quiet(fastmlp.NeuralNetMLP, 784, 20, 10, random_seed=1)
    images = np.random.default_rng(0).uniform(-1, 1, size=(6, 28, 28))
    return model, images


def test_one_image_gives_an_int(mnist_shaped_model):
    model, images = mnist_shaped_model
    expected = int(np.argmax(model.forward(images[0].reshape(784))[1]))
    for image in (images[0], images[0].reshape(784), images[0].tolist()):
        label = predict_labels(model, image)
        assert type(label) is int and label == expected


def test_a_batch_gives_an_array(mnist_shaped_model):
    model, images = mnist_shaped_model
    expected = np.argmax(model.forward(images.reshape(6, 784))[1], axis=1)
    for batch in (images, images.reshape(6, 784)):
        labels = predict_labels(model, batch)
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(predict_labels(model, images[:1].reshape(1, 784)), expected[:1])


def test_the_reference_model_works_too(mnist_shaped_model):
    _, images = mnist_shaped_model
    model = quiet(reference.NeuralNetMLP, 784, 20, 10, random_seed=1)
    assert predict_labels(model, images[2]) == int(np.argmax(model.forward(images[2].ravel())[1]))


@pytest.mark.parametrize("shape", [(27, 27), (783,), (2, 27, 27), (1, 1, 28, 28), ()])
def test_other_shapes_raise(mnist_shaped_model, shape):
    model, _ = mnist_shaped_model
    with pytest.raises(ValueError, match="as images of 784 pixels"):
        predict_labels(model, np.zeros(shape))
