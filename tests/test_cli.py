"""Tests of the ``fastmlp`` command line (``fastmlp train``) on the 8x8 digits."""
import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fastmlp
from fastmlp import cli, datasets, reference
from fastmlp.cli import console, parser, train

from tests.conftest import REPO, quiet

DIGITS = ["--dataset", "digits"]
pytestmark = pytest.mark.usefixtures("one_kernel_thread")  # tiny data: see conftest


def run_cli(argv):
    """``(exit status, stdout, stderr)`` of ``fastmlp argv`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse: --help, usage errors
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def epoch_lines(text):
    return [line for line in text.splitlines() if line.startswith("Epoch:")]


@pytest.fixture(scope="module")
def digits_split():
    """The digits, normalised and split as ``fastmlp train --dataset digits`` must split them."""
    X, y, _, _ = datasets.load_dataset("digits")
    # the chapter's proportions: test 10000/70000 of 1797, validation 5000/60000 of the rest
    return datasets.train_valid_test_split(datasets.normalize(X), y, test_size=257,
                                           valid_size=128)


def chapter_run(split, make_model, train, compute_mse_and_acc, seed=123, **train_kwargs):
    """The chapter's code on `split`: its printed epoch lines, test accuracy line and model."""
    X_train, X_valid, X_test, y_train, y_valid, y_test = split
    model = quiet(make_model)
    np.random.seed(seed)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        train(model, X_train, y_train, X_valid, y_valid, **train_kwargs)
    _, test_acc = compute_mse_and_acc(model, X_test, y_test)
    return epoch_lines(out.getvalue()), f"Test accuracy: {test_acc*100:.2f}%", model


def test_split_sizes_are_the_chapters_proportions():
    assert train.split_sizes(70000) == (10000, 5000)
    assert train.split_sizes(1797) == (257, 128)


@pytest.mark.parametrize("options, model_kwargs, train_kwargs, seed", [
    ([], {}, {"num_epochs": 3}, 123),
    (["--hidden", "20", "--activation", "relu", "--lr", "0.3", "--batch-size", "64",
      "--seed", "7", "--dtype", "float32"],
     {"num_hidden": 20, "activation": "relu", "dtype": np.float32},
     {"num_epochs": 3, "learning_rate": 0.3, "minibatch_size": 64}, 7),
])
def test_epoch_lines_equal_fastmlp_train(tmp_path, digits_split, options, model_kwargs,
                                         train_kwargs, seed):
    status, out, err = run_cli(["train", *DIGITS, "--epochs", "3", "--no-plots",
                                "--out", str(tmp_path), *options])
    assert status == 0, err
    kwargs = {"num_features": 64, "num_hidden": 50, "num_classes": 10, **model_kwargs}
    lines, test_line, model = chapter_run(digits_split, lambda: fastmlp.NeuralNetMLP(**kwargs),
                                          fastmlp.train, fastmlp.compute_mse_and_acc, seed,
                                          **train_kwargs)
    assert len(lines) == 3
    assert epoch_lines(out) == lines
    assert test_line in out.splitlines()
    assert "Model initialization" in out
    saved = fastmlp.NeuralNetMLP.load(tmp_path / "model.npz")
    for name in ("weight_h", "bias_h", "weight_out", "bias_out"):
        np.testing.assert_array_equal(getattr(saved, name), getattr(model, name))
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["epoch_loss"]) == len(history["epoch_valid_acc"]) == 3
    assert f"Test accuracy: {history['test_acc']:.2f}%" == test_line
    assert history["interrupted"] is False
    assert history["options"]["seed"] == seed


def test_numpy_backend_prints_the_reference_lines(tmp_path, digits_split):
    status, out, err = run_cli(["train", *DIGITS, "--epochs", "2", "--no-plots",
                                "--backend", "numpy", "--out", str(tmp_path)])
    assert status == 0, err
    lines, test_line, model = chapter_run(digits_split,
                                          lambda: reference.NeuralNetMLP(64, 50, 10),
                                          reference.train, reference.compute_mse_and_acc,
                                          num_epochs=2)
    assert epoch_lines(out) == lines
    assert test_line in out.splitlines()
    np.testing.assert_array_equal(fastmlp.NeuralNetMLP.load(tmp_path / "model.npz").weight_h,
                                  model.weight_h)


def test_writes_model_history_and_figures(tmp_path):
    status, out, err = run_cli(["train", *DIGITS, "--epochs", "1", "--out", str(tmp_path)])
    assert status == 0, err
    names = {path.name for path in tmp_path.iterdir()}
    assert {"model.npz", "history.json", *train.FIGURES} <= names
    assert not [name for name in names if name.endswith(".tmp")]
    for name in train.FIGURES:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"to {tmp_path}" in out.splitlines()[-2]
    assert out.splitlines()[-1].startswith("Wall time: ")


def test_quiet_prints_only_the_results(tmp_path):
    status, out, err = run_cli(["train", *DIGITS, "--epochs", "2", "--no-plots", "--quiet",
                                "--out", str(tmp_path)])
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Test accuracy: ") and lines[1].startswith("Wall time: ")


def test_compare_times_the_reference_and_checks_agreement(tmp_path):
    status, out, err = run_cli(["train", *DIGITS, "--epochs", "1", "--no-plots", "--compare",
                                "--out", str(tmp_path)])
    assert status == 0, err
    assert "speedup: " in out
    assert out.splitlines()[-1] == "Same epoch lines and test accuracy as the reference: yes"


def test_threads_option_sets_both_thread_pools(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(train, "set_num_threads", calls.append)
    status, _, err = run_cli(["train", *DIGITS, "--epochs", "1", "--no-plots", "--threads", "1",
                              "--out", str(tmp_path)])
    assert status == 0, err
    assert calls == [1]


def test_no_command_runs_train_with_the_chapters_defaults(monkeypatch):
    seen = []
    monkeypatch.setattr(train, "run_train", lambda args: seen.append(args) or 0)
    assert cli.main([]) == 0
    assert cli.main(["--epochs", "2"]) == 0
    defaults, two_epochs = seen
    assert train.resolve_settings(defaults, fell_back=False) == train.CHAPTER_SETTINGS
    assert (defaults.dataset, defaults.hidden, defaults.activation, defaults.epochs, defaults.lr,
            defaults.batch_size, defaults.seed, defaults.dtype, defaults.backend) == \
        ("mnist", (50,), "sigmoid", 40, 0.1, 100, 123, "float64", "numba")
    assert (defaults.loss, defaults.solver, defaults.momentum, defaults.nesterov,
            defaults.alpha) == ("mse", "sgd", 0, False, 0)
    assert train.select_backend(defaults) is train.BACKENDS["numba"]  # the chapter's model
    assert two_epochs.epochs == 2


def test_help_documents_every_option_with_its_default():
    status, out, _ = run_cli(["train", "--help"])
    assert status == 0
    text = " ".join(out.split())  # undo the line wrapping
    subparsers = argparse.ArgumentParser().add_subparsers()
    train.add_train_command(subparsers)
    actions = [action for action in subparsers.choices["train"]._actions
               if action.default != argparse.SUPPRESS]  # all but --help
    assert len(actions) == 23
    for action in actions:
        assert action.option_strings[-1] in text
        if action.default is not None:
            assert f"(default: {action.default})" in text, action.option_strings
    assert "(default: $FASTMLP_MNIST_DIR" in text and "(default: Numba's, all cores)" in text


@pytest.mark.parametrize("options, message", [
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--epochs", "0"], "--epochs"),
    (["--dataset", "cifar"], "--dataset"),
    (["--hidden", "0"], "--hidden"),
    (["--batch-size", "0"], "--batch-size"),
    (["--seed", "-1"], "--seed"),
    (["--threads", "0"], "--threads"),
    (["--threads", "100000"], "--threads"),
    (["--out", "{file}"], "is not a folder"),
    (["--out", "{file}/sub"], "not writable"),
    (["--data-dir", "{missing}"], "--data-dir"),
    (["--backend", "numpy", "--dtype", "float32"], "--dtype float32"),
    (["--backend", "numpy", "--compare"], "--compare"),
    (["--hidden", "10,,5"], "--hidden"),
    (["--hidden", "10,"], "--hidden"),
    (["--hidden", "10,-5"], "--hidden"),
    (["--hidden", "ten"], "--hidden"),
    (["--activation", "softmax"], "--activation"),
    (["--loss", "hinge"], "--loss"),
    (["--solver", "lbfgs"], "--solver"),
    (["--momentum", "1.5"], "--momentum"),
    (["--momentum", "-0.1"], "--momentum"),
    (["--alpha", "-1"], "--alpha"),
    (["--alpha", "inf"], "--alpha"),
    (["--beta1", "0.8"], "--beta1 is Adam's: add --solver adam"),
    (["--beta2", "0.9", "--epsilon", "1e-6"], "--beta2, --epsilon are Adam's"),
    (["--solver", "adam", "--beta1", "1"], "--beta1"),
    (["--solver", "adam", "--beta2", "-0.5"], "--beta2"),
    (["--solver", "adam", "--epsilon", "0"], "--epsilon"),
    (["--solver", "adam", "--momentum", "0.9"], "--momentum and --nesterov are for --solver sgd"),
    (["--solver", "adam", "--nesterov"], "--nesterov are for --solver sgd"),
    (["--nesterov"], "--nesterov needs --momentum > 0"),
])
def test_bad_options_give_one_line_before_loading_data(tmp_path, monkeypatch, options, message):
    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before the options were checked")
    monkeypatch.setattr(datasets, "load_dataset", no_loading)
    (tmp_path / "file").write_text("")
    paths = {"file": tmp_path / "file", "missing": tmp_path / "missing"}
    status, out, err = run_cli(["train", *[opt.format(**paths) for opt in options]])
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("fastmlp train: error: ") and message in err


def test_batch_larger_than_the_training_set_is_one_line(tmp_path):
    status, _, err = run_cli(["train", *DIGITS, "--batch-size", "5000", "--out", str(tmp_path)])
    assert status == 2
    assert err == ("fastmlp train: error: --batch-size 5000 is larger than the 1412 training "
                   "examples\n")


def test_missing_mnist_files_are_one_line(tmp_path):
    status, _, err = run_cli(["train", "--data-dir", str(tmp_path), "--out", str(tmp_path)])
    assert status == 1
    assert len(err.splitlines()) == 1 and "not found" in err


def test_bench_commands_are_optional(monkeypatch):
    for name in [name for name in sys.modules if name.startswith("fastmlp.benchmarks.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastmlp.benchmarks", None)  # import fails
    monkeypatch.delitem(sys.modules, "fastmlp.cli.bench", raising=False)
    monkeypatch.delattr(fastmlp, "benchmarks", raising=False)
    monkeypatch.delattr(cli, "bench", raising=False)
    status, _, err = run_cli(["bench", "--help"])
    assert status == 2 and "invalid choice: 'bench'" in err
    assert run_cli(["train", "--help"])[0] == 0


def test_offline_main_job_trains_the_digits_in_seconds(tmp_path):
    # no MNIST folder, an empty scikit-learn cache, and every download refused at once
    env = {key: value for key, value in os.environ.items()
           if key.lower() not in ("no_proxy", datasets.ENV_VAR.lower())}
    env.update(SCIKIT_LEARN_DATA=str(tmp_path / "sklearn"), http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9", NUMBA_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "fastmlp", "--no-plots", "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    download, settings = result.stderr.splitlines()  # nothing else: no warnings, no retries
    assert download.startswith("MNIST could not be downloaded (ConnectionError; ")
    assert download.endswith("using scikit-learn's 8x8 digits.")
    assert settings.startswith("Settings for the digits: learning rate 1.0, ") and \
        "are for MNIST" in settings
    lines = result.stdout.splitlines()
    assert len(epoch_lines(result.stdout)) == 40
    assert float(lines[-3].removeprefix("Test accuracy: ").rstrip("%")) >= 90
    parts = dict(re.findall(r"(\w+) (\d+\.\d\d) s", lines[-1]))
    # the one download attempt: scikit-learn's retries would wait a second each
    assert float(parts["data"]) < 1.0
    assert float(parts["startup"]) > 0.2  # counted from the process start: the imports count


def test_wall_time_counts_from_the_process_start_and_splits_it(tmp_path):
    status, out, err = run_cli(["train", *DIGITS, "--epochs", "2", "--no-plots", "--quiet",
                                "--out", str(tmp_path)])
    assert status == 0, err
    line = out.splitlines()[-1]
    threads = fastmlp.threads.get_num_threads()
    match = re.fullmatch(r"Wall time: (\d+\.\d\d) s \((.*)\) for 2 epochs on fastmlp's Numba "
                         rf"kernels, float64, {threads} threads?", line)
    assert match, line
    parts = dict((name, float(seconds)) for name, seconds in
                 re.findall(r"(\w[\w-]*) (\d+\.\d\d) s", match.group(2)))
    assert list(parts) == ["startup", "data", "kernels", "training", "evaluation", "output"]
    assert sum(parts.values()) == pytest.approx(float(match.group(1)), abs=0.04)
    started = console.process_start()
    assert 0 < time.perf_counter() - started < 1e5  # the interpreter's start, before this test
    # not later than this thread's CPU time allows (the process's counts every thread: a team
    # of kernel threads spends more CPU time than wall time)
    assert time.perf_counter() - started > time.thread_time() - 1


class StopAfter:
    """An interrupt flag that turns on after `checks` looks at it (a Ctrl-C at a known step)."""

    def __init__(self, checks):
        self.checks = checks

    @property
    def requested(self):
        self.checks -= 1
        return self.checks < 0


def test_interrupt_stops_between_steps_with_consistent_history(monkeypatch):
    monkeypatch.setattr(train, "PIECE_SECONDS", 0.0)  # one step per piece
    data = train.load_data("digits")
    args = parser.build_parser().parse_args(["train", *DIGITS, "--epochs", "5", "--quiet"])
    train.resolve_settings(args, fell_back=False)
    steps_per_epoch = 1412 // 100  # a check before each step, and one after each epoch
    run = train.train_job(train.BACKENDS["numba"], data, args, interrupt=StopAfter(
        2 * (steps_per_epoch + 1) + 3))
    assert run.interrupted == f"during epoch 3 (3/{steps_per_epoch} steps)"
    assert len(run.history.epoch_loss) == len(run.history.epoch_train_acc) == \
        len(run.history.lines) == 2
    assert run.test_acc is None


def test_ctrl_c_saves_the_model_and_history_and_exits_130(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastmlp", "train", *DIGITS, "--epochs", "100000", "--no-plots",
         "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=REPO, env=env)
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if line.startswith("Epoch: 003/"):
            proc.send_signal(signal.SIGINT)
            break
    # the rest through the same reader: communicate() reads the pipe itself and would lose
    # the lines this reader has already buffered
    killer = threading.Timer(60, proc.kill)  # a hung child fails the test instead of hanging it
    killer.start()
    try:
        rest, err = proc.stdout.read(), proc.stderr.read()
        proc.wait()
    finally:
        killer.cancel()
    printed += rest.splitlines(keepends=True)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert printed[-1].startswith("Interrupted ")
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["interrupted"] is True and history["test_acc"] is None
    assert len(history["epoch_loss"]) == len(epoch_lines("".join(printed))) >= 3
    assert f"history of {len(history['epoch_loss'])} completed epochs" in printed[-1]
    assert fastmlp.NeuralNetMLP.load(Path(tmp_path, "model.npz")).weight_h.shape == (50, 64)


def test_progress_bar_appears_only_after_the_delay(monkeypatch):
    stream = io.StringIO()
    bar = console.Progress(stream, enabled=True)
    bar.begin("Epoch 001/040")
    bar.update(10, 550)
    assert stream.getvalue() == ""  # the epoch has not yet run for PROGRESS_DELAY seconds
    monkeypatch.setattr(console, "PROGRESS_DELAY", -1.0)
    bar.update(275, 550)
    assert stream.getvalue().startswith("\rEpoch 001/040 [###############...............]  50%")
    bar.clear()
    assert stream.getvalue().endswith("\r\033[K")
    silent = io.StringIO()
    disabled = console.Progress(silent, enabled=False)
    disabled.begin("Epoch 001/040")
    disabled.update(275, 550)
    assert silent.getvalue() == ""


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "fastmlp", "--version"], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"fastmlp {fastmlp.__version__}"
