"""fastmlp on a real dask.distributed cluster, and ``fastmlp.sweep`` in-process and on it.

One module-scoped LocalCluster of 2 worker processes (1 thread each, loopback only). Its
workers get an empty NUMBA_CACHE_DIR of their own cluster and no warm-up: the first search
(the first test) compiles the kernels cold on both workers at once, the case that has
crashed Numba's cache; ``fastmlp sweep`` itself warms one worker at a time.
"""
import csv
import os
import re
import subprocess
import sys

import numba
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from fastmlp import MLPClassifier, datasets, sweep, threads

distributed = pytest.importorskip(
    "dask.distributed", reason="dask[distributed] is not installed: pip install 'fastmlp[dask]'")
import cloudpickle  # noqa: E402
import dask  # noqa: E402
import joblib  # noqa: E402
from tests import test_worker_estimator  # noqa: E402
from tests.test_worker_estimator import odd_copy  # noqa: E402

for _module in (sys.modules[__name__], test_worker_estimator):  # workers cannot import tests/
    cloudpickle.register_pickle_by_value(_module)

THREAD_VARS = re.compile(r"NUMBA_|OMP_|MKL_|OPENBLAS_|MALLOC_")
ENV_BEFORE = {k: v for k, v in os.environ.items() if THREAD_VARS.match(k)}  # before any cluster
ASKED = 1 if numba.config.NUMBA_DEFAULT_NUM_THREADS > 1 else 2  # differs from Numba's default
GRID = {"hidden_layer_sizes": [16, 32], "learning_rate_init": [0.1, 0.5]}
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def digits():
    X, y, _, _ = datasets.load_dataset("digits")
    return datasets.normalize(X), y


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("numba-cache")


@pytest.fixture(scope="module")
def client(cache_dir):
    # pre-spawn-environ would write the thread variables into this process too: env= only
    # (in time here: the workers re-import pytest's script, not Numba; see docs/dask.md)
    env = {"NUMBA_NUM_THREADS": str(ASKED), "NUMBA_CACHE_DIR": str(cache_dir)}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {},
                          "distributed.comm.timeouts.connect": f"{TIMEOUT_S}s"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=":0", env=env) as cluster, \
            distributed.Client(cluster, timeout=TIMEOUT_S) as client:
        client.wait_for_workers(2, timeout=TIMEOUT_S)
        yield client


def _search():
    return GridSearchCV(MLPClassifier(max_iter=5, random_state=0), GRID, cv=2, refit=False)


@pytest.fixture(scope="module")
def serial_scores(digits):
    results = _search().fit(*digits).cv_results_  # in this process, one fit at a time
    return results["split0_test_score"], results["split1_test_score"]


def _on_cluster(client, X, y):
    """The search through joblib's Dask backend: its fold scores and the workers that ran fits."""
    with distributed.get_task_stream(client) as stream, \
            joblib.parallel_config(backend="dask", scatter=[X, y]):
        results = _search().fit(X, y).cv_results_
    workers = {task["worker"] for task in stream.data if "fit_and_score" in str(task["key"])}
    # the next search may scatter the same bytes: wait until these copies are gone
    assert sweep.await_released(client, sweep.scattered_keys(X, y), TIMEOUT_S)
    return (results["split0_test_score"], results["split1_test_score"]), workers


def test_cold_search_on_cluster_gives_the_serial_scores_on_both_workers(
        client, digits, serial_scores, cache_dir):
    assert not any(cache_dir.iterdir())  # cold: both workers compile at once into it
    scores, workers = _on_cluster(client, *digits)
    np.testing.assert_array_equal(scores, serial_scores)  # exactly
    assert workers == set(client.nthreads())
    assert any(cache_dir.rglob("*.nbi"))  # the workers compiled into their cache


def _fit_proba(X, y):
    """On a worker: the model's probabilities after fits on `X, y` as Dask delivered them
    (read-only, at any address) and on a read-only copy 1 byte off float64 alignment."""
    return [MLPClassifier(max_iter=3, random_state=0).fit(A, y).predict_proba(A)
            for A in (X, odd_copy(X, 1))]


def test_read_only_unaligned_inputs_on_cluster(client, digits, serial_scores):
    X, y = digits
    X_odd, y_odd = odd_copy(X, 8), odd_copy(y, 8)  # as a worker may hold them
    scores, _ = _on_cluster(client, X_odd, y_odd)
    np.testing.assert_array_equal(scores, serial_scores)
    expected = MLPClassifier(max_iter=3, random_state=0).fit(X, y).predict_proba(X)
    # hash=False: a fresh key, whatever the scheduler is still releasing (sweep.await_released)
    X_future = client.scatter(X, hash=False, timeout=TIMEOUT_S)
    delivered, shifted = client.submit(_fit_proba, X_future, y).result(TIMEOUT_S)
    np.testing.assert_array_equal(delivered, expected)
    np.testing.assert_array_equal(shifted, expected)


def test_await_released_waits_for_the_scattered_keys_only(client):
    data = np.arange(7.0)  # bytes no other test scatters
    [future] = client.scatter([data], broadcast=True)
    keys = sweep.scattered_keys(data)
    assert keys == [future.key]
    assert not sweep.await_released(client, keys, 0.2)  # held: it gives up at the timeout
    del future
    assert sweep.await_released(client, keys, TIMEOUT_S)
    assert sweep.await_released(client, sweep.scattered_keys(np.arange(3.0)), 0)  # never held


def test_workers_numba_threads_are_the_asked_ones(client):
    assert set(client.run(lambda: numba.config.NUMBA_NUM_THREADS).values()) == {ASKED}
    for address in client.nthreads():  # on the thread that runs the fits
        future = client.submit(threads.get_num_threads, workers=[address], pure=False)
        assert future.result(timeout=TIMEOUT_S) == ASKED


def test_nothing_leaked_into_this_process(client):
    assert {k: v for k, v in os.environ.items() if THREAD_VARS.match(k)} == ENV_BEFORE
    assert numba.njit(lambda x: x + 1)(1) == 2  # a leaked NUMBA_NUM_THREADS breaks compiles


def _sweep_rows(path):
    with open(path, newline="") as file:
        return [{k: v for k, v in row.items() if "time" not in k} for row in csv.DictReader(file)]


SWEEP = ["--dataset", "digits", "--param", "hidden_layer_sizes=16,32",
         "--param", "learning_rate_init=0.1,0.5", "--param", "max_iter=3", "--cv", "2"]


def test_sweep_in_process_prints_each_fit_and_a_sorted_table_and_csv(tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert sweep.main(SWEEP + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert len(re.findall(r"\[CV [12]/2\] END .*score=", printed)) == 8  # one line per fit
    rows = _sweep_rows(out)
    assert len(rows) == 4 and os.listdir(tmp_path) == ["results.csv"]  # no temporary left
    ranks = [int(row["rank_test_score"]) for row in rows]
    assert ranks == sorted(ranks)
    scores = [float(row["mean_test_score"]) for row in rows]
    table = printed[printed.index("rank  accuracy"):].splitlines()[1:5]
    assert [float(line.split()[1]) for line in table] == pytest.approx(scores, abs=5e-5)
    reference = GridSearchCV(MLPClassifier(max_iter=3, random_state=123), GRID, cv=2)
    reference.fit(*_normalized_digits())
    assert sorted(scores) == sorted(reference.cv_results_["mean_test_score"])


def _normalized_digits():
    X, y, _, _ = datasets.load_dataset("digits")
    return datasets.normalize(X), y


def test_sweep_on_cluster_gives_the_in_process_results(client, tmp_path, capsys):
    address = client.scheduler.address
    assert sweep.main(SWEEP + ["--out", str(tmp_path / "local.csv")]) == 0
    assert sweep.main(SWEEP + ["--scheduler", address, "--out", str(tmp_path / "dask.csv")]) == 0
    assert capsys.readouterr().out.count(": ready, fits on") == 2  # both workers warmed
    assert _sweep_rows(tmp_path / "dask.csv") == _sweep_rows(tmp_path / "local.csv")


def test_random_sweep_draws_n_iter_candidates(tmp_path):
    out = tmp_path / "r.csv"
    assert sweep.main(SWEEP + ["--n-iter", "3", "--out", str(out)]) == 0
    assert len(_sweep_rows(out)) == 3


def test_sweep_command_on_a_local_cluster(tmp_path):
    # the real route: the workers re-import this command's module (and Numba) when they start
    result = subprocess.run(
        [sys.executable, "-m", "fastmlp.sweep", "--scheduler", "local:2x1", "--dataset", "digits",
         "--param", "max_iter=1", "--param", "dtype=float32,float64", "--cv", "2",
         "--out", str(tmp_path / "r.csv")],
        capture_output=True, text=True, timeout=4 * TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ready, fits on 1 kernel thread(s)") == 2
    assert len(_sweep_rows(tmp_path / "r.csv")) == 2


@pytest.mark.parametrize("option, message", [
    (["--scheduler", "local:0x1"], "local:WORKERSxTHREADS"),
    (["--scheduler", "local:2"], "local:WORKERSxTHREADS"),
    (["--scheduler", "udp://host:1"], "tcp://HOST:PORT"),
    (["--param", "hidden=1,2"], "unknown parameter 'hidden'"),
    (["--param", "max_iter"], "NAME=V1,V2"),
    (["--param", "dtype=float16"], "dtype must be one of"),
    (["--cv", "1"], "integer >= 2"),
    (["--n-iter", "zero"], "integer >= 1"),
    (["--dataset", "cifar"], "invalid choice"),
])
def test_bad_options_exit_2_with_a_message(option, message, capsys):
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--dataset", "digits"] + option)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_missing_mnist_files_exit_1(tmp_path, capsys):
    assert sweep.main(["--dataset", "mnist", "--data-dir", str(tmp_path)]) == 1
    assert "cannot load mnist" in capsys.readouterr().err


def test_a_parameter_given_twice_is_an_error(capsys):
    assert sweep.main(["--dataset", "digits", "--param", "max_iter=1", "--param", "max_iter=2"]) == 2
    assert "given twice" in capsys.readouterr().err
