"""``fastmlp train`` on general networks (``--hidden 32,16 --loss log_loss --solver adam ...``)."""
import json

import numpy as np
import pytest

import fastmlp
from fastmlp.cli import deep, parser, train
from fastmlp.cli.console import silent
from fastmlp.persistence import load_network, save_network

from tests.test_cli import DIGITS, epoch_lines, run_cli

pytestmark = pytest.mark.usefixtures("one_kernel_thread")  # tiny data: see conftest
ADAM = ["--hidden", "32,16", "--loss", "log_loss", "--solver", "adam", "--lr", "0.01"]


def parse(*options):
    """``fastmlp train`` options parsed, with the unset settings filled as for MNIST."""
    args = parser.build_parser().parse_args(["train", *options])
    train.resolve_settings(args, fell_back=False)
    return args


def trained(options, monkeypatch=None, piece_seconds=None):
    """The Run of ``fastmlp train --dataset digits options``, trained in this process."""
    if piece_seconds is not None:
        monkeypatch.setattr(train, "PIECE_SECONDS", piece_seconds)
    args = parse(*DIGITS, "--quiet", *options)
    return train.train_job(train.select_backend(args), train.load_data("digits"), args,
                           show=silent)


def test_adam_on_two_hidden_layers_trains_saves_and_loads(tmp_path):
    status, out, err = run_cli(["train", *DIGITS, *ADAM, "--epochs", "2", "--no-plots",
                                "--out", str(tmp_path)])
    assert status == 0, err
    lines = epoch_lines(out)
    assert len(lines) == 2 and all("| Train log-loss: " in line for line in lines)
    assert "Network: 64-32-16-10, sigmoid hidden layers, log_loss, Adam, learning rate 0.01" \
        in out.splitlines()
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["test_acc"] > 50  # ten classes: chance is 10%
    assert history["epoch_loss"][1] < history["epoch_loss"][0]
    saved = load_network(tmp_path / "model.npz")
    assert saved.units.tolist() == [64, 32, 16, 10]
    assert (saved.activation, saved.loss, saved.alpha) == ("sigmoid", "log_loss", 0.0)
    # the network the command trained: the same run in this process
    run = trained([*ADAM, "--epochs", "2"])
    np.testing.assert_array_equal(saved.params, run.model.params)
    data = train.load_data("digits")
    X_test, y_test = data.X_test, data.y_test
    predicted = saved.forward_output(X_test).argmax(axis=1)
    np.testing.assert_array_equal(predicted, run.model.forward_output(X_test).argmax(axis=1))
    assert f"{100 * np.mean(predicted == y_test):.2f}" == f"{history['test_acc']:.2f}"
    with pytest.raises(ValueError, match="load_network"):
        fastmlp.NeuralNetMLP.load(tmp_path / "model.npz")  # not the chapter's architecture


@pytest.mark.parametrize("options", [
    ["--hidden", "50,20"], ["--activation", "tanh"], ["--activation", "identity"],
    ["--loss", "log_loss"], ["--solver", "adam"], ["--momentum", "0.5"],
    ["--momentum", "0.5", "--nesterov"], ["--alpha", "0.1"],
])
def test_each_option_beyond_the_chapter_trains_a_general_network(options):
    args = parse(*options)
    assert not deep.is_chapter(args)
    assert train.select_backend(args).save is save_network
    assert train.select_backend(args, "numpy").trainer is not train.BACKENDS["numpy"].trainer


def test_the_chapters_values_given_explicitly_are_the_chapters_run(tmp_path):
    explicit = ["--hidden", "50", "--activation", "logistic", "--loss", "mse", "--solver", "sgd",
                "--momentum", "0", "--alpha", "0"]
    assert train.select_backend(parse(*explicit)) is train.BACKENDS["numba"]
    results = []
    for name, options in (("default", []), ("explicit", explicit)):
        status, out, err = run_cli(["train", *DIGITS, "--epochs", "2", "--no-plots",
                                    "--out", str(tmp_path / name), *options])
        assert status == 0, err
        assert "Model initialization" in out and "| Train MSE: " in out
        results.append((epoch_lines(out), out.splitlines()[-3]))
    assert results[0] == results[1]
    weights = [fastmlp.NeuralNetMLP.load(tmp_path / name / "model.npz").weight_h
               for name in ("default", "explicit")]
    np.testing.assert_array_equal(*weights)


def test_numpy_backend_trains_the_same_network_in_numpy(tmp_path):
    options = ["--hidden", "20,10", "--activation", "tanh", "--momentum", "0.9", "--nesterov",
               "--alpha", "0.01", "--epochs", "2"]
    numba, numpy = trained(options), trained([*options, "--backend", "numpy"])
    assert type(numpy.model) is type(numba.model)
    np.testing.assert_allclose(numpy.model.params, numba.model.params, rtol=0, atol=1e-10)
    assert numpy.history.lines == numba.history.lines
    assert numpy.test_acc == numba.test_acc


def test_pieces_of_any_size_train_alike(monkeypatch):
    options = [*ADAM, "--epochs", "2", "--batch-size", "64"]
    steps = trained(options, monkeypatch, piece_seconds=0.0)  # one step per piece
    whole = trained(options, monkeypatch, piece_seconds=1e9)  # pieces of 1, then 10, 100 steps
    np.testing.assert_array_equal(steps.model.params, whole.model.params)
    assert steps.history.lines == whole.history.lines
