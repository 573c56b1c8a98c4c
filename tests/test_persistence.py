"""Tests of fastmlp.persistence: exact round trips, atomic writes, clear errors."""
import numpy as np
import pytest

import fastmlp
from fastmlp import persistence, reference
from fastmlp.persistence import load_history, load_model, save_history, save_model
from tests.conftest import quiet

WEIGHTS = ("weight_h", "bias_h", "weight_out", "bias_out")
pytestmark = pytest.mark.usefixtures("one_kernel_thread")  # tiny data: see conftest


def trained_model(dtype=np.float64, activation="sigmoid", random_seed=123):
    """A small model whose weights and biases are all non-trivial (one SGD epoch)."""
    rng = np.random.default_rng(0)
    X, y = rng.uniform(-1, 1, size=(200, 30)), rng.integers(0, 4, size=200)
    model = quiet(fastmlp.NeuralNetMLP, 30, 7, 4, random_seed=random_seed,
                  activation=activation, dtype=dtype)
    fastmlp.model.EpochTrainer(model, X, y, 0.5, 50).run(np.arange(200, dtype=np.int64))
    return model, X


def arrays_of(path):
    with np.load(path) as archive:
        return dict(archive)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_round_trip_is_exact(tmp_path, capsys, dtype, activation):
    model, X = trained_model(dtype, activation, random_seed=9)
    save_model(model, tmp_path / "model.npz")
    capsys.readouterr()
    loaded = fastmlp.NeuralNetMLP.load(tmp_path / "model.npz")
    assert capsys.readouterr().out == ""  # no "Model initialization"
    assert type(loaded) is fastmlp.NeuralNetMLP
    for name in WEIGHTS:
        assert getattr(loaded, name).dtype == dtype
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    for name in ("num_features", "num_hidden", "num_classes", "activation", "dtype",
                 "random_seed", "operation"):
        assert getattr(loaded, name) == getattr(model, name)
    for got, expected in zip(loaded.forward(X), model.forward(X)):
        np.testing.assert_array_equal(got, expected)


def test_loaded_rng_restarts_from_the_seed(tmp_path):
    model, _ = trained_model(random_seed=5)
    save_model(model, tmp_path / "model.npz")
    loaded = fastmlp.NeuralNetMLP.load(tmp_path / "model.npz")
    loaded.reinitialize()  # draws the initial weights again from a fresh RandomState(5)
    fresh = quiet(fastmlp.NeuralNetMLP, 30, 7, 4, random_seed=5)
    for name in WEIGHTS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fresh, name))


def test_file_holds_the_documented_entries(tmp_path):
    model, _ = trained_model(np.float32, "relu")
    save_model(model, tmp_path / "m.npz")
    data = arrays_of(tmp_path / "m.npz")
    layers = {"coef_0", "intercept_0", "coef_1", "intercept_1"}
    assert set(data) == set(persistence._KEYS) | layers
    assert data["format"] == "fastmlp-mlp" and data["format_version"] == 2
    assert data["units"].tolist() == [30, 7, 4] and data["units"].dtype == np.int64
    assert data["activation"] == "relu" and data["dtype"] == "float32"
    assert data["loss"] == "mse" and data["alpha"] == 0.0
    assert data["random_seed"] == 123
    np.testing.assert_array_equal(data["coef_0"], model.weight_h.T)
    np.testing.assert_array_equal(data["intercept_1"], model.bias_out)


def v1_file(model, path):
    """The file format_version 1 wrote for ``model`` (before architectures were recorded)."""
    arrays = {"format": np.array("fastmlp-mlp"), "format_version": np.array(1),
              "num_features": np.array(model.num_features),
              "num_hidden": np.array(model.num_hidden),
              "num_classes": np.array(model.num_classes),
              "activation": np.array(model.activation), "dtype": np.array(model.dtype.__name__),
              "random_seed": np.array(model.random_seed),
              **{name: getattr(model, name) for name in WEIGHTS}}
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_version_1_files_still_load(tmp_path, dtype):
    model, X = trained_model(dtype, "relu", random_seed=4)
    v1_file(model, tmp_path / "old.npz")
    loaded = load_model(tmp_path / "old.npz", fastmlp.NeuralNetMLP)
    for name in WEIGHTS:
        assert getattr(loaded, name).dtype == dtype
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert (loaded.activation, loaded.random_seed, loaded.num_hidden) == ("relu", 4, 7)
    network = persistence.load_network(tmp_path / "old.npz")
    np.testing.assert_array_equal(network.coefs[0], model.weight_h.T)
    # float32: the two forward passes round differently (1e-7 relative per operation)
    np.testing.assert_allclose(network.forward_output(X), model.forward(X)[1],
                               rtol=1e-12 if dtype == np.float64 else 1e-5)


def test_networks_round_trip_and_are_not_chapter_models(tmp_path):
    from fastmlp.network import Network
    net = Network([6, 5, 4, 3], "tanh", "log_loss", alpha=0.25, dtype=np.float32)
    net.initialize(np.random.RandomState(0))
    persistence.save_network(net, tmp_path / "net.npz")
    loaded = persistence.load_network(tmp_path / "net.npz")
    assert (loaded.units.tolist(), loaded.activation, loaded.loss, loaded.alpha,
            loaded.dtype) == ([6, 5, 4, 3], "tanh", "log_loss", 0.25, np.float32)
    np.testing.assert_array_equal(loaded.params, net.params)
    with pytest.raises(ValueError, match="not the chapter's architecture: load it with"):
        load_model(tmp_path / "net.npz", fastmlp.NeuralNetMLP)
    # a chapter model saved, read as a network: the same outputs
    model, X = trained_model()
    save_model(model, tmp_path / "m.npz")
    np.testing.assert_allclose(persistence.load_network(tmp_path / "m.npz").forward_output(X),
                               model.forward(X)[1], rtol=1e-12)


@pytest.mark.parametrize("change, message", [
    ({"units": np.array([30, 8, 4])}, r"coef_0 is float64 of shape \(30, 7\).*\(30, 8\)"),
    ({"units": np.array([30, 7])}, "unexpected entries coef_1, intercept_1"),
    ({"units": np.array([[30, 7, 4]])}, "units must be a 1-D integer array"),
    ({"units": np.array([30, 0, 4])}, "must be >= 1"),
    ({"intercept_1": np.zeros(5)}, r"intercept_1 is float64 of shape \(5,\)"),
    ({"loss": np.array("hinge")}, "loss must be one of"),
    ({"activation": np.array("softplus")}, "activation must be one of"),
    ({"alpha": np.array(-1.0)}, "alpha must be"),
    ({"format_version": np.array(3)}, "format version 3"),
])
def test_inconsistent_version_2_file_raises_value_error(tmp_path, change, message):
    model, _ = trained_model()
    save_model(model, tmp_path / "m.npz")
    np.savez(tmp_path / "bad.npz", **{**arrays_of(tmp_path / "m.npz"), **change})
    with pytest.raises(ValueError, match=message):
        persistence.load_network(tmp_path / "bad.npz")


def test_seed_none_and_subclass(tmp_path):
    class Sub(fastmlp.NeuralNetMLP):
        pass

    model = quiet(fastmlp.NeuralNetMLP, 5, 3, 2, random_seed=None)
    save_model(model, tmp_path / "m.npz")
    loaded = Sub.load(tmp_path / "m.npz")
    assert type(loaded) is Sub and loaded.random_seed is None
    np.testing.assert_array_equal(loaded.weight_h, model.weight_h)


def test_reference_model_loads_as_fastmlp_model(tmp_path):
    model = quiet(reference.NeuralNetMLP, 12, 6, 3, random_seed=1)
    save_model(model, tmp_path / "ref.npz")
    loaded = fastmlp.NeuralNetMLP.load(tmp_path / "ref.npz")
    assert loaded.dtype == np.float64 and loaded.activation == "sigmoid"
    X = np.random.default_rng(1).uniform(-1, 1, size=(9, 12))
    np.testing.assert_allclose(loaded.forward(X)[1], model.forward(X)[1], rtol=1e-12)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    model, _ = trained_model()
    path = tmp_path / "model.npz"
    save_model(model, path)
    before = path.read_bytes()

    def failing_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", failing_savez)
    model.weight_h += 1
    with pytest.raises(OSError, match="disk full"):
        save_model(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    monkeypatch.undo()
    save_model(model, path)  # overwrites
    np.testing.assert_array_equal(fastmlp.NeuralNetMLP.load(path).weight_h, model.weight_h)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastmlp.NeuralNetMLP.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("content", [b"", b"hello, world\n", b"PK\x03\x04garbage"])
def test_non_npz_file_raises_value_error(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a fastmlp model file"):
        fastmlp.NeuralNetMLP.load(path)


def test_other_numpy_files_raise_value_error(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        fastmlp.NeuralNetMLP.load(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="no format='fastmlp-mlp' entry"):
        fastmlp.NeuralNetMLP.load(tmp_path / "b.npz")


def test_truncated_file_raises_value_error(tmp_path):
    model, _ = trained_model()
    save_model(model, tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    for size in (1, 10, 100, len(data) // 2, len(data) - 100, len(data) - 1):
        (tmp_path / "t.npz").write_bytes(data[:size])
        with pytest.raises(ValueError, match="t.npz: "):
            fastmlp.NeuralNetMLP.load(tmp_path / "t.npz")


@pytest.mark.parametrize("change, message", [
    ({"weight_h": np.zeros((7, 29))}, r"weight_h is float64 of shape \(7, 29\).*\(7, 30\)"),
    ({"bias_out": np.zeros(5)}, r"bias_out is float64 of shape \(5,\).*\(4,\)"),
    ({"num_hidden": np.array(8)}, r"weight_h .* shape \(8, 30\)"),
    ({"weight_out": np.zeros((4, 7), np.float32)}, "weight_out is float32"),
    ({"format_version": np.array(0)}, "format version 0"),
    ({"format": np.array("other")}, "not a fastmlp model file"),
    ({"activation": np.array("tanh")}, "activation must be one of"),
    ({"dtype": np.array("int32")}, "dtype must be"),
    ({"num_classes": np.array([4, 4])}, "num_classes has shape"),
    ({"num_features": np.array(0)}, "num_features must be >= 1"),
])
def test_inconsistent_version_1_file_raises_value_error(tmp_path, change, message):
    model, _ = trained_model()
    np.savez(tmp_path / "bad.npz", **{**v1_file(model, tmp_path / "m.npz"), **change})
    with pytest.raises(ValueError, match=message):
        fastmlp.NeuralNetMLP.load(tmp_path / "bad.npz")


def test_missing_entry_raises_value_error(tmp_path):
    model, _ = trained_model()
    data = v1_file(model, tmp_path / "m.npz")
    del data["bias_h"]
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(ValueError, match="incomplete fastmlp model file: no bias_h"):
        load_model(tmp_path / "bad.npz", fastmlp.NeuralNetMLP)
    save_model(model, tmp_path / "m.npz")
    data = arrays_of(tmp_path / "m.npz")
    del data["intercept_1"], data["loss"]
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(ValueError, match="incomplete fastmlp model file: no loss"):
        load_model(tmp_path / "bad.npz", fastmlp.NeuralNetMLP)


def test_save_rejects_an_inconsistent_model(tmp_path):
    model, _ = trained_model()
    model.bias_h = np.zeros(3)
    with pytest.raises(ValueError, match="bias_h"):
        save_model(model, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_history_round_trip(tmp_path):
    history = {"epoch_loss": [np.float64(0.05), 0.03], "epoch_train_acc": np.array([76.5, 85.0]),
               "test_acc": None, "options": {"dataset": "digits", "lr": 0.1}}
    save_history(history, tmp_path / "history.json")
    assert load_history(tmp_path / "history.json") == {
        "epoch_loss": [0.05, 0.03], "epoch_train_acc": [76.5, 85.0], "test_acc": None,
        "options": {"dataset": "digits", "lr": 0.1}}
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        save_history({"bad": object()}, tmp_path / "history.json")
    assert load_history(tmp_path / "history.json")["test_acc"] is None  # old file intact


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_model_methods_save_load_and_predict(tmp_path, dtype):
    model, X = trained_model(dtype=dtype, activation="relu")
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastmlp.NeuralNetMLP.load(path)
    assert type(loaded) is fastmlp.NeuralNetMLP and loaded.dtype == dtype
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.forward(X)[1], model.forward(X)[1])
