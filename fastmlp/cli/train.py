"""``fastmlp train``: the chapter's job on the command line, and general networks.

Load MNIST, normalise it, split it 55000/5000/10000, train
``NeuralNetMLP(784, 50, 10)`` for 40 epochs after ``np.random.seed(123)``,
print the chapter's per-epoch lines and the test accuracy, then save the
model, the history and the chapter's figures. On scikit-learn's 8x8 digits
(the fallback when MNIST cannot be had) the options left unset take
:data:`DIGITS_SETTINGS` instead of the chapter's, which are for MNIST.
Options beyond the chapter's network (``--hidden 256,128``, ``--loss
log_loss``, ``--solver adam``, ...) train a :class:`fastmlp.network.Network`
through the same loop (:mod:`fastmlp.cli.deep`).
"""
import argparse
import contextlib
import copy
import importlib.util
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import datasets, training
from ..persistence import save_history
from ..threads import get_num_threads, set_num_threads
from ..threads import max_threads as threads_max
from . import deep
from .arguments import (EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CLIError, HelpFormatter, int_in,
                        positive_float, widths)
from .backends import BACKENDS
from .console import InterruptFlag, Progress, silent

PIECE_SECONDS = 0.1
"""Target duration of one compiled call: how often training checks for Ctrl-C, redraws its bar."""
FIGURES = ("classes.png", "digit7.png", "loss.png", "accuracy.png", "misclassified.png",
           "pca3d.png")
"""The figures ``fastmlp train`` writes, plus ``pca3d.html`` when plotly is installed."""
CHAPTER_SETTINGS = {"epochs": 40, "lr": 0.1, "batch_size": 100}
"""The chapter's run, for MNIST's 55,000 training images."""
DIGITS_SETTINGS = {"epochs": 40, "lr": 1.0, "batch_size": 100}
"""For the 1,412 training images of the 8x8 digits, whose 14 steps an epoch leave the model
underfit at the chapter's learning rate (figures in docs/trainer.md); same batch size, so the
same compiled kernels as the chapter's run."""
ADAM_LR = {"mnist": 0.001, "digits": 0.01}
"""``--solver adam``'s learning rate when not given: scikit-learn's ``learning_rate_init`` on
MNIST; ten times that on the digits fallback, whose 14 steps an epoch it leaves at chance for
the first epochs."""


def add_train_command(subparsers):
    """Register ``train`` on `subparsers`."""
    p = subparsers.add_parser(
        "train", formatter_class=HelpFormatter,
        help="train the chapter's MLP, print its epochs and test accuracy, save model and figures",
        description="Train the chapter's MLP exactly as the chapter does (the defaults are its "
                    "run), print its per-epoch lines and the test accuracy, and write the model, "
                    "the history and the chapter's figures to --out. Options beyond the "
                    "chapter's network (several hidden layers, tanh or identity, log_loss, adam, "
                    "momentum, alpha) train a general network in the same loop. Ctrl-C stops "
                    "between training steps and saves what was trained (exit status 130).")
    p.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                   help="mnist, or scikit-learn's 8x8 digits (mnist falls back to the digits, "
                        "with a notice, when it is neither configured nor downloadable)")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"folder with the four MNIST IDX files (default: ${datasets.ENV_VAR}, "
                        f"else download with scikit-learn's fetch_openml)")
    p.add_argument("--hidden", type=widths, default="50", metavar="N[,N...]",
                   help="hidden units: one width, or one per hidden layer (256,128)")
    p.add_argument("--activation", choices=("sigmoid", "logistic", "relu", "tanh", "identity"),
                   default="sigmoid",
                   help="hidden-layer activation (relu is the chapter's exercise; logistic is "
                        "sigmoid)")
    fallback = "the chapter's {}; {} on the digits fallback"
    p.add_argument("--epochs", type=int_in(1), metavar="N",
                   help=f"training epochs (default: "
                        f"{fallback.format(CHAPTER_SETTINGS['epochs'], DIGITS_SETTINGS['epochs'])})")
    p.add_argument("--lr", type=positive_float,
                   help=f"learning rate (default: "
                        f"{fallback.format(CHAPTER_SETTINGS['lr'], DIGITS_SETTINGS['lr'])}; "
                        f"with --solver adam {ADAM_LR['mnist']}, {ADAM_LR['digits']} on the "
                        f"digits fallback)")
    p.add_argument("--batch-size", type=int_in(1), metavar="N",
                   help="training minibatch size (the evaluation uses 100, as in the chapter; "
                        "default: " + fallback.format(CHAPTER_SETTINGS['batch_size'],
                                                      DIGITS_SETTINGS['batch_size']) + ")")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=123,
                   help="np.random.seed before training: the order of every epoch and "
                        "evaluation. The initial weights always come from the model's own "
                        "seed, 123, and the split from random_state=123, as in the chapter")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the weights and arithmetic (float32 is faster and "
                        "differs in the last digits; numba backend only)")
    p.add_argument("--threads", type=int_in(1), metavar="N",
                   help="threads for the kernels and BLAS (default: Numba's, all cores)")
    p.add_argument("--backend", choices=("numba", "numpy"), default="numba",
                   help="numba: fastmlp's kernels; numpy: the chapter's pure-NumPy code "
                        "(fastmlp.reference; for other networks fastmlp.reference_deep), same "
                        "numbers, slower")
    deep.add_options(p)
    p.add_argument("--out", default="fastmlp-out", metavar="DIR",
                   help="folder for model.npz, history.json and the figures (created if needed)")
    p.add_argument("--no-plots", action="store_true",
                   help="write only model.npz and history.json, no figures")
    p.add_argument("--quiet", action="store_true",
                   help="print only the test accuracy and the time (no epochs, no progress bar)")
    p.add_argument("--compare", action="store_true",
                   help="then time the NumPy reference on the same job and print the speedup "
                        "and whether the printed results agree")
    p.set_defaults(func=run_train)


def resolve_settings(args, fell_back):
    """Fill the unset ``epochs``, ``lr`` and ``batch_size`` of `args`; return what was filled.

    The chapter's (:data:`CHAPTER_SETTINGS`), or on the digits fallback
    (`fell_back`) :data:`DIGITS_SETTINGS`; with Adam, its learning rate
    (:data:`ADAM_LR`).
    """
    settings = DIGITS_SETTINGS if fell_back else CHAPTER_SETTINGS
    if args.solver == "adam":
        settings = {**settings, "lr": ADAM_LR["digits" if fell_back else "mnist"]}
    filled = {key: value for key, value in settings.items() if getattr(args, key) is None}
    for key, value in filled.items():
        setattr(args, key, value)
    return filled


@dataclass
class Data:
    """The normalised data set and the chapter's three-way split of it."""

    name: str
    X: np.ndarray
    y: np.ndarray
    image_shape: tuple
    X_train: np.ndarray
    X_valid: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_valid: np.ndarray
    y_test: np.ndarray
    notice: str = None


def split_sizes(num_examples):
    """Test and validation sizes in the chapter's proportions: (10000, 5000) for MNIST's 70000.

    Test: 1/7 of all examples; validation: 1/12 of the rest (1797 digits: 257 and 128).
    """
    test_size = round(num_examples / 7)
    return test_size, round((num_examples - test_size) / 12)


def load_data(dataset, data_dir=None):
    """Load, normalise and split a data set as the chapter does (see :class:`Data`).

    Raises
    ------
    CLIError
        If the MNIST files are missing, unreadable or corrupt.
    """
    try:
        X, y, image_shape, notice = datasets.load_dataset(dataset, data_dir)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot load {dataset}: {exc}") from None
    X = datasets.normalize(X)
    test_size, valid_size = split_sizes(len(X))
    parts = datasets.train_valid_test_split(X, y, test_size=test_size, valid_size=valid_size)
    name = "MNIST" if image_shape == (28, 28) else "scikit-learn's 8x8 digits"
    return Data(name, X, y, image_shape, *parts, notice=notice)


def select_backend(args, name=None):
    """The backend `name` (default: ``args.backend``) for the network the options of `args` ask for.

    The chapter's ``NeuralNetMLP`` (:data:`BACKENDS`) when they are its
    configuration, else the general network's (:func:`fastmlp.cli.deep.backend`).
    """
    name = name or args.backend
    return BACKENDS[name] if deep.is_chapter(args) else deep.backend(name, args)


@dataclass
class Run:
    """The outcome of :func:`train_job`; the seconds split the time it took."""

    model: object
    history: training.History = field(default_factory=training.History)
    test_acc: float = None  # in %
    warm_up_seconds: float = 0.0  # loading or compiling the kernels, before the timed part
    prepare_seconds: float = 0.0  # validating the data and allocating the workspaces
    test_seconds: float = 0.0  # the test evaluation

    @property
    def train_seconds(self):
        """Preparing the trainer, then the SGD steps and the shuffles."""
        return self.prepare_seconds + self.history.train_seconds

    @property
    def seconds(self):
        """The timed part: training, the per-epoch evaluations and the test evaluation."""
        return self.train_seconds + self.history.eval_seconds + self.test_seconds

    @property
    def interrupted(self):
        return self.history.interrupted


def train_job(backend, data, args, show=print, progress=None, interrupt=None):
    """Build the model, load its kernels, run the chapter's loop and the test evaluation.

    The random draws are :func:`fastmlp.train`'s: ``np.random.seed(args.seed)``,
    then :func:`fastmlp.training.train_epochs`, then one shuffle for the test
    evaluation. Each epoch runs in compiled pieces of about PIECE_SECONDS,
    between which Ctrl-C (`interrupt`) is seen: the run then stops with the
    epochs completed so far (no test evaluation).

    Parameters
    ----------
    backend : Backend
    data : Data
    args : argparse.Namespace
        ``hidden``, ``activation``, ``dtype``, ``seed``, ``lr``, ``batch_size``,
        ``epochs`` and ``quiet``.
    show : callable, default print
        Receives each of the chapter's epoch lines.
    progress : Progress, optional
    interrupt : InterruptFlag, optional

    Returns
    -------
    Run
    """
    num_classes = int(data.y.max()) + 1
    with contextlib.redirect_stdout(io.StringIO()) if args.quiet else contextlib.nullcontext():
        net = backend.make_model(data.X.shape[1], args.hidden, num_classes, args.activation,
                                 np.dtype(args.dtype).type)  # prints "Model initialization"
    run = Run(net)
    start = time.perf_counter()
    _warm_up(backend, net, data, args)
    run.warm_up_seconds = time.perf_counter() - start
    np.random.seed(args.seed)  # for the training set shuffling, as in the chapter
    start = time.perf_counter()
    trainer = backend.trainer(net, data.X_train, data.y_train, args.lr, args.batch_size)
    X_valid, y_valid = trainer.check_data(data.X_valid, data.y_valid, "X_valid", "y_valid")
    run.prepare_seconds = time.perf_counter() - start
    run.history = training.train_epochs(
        trainer, X_valid, y_valid, args.epochs, backend.permutation, show=show,
        loss_name=backend.loss_name, piece_seconds=PIECE_SECONDS, progress=progress,
        stop=(lambda: interrupt.requested) if interrupt else None)
    if run.interrupted is None:
        start = time.perf_counter()
        _, test_acc = backend.compute_mse_and_acc(net, data.X_test, data.y_test,
                                                  num_labels=num_classes)
        run.test_seconds = time.perf_counter() - start
        run.test_acc = float(test_acc * 100)
    return run


def _warm_up(backend, net, data, args):
    """Load (or compile) the kernels, untimed: one step and one evaluation on a copy of `net`.

    Draws from ``np.random``; the run seeds it afterwards.
    """
    size = args.batch_size
    trainer = backend.trainer(copy.deepcopy(net), data.X_train[:size], data.y_train[:size],
                              args.lr, size)
    trainer.run(np.arange(size, dtype=np.int64))
    trainer.evaluate(*trainer.check_data(data.X_valid, data.y_valid))


def _check_train_options(args):
    """Reject option combinations and paths that cannot work, before any data is loaded.

    Creates ``args.out`` if needed and returns it as a Path.
    """
    deep.check_options(args)
    if args.backend == "numpy" and args.dtype != "float64":
        raise CLIError("--dtype float32 needs --backend numba (the NumPy reference computes "
                       "in float64)", EXIT_USAGE)
    if args.backend == "numpy" and args.compare:
        raise CLIError("--compare times the numba backend against the NumPy reference; "
                       "drop --backend numpy", EXIT_USAGE)
    max_threads = threads_max()
    if args.threads is not None and args.threads > max_threads:
        raise CLIError(f"--threads must be at most {max_threads} (the threads Numba may use; "
                       f"set NUMBA_NUM_THREADS to raise it), got {args.threads}", EXIT_USAGE)
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise CLIError(f"--data-dir {args.data_dir!r} is not a folder", EXIT_USAGE)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a folder", EXIT_USAGE)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / ".fastmlp-write-test", "wb"):
            pass
        (out / ".fastmlp-write-test").unlink()
    except OSError as exc:
        raise CLIError(f"--out {args.out!r} is not writable ({exc.strerror or exc})",
                       EXIT_USAGE) from None
    return out


def _history(run, args):
    """The JSON history of a run: per-epoch values, test accuracy (in %), time and options."""
    options = {key: value for key, value in vars(args).items() if key not in ("func", "started")}
    history = run.history
    return {"epoch_loss": [float(v) for v in history.epoch_loss],
            "epoch_train_acc": [float(v) for v in history.epoch_train_acc],
            "epoch_valid_acc": [float(v) for v in history.epoch_valid_acc],
            "test_acc": run.test_acc, "interrupted": run.interrupted is not None,
            "wall_time_s": run.seconds, "options": options}


def write_figures(out, net, data, run, loss_label="Mean squared error"):
    """Write the chapter's figures (:data:`FIGURES`, and ``pca3d.html`` with plotly) to `out`.

    `net` has the chapter model's ``forward``; `loss_label` is the loss figure's axis label.

    Returns
    -------
    list of str
        The file names written.
    """
    from .. import plots

    history = run.history
    makers = {
        "classes.png": lambda: plots.plot_class_examples(data.X, data.y, data.image_shape),
        "digit7.png": lambda: plots.plot_digit_variants(data.X, data.y, 7, data.image_shape),
        "loss.png": lambda: plots.plot_loss(history.epoch_loss, loss_label),
        "accuracy.png": lambda: plots.plot_accuracy(history.epoch_train_acc,
                                                    history.epoch_valid_acc),
        "misclassified.png": lambda: plots.plot_misclassified(net, data.X_test, data.y_test,
                                                              data.image_shape),
        "pca3d.png": lambda: plots.plot_pca_3d(data.X_test, data.y_test),
    }
    for name in FIGURES:
        plots.save_figure(makers[name](), out / name)
    if importlib.util.find_spec("plotly") is None:
        return list(FIGURES)
    plots.write_pca_html(data.X_test, data.y_test, out / "pca3d.html")
    return [*FIGURES, "pca3d.html"]


def run_train(args):
    """``fastmlp train``: see :func:`add_train_command` and the module docstring."""
    out = _check_train_options(args)
    if args.threads is not None:
        set_num_threads(args.threads)
    show = silent if args.quiet else print
    start = time.perf_counter()
    data = load_data(args.dataset, args.data_dir)
    data_seconds = time.perf_counter() - start
    if data.notice:
        print(data.notice, file=sys.stderr)
    filled = resolve_settings(args, fell_back=data.notice is not None)
    if data.notice and filled:
        print(f"Settings for the digits: {_settings(filled)} (the chapter's "
              f"{_settings(CHAPTER_SETTINGS)} are for MNIST's 55,000 images)", file=sys.stderr)
    show(f"Data: {data.name}, {len(data.X_train)} training, {len(data.X_valid)} validation "
         f"and {len(data.X_test)} test images of {data.image_shape[0]}x{data.image_shape[1]} "
         f"pixels")
    if args.batch_size > len(data.X_train):
        raise CLIError(f"--batch-size {args.batch_size} is larger than the "
                       f"{len(data.X_train)} training examples", EXIT_USAGE)
    backend = select_backend(args)
    progress = Progress(sys.stderr, enabled=not args.quiet and sys.stderr.isatty())
    with InterruptFlag() as interrupt:
        run = train_job(backend, data, args, show, progress, interrupt)
        if interrupt.requested and run.interrupted is None:
            run.history.interrupted = "after the test evaluation"
    start = time.perf_counter()
    backend.save(run.model, out / "model.npz")
    save_history(_history(run, args), out / "history.json")
    if run.interrupted:
        print(f"Interrupted {run.interrupted}: saved the model and the history of "
              f"{len(run.history.epoch_loss)} completed epochs to {out}")
        return EXIT_INTERRUPTED
    print(f'Test accuracy: {run.test_acc:.2f}%')
    written = ["model.npz", "history.json"]
    if not args.no_plots:
        written += write_figures(out, backend.plot_model(run.model), data, run,
                                 "Mean squared error" if args.loss == "mse" else "Log-loss")
    show(f"Wrote {', '.join(written)} to {out}")
    print(_wall_time_line(args, backend, run, data_seconds, time.perf_counter() - start))
    if args.compare:
        return _compare(run, data, args, progress)
    return EXIT_OK


def _settings(settings):
    return (f"learning rate {settings['lr']}, minibatches of {settings['batch_size']}, "
            f"{settings['epochs']} epochs")


def _wall_time_line(args, backend, run, data_seconds, output_seconds):
    """The final line: the time the user waited (from ``args.started``), split by what it went to.

    ``startup`` is the rest: mostly the interpreter and the imports (when the
    program started the process), then checking the options and building the model.
    """
    total = time.perf_counter() - args.started
    parts = {"data": data_seconds,
             "kernels" if backend.name == "numba" else "warm-up": run.warm_up_seconds,
             "training": run.train_seconds,
             "evaluation": run.history.eval_seconds + run.test_seconds,
             "output": output_seconds}
    parts = {"startup": max(0.0, total - sum(parts.values())), **parts}
    split = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in parts.items())
    details = args.dtype
    if backend.name == "numba":
        threads = get_num_threads()
        details += f", {threads} thread{'s' if threads > 1 else ''}"
    epochs = f"{args.epochs} epoch{'s' if args.epochs > 1 else ''}"
    return (f"Wall time: {total:.2f} s ({split}) for {epochs} on {backend.description}, "
            f"{details}")


def _compare(run, data, args, progress):
    """Time the NumPy reference on the job `run` did and print the speedup (``--compare``)."""
    ref_backend = select_backend(args, "numpy")
    module = "fastmlp.reference" if deep.is_chapter(args) else "fastmlp.reference_deep"
    print(f"Timing {ref_backend.description} ({module}) on the same job...")
    quiet_args = argparse.Namespace(**{**vars(args), "quiet": True})
    with InterruptFlag() as interrupt:
        ref = train_job(ref_backend, data, quiet_args, silent, progress, interrupt)
    if ref.interrupted:
        print(f"Interrupted the reference run {ref.interrupted}; fastmlp's results are saved")
        return EXIT_INTERRUPTED
    speedup = ref.seconds / run.seconds
    slower = (" (on data this small, the kernels' fixed cost per step and per thread outweighs "
              "the arithmetic)" if speedup < 1 else "")
    print(f"NumPy reference: {ref.seconds:.2f} s | fastmlp: {run.seconds:.2f} s "
          f"(training and evaluation) | speedup: {speedup:.3g}x{slower}")
    same = "yes" if ((ref.history.lines, f"{ref.test_acc:.2f}")
                     == (run.history.lines, f"{run.test_acc:.2f}")) else "no"
    note = " (fastmlp ran in float32, the reference in float64)" if args.dtype != "float64" else ""
    print(f"Same epoch lines and test accuracy as the reference: {same}{note}")
    return EXIT_OK
