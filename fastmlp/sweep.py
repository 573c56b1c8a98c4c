"""``fastmlp sweep``: a grid or random search of the chapter's model, in this process or on Dask.

The search is scikit-learn's own (:class:`~sklearn.model_selection.GridSearchCV` or
:class:`~sklearn.model_selection.RandomizedSearchCV` around :class:`fastmlp.MLPClassifier`);
with ``--scheduler`` its fits run on a ``dask.distributed`` cluster through joblib's Dask
backend (``joblib.parallel_config(backend="dask")``). Each finished fit prints
scikit-learn's ``[CV i/k] END ...`` line (printed where the fit runs: this process, or the
workers of a local cluster, which share its terminal); the sorted results table and the
CSV come from ``cv_results_``.

Run it as ``python -m fastmlp.sweep ...``; :func:`add_arguments` and :func:`run` let the
``fastmlp`` command add it as a subcommand.
"""
import argparse
import ast
import contextlib
import csv
import io
import itertools
import re
import sys
import time

import numpy as np

from . import datasets, threads
from .persistence import atomic_write

_LOCAL = re.compile(r"local:(\d+)x(\d+)")
_DTYPES = {"float64": np.float64, "float32": np.float32}
# the parameters that select which compiled kernels run (the warm-up fits try each value)
_COMPILE_PARAMS = ("dtype", "activation", "batch_size")
_TIMEOUT_S = 120  # for workers to start or answer; generous, as the cluster may be busy


def add_arguments(parser):
    """Add the sweep's options to an :class:`argparse.ArgumentParser` (or a subparser)."""
    parser.add_argument("--scheduler", type=_scheduler, default=None,
                        metavar="local:WORKERSxTHREADS | tcp://HOST:PORT",
                        help="run the fits on Dask: a new local cluster of WORKERS processes, "
                             "each running one fit at a time on THREADS kernel threads "
                             "(n_threads; at most the cores), or the "
                             "scheduler at this address (default: in this process, one fit at "
                             "a time)")
    parser.add_argument("--param", type=_param, action="append", default=[],
                        metavar="NAME=V1,V2,...",
                        help="an MLPClassifier parameter and its values to search (repeatable), "
                             "e.g. hidden_layer_sizes=30,50 learning_rate_init=0.05,0.1 "
                             "activation=logistic,relu dtype=float32 random_state=1,2,3")
    parser.add_argument("--cv", type=_int_at_least(2), default=3,
                        help="number of stratified cross-validation folds (default: 3)")
    parser.add_argument("--n-iter", type=_int_at_least(1), default=None,
                        help="random search of this many candidates drawn from the values "
                             "(default: the full grid)")
    parser.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                        help="mnist (as `fastmlp train` loads it) or scikit-learn's 8x8 digits")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the MNIST IDX files (default: $FASTMLP_MNIST_DIR)")
    parser.add_argument("--seed", type=int, default=123,
                        help="random_state of the model and of the random search, unless "
                             "searched with --param (default: 123, the chapter's)")
    parser.add_argument("--out", default=None, metavar="results.csv",
                        help="write every cv_results_ column here (atomically)")
    return parser


def run(args):
    """Run the search that `args` (from :func:`add_arguments`) describe and print its results.

    Returns
    -------
    int
        0 on success, 1 when the data cannot be loaded, 2 on a usage error (as ``fastmlp``).
    """
    grid = dict(args.param)
    if len(grid) != len(args.param):
        return _error("a parameter was given twice with --param", 2)
    try:
        X, y, _, notice = datasets.load_dataset(args.dataset, args.data_dir)
    except (OSError, ValueError) as exc:
        return _error(f"cannot load {args.dataset}: {exc}", 1)
    if notice:
        print(notice)
    X = datasets.normalize(X)
    # local:WxT: each fit on T threads, set on the worker thread that runs it; not through
    # env={"NUMBA_NUM_THREADS": T}, which the worker may read too late (docs/dask.md)
    n_threads = args.scheduler[1] if isinstance(args.scheduler, tuple) else None
    from .estimator import MLPClassifier  # scikit-learn: imported when a sweep runs, not by `fastmlp`
    search = _search(MLPClassifier(random_state=args.seed, n_threads=n_threads), grid, args)
    with _client(args.scheduler) as client:
        if client is None:
            start = time.perf_counter()
            search.fit(X, y)
        else:
            import joblib
            _warm(client, search.estimator, grid, X.shape[1], len(np.unique(y)))
            start = time.perf_counter()
            # scatter sends the data to every worker once; it matches fit's arguments by id()
            with joblib.parallel_config(backend="dask", scatter=[X, y]):
                search.fit(X, y)
        seconds = time.perf_counter() - start
        if client is not None:  # before a next search of the same data scatters it again
            await_released(client, scattered_keys(X, y), _TIMEOUT_S)
    rows = _rows(search.cv_results_)
    print(_table(rows))
    print(f"{len(rows) * search.n_splits_} fits in {seconds:.2f} s")
    if args.out:
        atomic_write(args.out, lambda file: file.write(_csv_text(rows).encode("utf-8")))
        print(f"results: {args.out}")
    return 0


def scattered_keys(*data):
    """The keys ``client.scatter(data)`` (content-hashed, as joblib's Dask backend scatters)
    gives each of ``data``: the type's name and ``dask.base.tokenize`` (distributed's scheme)."""
    from dask.base import tokenize
    return [f"{type(x).__name__}-{tokenize(x)}" for x in data]


def await_released(client, keys, timeout):
    """Wait at most ``timeout`` s until the scheduler has forgotten ``keys``; True if it has.

    Scattering data under a key the scheduler is still releasing can wait forever
    (dask/distributed#8576; it hung a CI run): so a second search of the same data, in this
    session or another one on the same scheduler, waits here until the first's copies are
    gone. Only these keys: other clients' tasks on a shared scheduler do not matter."""
    import gc
    gc.collect()  # joblib's backend, which holds the scattered futures, may sit in a cycle
    keys = list(keys)
    deadline = time.monotonic() + timeout
    # a lambda: pickled by value, so a scheduler without fastmlp installed can run it
    while client.run_on_scheduler(lambda dask_scheduler: any(k in dask_scheduler.tasks
                                                             for k in keys)):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def main(argv=None):
    """``python -m fastmlp.sweep [options]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="fastmlp sweep", description=__doc__.split("\n")[0])
    return run(add_arguments(parser).parse_args(argv))


def _search(estimator, grid, args):
    """The scikit-learn search: the whole grid, or ``--n-iter`` candidates drawn from it."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    common = dict(cv=args.cv, refit=False, error_score="raise", verbose=3)
    if args.n_iter is None:
        return GridSearchCV(estimator, grid, **common)
    return RandomizedSearchCV(estimator, grid, n_iter=args.n_iter, random_state=args.seed,
                              **common)


@contextlib.contextmanager
def _client(scheduler):
    """A ``dask.distributed.Client`` for `scheduler` (None: no client), closed on exit."""
    if scheduler is None:
        yield None
        return
    from dask.distributed import Client, LocalCluster
    if isinstance(scheduler, str):
        with Client(scheduler, timeout=_TIMEOUT_S) as client:
            yield client
        return
    import dask
    # Dask writes pre-spawn-environ (thread variables) into this process's os.environ too;
    # the fits' threads are set per fit instead (n_threads), so nothing is needed there
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}), \
            LocalCluster(n_workers=scheduler[0], threads_per_worker=1, processes=True,
                         dashboard_address=":0") as cluster, Client(cluster) as client:
        client.wait_for_workers(scheduler[0], timeout=_TIMEOUT_S)
        yield client


def _warm(client, estimator, grid, n_features, n_classes):
    """Compile or load the kernels on each worker, one worker at a time, and print its threads.

    The first worker of a node compiles into the node's cache (Numba's cache has been seen to
    crash or truncate files when several processes compile the same kernels into it at once);
    the others load from it. Tiny fits, one per combination of the grid's
    compile-selecting values.
    """
    from sklearn.base import clone
    choices = [[(name, value) for value in grid[name]] for name in _COMPILE_PARAMS
               if name in grid]
    estimators = [clone(estimator).set_params(**dict(combo), max_iter=1)
                  for combo in itertools.product(*choices)]
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(256, n_features))
    y = np.arange(256) % n_classes
    for address in client.nthreads():  # every worker (scheduler_info() may list a few)
        future = client.submit(_fit_all, estimators, X, y, workers=[address], pure=False)
        print(f"worker {address}: ready, fits on {future.result(timeout=_TIMEOUT_S)} kernel "
              f"thread(s)")


def _fit_all(estimators, X, y):
    """Fit and score each estimator on ``X, y``; the kernel threads the last one's fit got."""
    for estimator in estimators:
        estimator.fit(X, y).score(X, y)
    with threads.limit(estimator.n_threads) as n:
        return n


def _rows(cv_results):
    """``cv_results_`` as one dict per candidate, best rank first (ties in candidate order)."""
    columns = [key for key in cv_results if key != "params"]
    rows = [{key: cv_results[key][i] for key in columns}
            for i in range(len(cv_results["params"]))]
    return sorted(rows, key=lambda row: row["rank_test_score"])


def _table(rows):
    """The results table: rank, mean and spread of the fold accuracies, fit time, parameters."""
    names = [key for key in rows[0] if key.startswith("param_")]
    header = ["rank", "accuracy", "std", "fit s"] + [name[len("param_"):] for name in names]
    body = [[str(row["rank_test_score"]), f"{row['mean_test_score']:.4f}",
             f"{row['std_test_score']:.4f}", f"{row['mean_fit_time']:.2f}"]
            + [_text(row[name]) for name in names] for row in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     for line in [header] + body)


def _csv_text(rows):
    """The rows as CSV text, one column per ``cv_results_`` key."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _text(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def _text(value):
    """A parameter value as the user would type it (dtypes by name)."""
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    return str(value)


def _scheduler(text):
    """``local:WxT`` as (W, T) with W, T >= 1, or a ``tcp://HOST:PORT`` address as is."""
    match = _LOCAL.fullmatch(text)
    if match and min(int(match[1]), int(match[2])) >= 1:
        return int(match[1]), int(match[2])
    if re.fullmatch(r"tcp://[^:/\s]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(
        f"expected local:WORKERSxTHREADS (both at least 1) or tcp://HOST:PORT, got {text!r}")


def _param(text):
    """``NAME=V1,V2,...`` as (NAME, [values]); values are Python literals, else strings."""
    from .estimator import MLPClassifier
    name, sep, values = text.partition("=")
    known = MLPClassifier().get_params()
    if not sep or not values:
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,..., got {text!r}")
    if name not in known:
        raise argparse.ArgumentTypeError(
            f"unknown parameter {name!r}; MLPClassifier has {', '.join(sorted(known))}")
    return name, [_value(name, item) for item in values.split(",")]


def _value(name, text):
    """One value of parameter `name` from its text."""
    if name == "dtype":
        if text not in _DTYPES:
            raise argparse.ArgumentTypeError(f"dtype must be one of {sorted(_DTYPES)}, "
                                             f"got {text!r}")
        return _DTYPES[text]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _int_at_least(low):
    """An argparse type: an integer of at least `low`."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    return parse


def _error(message, status):
    """Print `message` as the command's error and return exit `status`."""
    print(f"fastmlp sweep: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
