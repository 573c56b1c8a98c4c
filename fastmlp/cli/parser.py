"""The ``fastmlp`` parser and :func:`main`.

``fastmlp train`` runs the chapter's job (see :mod:`fastmlp.cli.train`); a
bare ``fastmlp`` (or ``fastmlp --epochs 5 ...``) runs ``train``. The ``bench``
and ``compare`` subcommands are registered by :mod:`fastmlp.cli.bench` when
:mod:`fastmlp.benchmarks` is there; ``sweep`` is :mod:`fastmlp.sweep`.
"""
import sys
import time

from .. import __version__, sweep
from .arguments import EXIT_INTERRUPTED, CLIError, HelpFormatter, Parser
from .console import process_start
from .train import add_train_command


def build_parser():
    """The ``fastmlp`` parser, with ``train`` and, when available, ``bench`` and ``compare``."""
    parser = Parser(prog="fastmlp", formatter_class=HelpFormatter,
                    description="The textbook chapter's MNIST multi-layer perceptron on "
                                "fast Numba kernels. Without a command, runs 'train'.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_command(subparsers)
    _add_bench(subparsers)
    sweep.add_arguments(subparsers.add_parser(
        "sweep", help="grid or random search of the model, in this process or on Dask",
        formatter_class=HelpFormatter)).set_defaults(func=sweep.run)
    return parser


def _add_bench(subparsers):
    """Register ``bench`` and ``compare`` (:mod:`fastmlp.cli.bench`), if the benchmarks exist.

    Without :mod:`fastmlp.benchmarks`, the commands are absent; an error
    inside it is raised.
    """
    try:
        from . import bench
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("fastmlp.benchmarks"):
            raise
        return
    bench.add_commands(subparsers)


def main(argv=None):
    """Run the command line; return the exit status (the console script exits with it).

    Parameters
    ----------
    argv : list of str, optional
        The arguments, without the program name (default: ``sys.argv[1:]``:
        then the wall time is counted from the process start, else from this call).

    Returns
    -------
    int
        0 on success, 1 on a failure (missing or corrupt data, ...), 2 on a
        usage error, 130 when interrupted with Ctrl-C.
    """
    started = process_start() if argv is None else time.perf_counter()
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["train", *argv]  # the main job
    args = parser.parse_args(argv)
    args.started = started
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"fastmlp {args.command}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
