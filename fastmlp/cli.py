"""The ``fastmlp`` command line.

``fastmlp train`` runs the chapter's job: load MNIST, normalise it, split it
55000/5000/10000, train ``NeuralNetMLP(784, 50, 10)`` for 40 epochs after
``np.random.seed(123)``, print the chapter's per-epoch lines and the test
accuracy, then save the model, the history and the chapter's figures. A bare
``fastmlp`` (or ``fastmlp --epochs 5 ...``) runs ``train``.

The ``bench`` and ``compare`` subcommands come from :mod:`fastmlp.benchmark`
(see :func:`_add_bench`). Every subcommand's parser sets ``func``: a callable
that takes the parsed arguments and returns the exit status. Parsers use
:class:`HelpFormatter` (every default shown) and report a usage error as one
line on stderr (exit status 2).
"""
import argparse
import contextlib
import copy
import importlib.util
import io
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from . import __version__, datasets, model, reference
from .persistence import save_history, save_model
from .threads import set_num_threads

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PIECE_SECONDS = 0.1
"""Target duration of one compiled call: how often training checks for Ctrl-C, redraws its bar."""
PROGRESS_DELAY = 1.0
"""Seconds an epoch runs before its progress bar appears."""
FIGURES = ("classes.png", "digit7.png", "loss.png", "accuracy.png", "misclassified.png",
           "pca3d.png")
"""The figures ``fastmlp train`` writes, plus ``pca3d.html`` when plotly is installed."""


class CLIError(Exception):
    """A failure to report as one line on stderr, with exit status ``status``."""

    def __init__(self, message, status=EXIT_ERROR):
        super().__init__(message)
        self.status = status


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show every option's default, except ``None`` (the help text says what it means)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_in(minimum, maximum=None):
    """An argparse ``type``: an integer in ``[minimum, maximum]`` (no upper bound when None)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}, got {text!r}")
        return value
    return parse


def _positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def build_parser():
    """The ``fastmlp`` parser, with ``train`` and, when available, ``bench`` and ``compare``."""
    parser = _Parser(prog="fastmlp", formatter_class=HelpFormatter,
                     description="The textbook chapter's MNIST multi-layer perceptron on "
                                 "fast Numba kernels. Without a command, runs 'train'.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_command(subparsers)
    _add_bench(subparsers)
    return parser


def add_train_command(subparsers):
    """Register ``train`` on `subparsers`."""
    p = subparsers.add_parser(
        "train", formatter_class=HelpFormatter,
        help="train the chapter's MLP, print its epochs and test accuracy, save model and figures",
        description="Train the chapter's MLP exactly as the chapter does (the defaults are its "
                    "run), print its per-epoch lines and the test accuracy, and write the model, "
                    "the history and the chapter's figures to --out. Ctrl-C stops between "
                    "training steps and saves what was trained (exit status 130).")
    p.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                   help="mnist, or scikit-learn's 8x8 digits (mnist falls back to the digits, "
                        "with a notice, when it is neither configured nor downloadable)")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"folder with the four MNIST IDX files (default: ${datasets.ENV_VAR}, "
                        f"else download with scikit-learn's fetch_openml)")
    p.add_argument("--hidden", type=int_in(1), default=50, metavar="N",
                   help="hidden units")
    p.add_argument("--activation", choices=("sigmoid", "relu"), default="sigmoid",
                   help="hidden-layer activation (relu is the chapter's exercise)")
    p.add_argument("--epochs", type=int_in(1), default=40, metavar="N",
                   help="training epochs")
    p.add_argument("--lr", type=_positive_float, default=0.1, help="SGD learning rate")
    p.add_argument("--batch-size", type=int_in(1), default=100, metavar="N",
                   help="training minibatch size (the evaluation uses 100, as in the chapter)")
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
                        "(fastmlp.reference), same numbers, slower")
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


def _add_bench(subparsers):
    """Register ``bench`` and ``compare`` from :mod:`fastmlp.benchmark`, if that module exists.

    ``fastmlp.benchmark.add_commands(subparsers)`` adds the parsers (with
    ``formatter_class=HelpFormatter`` and a ``func`` default). Without the
    module, the commands are absent; an error inside it is raised.
    """
    try:
        from . import benchmark
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.benchmark":
            raise
        return
    benchmark.add_commands(subparsers)


def main(argv=None):
    """Run the command line; return the exit status (the console script exits with it).

    Parameters
    ----------
    argv : list of str, optional
        The arguments, without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on a failure (missing or corrupt data, ...), 2 on a
        usage error, 130 when interrupted with Ctrl-C.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["train", *argv]  # the main job
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"fastmlp {args.command}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


# ---------------------------------------------------------------- fastmlp train

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


class ReferenceTrainer:
    """:class:`fastmlp.model.EpochTrainer`'s interface over the chapter's pure-NumPy step.

    :meth:`run` does what one pass of :func:`fastmlp.reference.train`'s
    minibatch loop does, for the steps asked for; :meth:`evaluate` is the
    reference's ``compute_mse_and_acc``. The numbers are the reference's, bit
    for bit.

    Parameters
    ----------
    model : fastmlp.reference.NeuralNetMLP
    X, y : numpy.ndarray of shape (n_examples, num_features) and (n_examples,)
    learning_rate : float
    minibatch_size : int
    """

    def __init__(self, model, X, y, learning_rate, minibatch_size):
        if len(X) < minibatch_size:
            raise ValueError(f"X_train has {len(X)} examples, fewer than one minibatch of "
                             f"{minibatch_size}: the chapter's loop would visit none")
        self.model, self.X, self.y = model, X, y
        self.learning_rate, self.minibatch_size = learning_rate, minibatch_size
        self.num_examples = len(X)
        self.num_steps = self.num_examples // minibatch_size

    def check_data(self, X, y, x_name="X", y_name="y"):
        """``(X, y)`` unchanged: the reference takes its data as they are."""
        return X, y

    def run(self, order, first_step=0, last_step=None):
        """SGD steps ``first_step:last_step`` (default: all) over minibatches of ``order``."""
        model, lr, b = self.model, self.learning_rate, self.minibatch_size
        for step in range(first_step, self.num_steps if last_step is None else last_step):
            batch_idx = order[step * b:(step + 1) * b]
            X_mini, y_mini = self.X[batch_idx], self.y[batch_idx]  # [B, F], [B]
            a_h, a_out = model.forward(X_mini)
            d_w_out, d_b_out, d_w_h, d_b_h = model.backward(X_mini, a_h, a_out, y_mini)
            model.weight_h -= lr * d_w_h
            model.bias_h -= lr * d_b_h
            model.weight_out -= lr * d_w_out
            model.bias_out -= lr * d_b_out

    def evaluate(self, X, y):
        """The reference's ``compute_mse_and_acc`` (draws its shuffle)."""
        return reference.compute_mse_and_acc(self.model, X, y, self.model.num_classes)


def _reference_permutation(n):
    """The chapter's ``np.random.shuffle`` of ``np.arange(n)``."""
    indices = np.arange(n)
    np.random.shuffle(indices)
    return indices


@dataclass(frozen=True)
class Backend:
    """What a training run needs from an implementation: model, trainer, shuffle, evaluation."""

    name: str
    description: str
    make_model: object  # (num_features, num_hidden, num_classes, activation, dtype) -> model
    trainer: type
    permutation: object  # n -> the epoch's order, drawn from np.random
    compute_mse_and_acc: object


BACKENDS = {
    "numba": Backend(
        "numba", "fastmlp's Numba kernels",
        lambda f, h, c, activation, dtype: model.NeuralNetMLP(f, h, c, activation=activation,
                                                              dtype=dtype),
        model.EpochTrainer, model._permutation, model.compute_mse_and_acc),
    "numpy": Backend(
        "numpy", "the chapter's NumPy code",
        lambda f, h, c, activation, dtype: reference.NeuralNetMLP(f, h, c, activation=activation),
        ReferenceTrainer, _reference_permutation, reference.compute_mse_and_acc),
}


class _InterruptFlag:
    """Within ``with``: the first Ctrl-C sets ``requested``; a second one interrupts at once.

    Training checks the flag between compiled calls, so it stops between
    steps, with a consistent model and history. Outside the main thread
    (where no signal handler can be set) it does nothing.
    """

    def __init__(self):
        self.requested = False
        self._installed = False
        self._previous = signal.default_int_handler

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self._handle)
            self._previous = signal.SIG_DFL if previous is None else previous  # None: set in C
            self._installed = True
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc_info):
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


class _Progress:
    """A one-line progress bar on `stream`, drawn once an epoch has run for PROGRESS_DELAY s."""

    WIDTH = 30

    def __init__(self, stream, enabled):
        self.stream, self.enabled = stream, enabled
        self.label, self.start, self.shown = "", 0.0, False

    def begin(self, label):
        self.label, self.start = label, time.perf_counter()

    def update(self, done, total):
        if not self.enabled or time.perf_counter() - self.start <= PROGRESS_DELAY:
            return
        filled = self.WIDTH * done // total
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                          f"{100 * done // total:3d}% ({done}/{total} steps)")
        self.stream.flush()
        self.shown = True

    def clear(self):
        if self.shown:
            self.stream.write("\r\033[K")  # back to the line start, erase it
            self.stream.flush()
            self.shown = False


@dataclass
class Run:
    """The outcome of :func:`train_job`."""

    model: object
    epoch_loss: list = field(default_factory=list)
    epoch_train_acc: list = field(default_factory=list)
    epoch_valid_acc: list = field(default_factory=list)
    lines: list = field(default_factory=list)  # the chapter's printed epoch lines
    test_acc: float = None  # in %
    seconds: float = 0.0  # training and test evaluation
    warm_up_seconds: float = 0.0  # loading or compiling the kernels, before the timed part
    interrupted: str = None  # where Ctrl-C stopped it, e.g. "during epoch 3 (12/550 steps)"


def train_job(backend, data, args, show=print, progress=None, interrupt=None):
    """Build the model and run the chapter's training loop and test evaluation.

    The random draws are :func:`fastmlp.train`'s: ``np.random.seed(args.seed)``,
    then per epoch the training order and one shuffle for each of the two
    evaluations; then one for the test evaluation. Each epoch runs in compiled
    pieces of about PIECE_SECONDS, between which Ctrl-C (`interrupt`) is seen:
    the run then stops with the epochs completed so far (no test evaluation).

    Parameters
    ----------
    backend : Backend
    data : Data
    args : argparse.Namespace
        ``hidden``, ``activation``, ``dtype``, ``seed``, ``lr``, ``batch_size``,
        ``epochs`` and ``quiet``.
    show : callable, default print
        Receives each of the chapter's epoch lines.
    progress : _Progress, optional
    interrupt : _InterruptFlag, optional

    Returns
    -------
    Run
    """
    progress = progress or _Progress(sys.stderr, enabled=False)
    stop = (lambda: interrupt.requested) if interrupt else (lambda: False)
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
    piece = 1
    for e in range(args.epochs):
        progress.begin(f"Epoch {e+1:03d}/{args.epochs:03d}")
        order = backend.permutation(trainer.num_examples)
        step = 0
        while step < trainer.num_steps and not stop():
            end = min(step + piece, trainer.num_steps)
            tic = time.perf_counter()
            trainer.run(order, step, end)
            # next piece: about PIECE_SECONDS long, growing at most tenfold
            seconds_per_step = max(time.perf_counter() - tic, 1e-9) / (end - step)
            piece = max(1, min(10 * piece, int(PIECE_SECONDS / seconds_per_step)))
            step = end
            progress.update(step, trainer.num_steps)
        progress.clear()
        if step < trainer.num_steps:
            run.interrupted = f"during epoch {e+1} ({step}/{trainer.num_steps} steps)"
            break
        train_mse, train_acc = trainer.evaluate(trainer.X, trainer.y)
        valid_mse, valid_acc = trainer.evaluate(X_valid, y_valid)
        train_acc, valid_acc = train_acc*100, valid_acc*100
        run.epoch_loss.append(float(train_mse))
        run.epoch_train_acc.append(float(train_acc))
        run.epoch_valid_acc.append(float(valid_acc))
        run.lines.append(f'Epoch: {e+1:03d}/{args.epochs:03d} '
                         f'| Train MSE: {train_mse:.4f} '
                         f'| Train Acc: {train_acc:.2f}% '
                         f'| Valid Acc: {valid_acc:.2f}%')
        show(run.lines[-1])
        if stop() and e + 1 < args.epochs:
            run.interrupted = f"after epoch {e+1}"
            break
    if run.interrupted is None:
        _, test_acc = backend.compute_mse_and_acc(net, data.X_test, data.y_test,
                                                  num_labels=num_classes)
        run.test_acc = float(test_acc * 100)
    run.seconds = time.perf_counter() - start
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


def _silent(*args, **kwargs):
    """A ``print`` that prints nothing (``--quiet``)."""


def _check_train_options(args):
    """Reject option combinations and paths that cannot work, before any data is loaded.

    Creates ``args.out`` if needed and returns it as a Path.
    """
    if args.backend == "numpy" and args.dtype != "float64":
        raise CLIError("--dtype float32 needs --backend numba (the NumPy reference computes "
                       "in float64)", EXIT_USAGE)
    if args.backend == "numpy" and args.compare:
        raise CLIError("--compare times the numba backend against the NumPy reference; "
                       "drop --backend numpy", EXIT_USAGE)
    max_threads = numba.config.NUMBA_NUM_THREADS
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
    options = {key: value for key, value in vars(args).items() if key != "func"}
    return {"epoch_loss": run.epoch_loss, "epoch_train_acc": run.epoch_train_acc,
            "epoch_valid_acc": run.epoch_valid_acc, "test_acc": run.test_acc,
            "interrupted": run.interrupted is not None, "wall_time_s": run.seconds,
            "options": options}


def write_figures(out, net, data, run):
    """Write the chapter's figures (:data:`FIGURES`, and ``pca3d.html`` with plotly) to `out`.

    Returns
    -------
    list of str
        The file names written.
    """
    from . import plots

    makers = {
        "classes.png": lambda: plots.plot_class_examples(data.X, data.y, data.image_shape),
        "digit7.png": lambda: plots.plot_digit_variants(data.X, data.y, 7, data.image_shape),
        "loss.png": lambda: plots.plot_loss(run.epoch_loss),
        "accuracy.png": lambda: plots.plot_accuracy(run.epoch_train_acc, run.epoch_valid_acc),
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
    show = _silent if args.quiet else print
    data = load_data(args.dataset, args.data_dir)
    if data.notice:
        print(data.notice, file=sys.stderr)
    show(f"Data: {data.name}, {len(data.X_train)} training, {len(data.X_valid)} validation "
         f"and {len(data.X_test)} test images of {data.image_shape[0]}x{data.image_shape[1]} "
         f"pixels")
    if args.batch_size > len(data.X_train):
        raise CLIError(f"--batch-size {args.batch_size} is larger than the "
                       f"{len(data.X_train)} training examples", EXIT_USAGE)
    backend = BACKENDS[args.backend]
    progress = _Progress(sys.stderr, enabled=not args.quiet and sys.stderr.isatty())
    with _InterruptFlag() as interrupt:
        run = train_job(backend, data, args, show, progress, interrupt)
        if interrupt.requested and run.interrupted is None:
            run.interrupted = "after the test evaluation"
    save_model(run.model, out / "model.npz")
    save_history(_history(run, args), out / "history.json")
    if run.interrupted:
        print(f"Interrupted {run.interrupted}: saved the model and the history of "
              f"{len(run.epoch_loss)} completed epochs to {out}")
        return EXIT_INTERRUPTED
    print(f'Test accuracy: {run.test_acc:.2f}%')
    if backend.name == "numba":
        threads = numba.get_num_threads()
        details = (f"{args.dtype}, {threads} thread{'s' if threads > 1 else ''}; kernels loaded "
                   f"in {run.warm_up_seconds:.2f} s before, untimed")
    else:
        details = "float64"
    epochs = f"{args.epochs} epoch{'s' if args.epochs > 1 else ''}"
    print(f"Wall time: {run.seconds:.2f} s for {epochs} and the test evaluation "
          f"({backend.description}, {details})")
    written = ["model.npz", "history.json"]
    if not args.no_plots:
        written += write_figures(out, run.model, data, run)
    show(f"Wrote {', '.join(written)} to {out}")
    if args.compare:
        return _compare(run, data, args, progress)
    return EXIT_OK


def _compare(run, data, args, progress):
    """Time the NumPy reference on the job `run` did and print the speedup (``--compare``)."""
    print("Timing the chapter's NumPy code (fastmlp.reference) on the same job...")
    quiet_args = argparse.Namespace(**{**vars(args), "quiet": True})
    with _InterruptFlag() as interrupt:
        ref = train_job(BACKENDS["numpy"], data, quiet_args, _silent, progress, interrupt)
    if ref.interrupted:
        print(f"Interrupted the reference run {ref.interrupted}; fastmlp's results are saved")
        return EXIT_INTERRUPTED
    speedup = ref.seconds / run.seconds
    slower = (" (on data this small, the kernels' fixed cost per step and per thread outweighs "
              "the arithmetic)" if speedup < 1 else "")
    print(f"NumPy reference: {ref.seconds:.2f} s | fastmlp: {run.seconds:.2f} s "
          f"| speedup: {speedup:.3g}x{slower}")
    same = "yes" if (ref.lines, f"{ref.test_acc:.2f}") == (run.lines, f"{run.test_acc:.2f}") \
        else "no"
    note = " (fastmlp ran in float32, the reference in float64)" if args.dtype != "float64" else ""
    print(f"Same epoch lines and test accuracy as the reference: {same}{note}")
    return EXIT_OK
