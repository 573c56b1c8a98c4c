"""Tests of fastmlp.benchmarks: fingerprint, ``bench`` on tiny data, ``compare``, its refusals."""
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from threadpoolctl import threadpool_info

from fastmlp import cli, threads
from fastmlp.benchmarks import __main__ as benchmarks_main
from fastmlp.benchmarks import cases, commands, machine, peers, report, timing

ALL_THREADS = threads.max_threads()
REPO = Path(cases.__file__).resolve().parents[2]
TINY_ROWS = "100"  # one minibatch of the evaluation (and of the chapter's training)


def run(main, argv):
    """``(exit code, stdout, stderr)`` of ``main(argv)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Two real ``bench --quick`` results on tiny data: 1 thread, and 1 plus all threads."""
    folder = tmp_path_factory.mktemp("bench")
    results = {}
    for name, counts in (("one", ["1"]), ("all", ["1", str(ALL_THREADS)])):
        path = folder / f"{name}.json"
        results[name] = path, run(benchmarks_main.main, ["bench", "--quick", "--rows", TINY_ROWS,
                                                   "--rounds", "1", "--output", str(path),
                                                   "--threads", *counts])
    return results


def test_fingerprint_has_what_timings_depend_on():
    info = machine.fingerprint(threads=(1,), probe_size=64)
    assert {"cpu", "caches", "llvm", "versions", "blas", "threads", "env", "peak_gflops",
            "slug"} <= set(info)
    assert info["cpu"]["brand"] and info["cpu"]["logical_cores"] >= 1
    assert info["llvm"]["host_cpu"] and info["llvm"]["host_features"]
    assert {"numpy", "numba", "llvmlite"} <= set(info["versions"])
    assert [lib["filepath"] for lib in info["blas"]] == \
        [lib["filepath"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert all(lib["internal_api"] and lib["version"] for lib in info["blas"])
    assert {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} <= set(info["env"])
    assert set(info["peak_gflops"]) == {"float64", "float32"}
    assert all(set(peaks) == {"1"} for peaks in info["peak_gflops"].values())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("threads", sorted({1, ALL_THREADS}))
def test_peak_probe_is_positive(dtype, threads):
    assert machine.peak_gflops(dtype, threads, size=128, repeats=2) > 0


def test_thread_limit_sets_and_restores_both_pools():
    kernels_before = threads.get_num_threads()
    blas_before = [lib["num_threads"] for lib in threadpool_info()]
    with timing.thread_limit(1):
        assert threads.get_num_threads() == 1
        assert all(lib["num_threads"] == 1 for lib in threadpool_info())
    assert threads.get_num_threads() == kernels_before
    assert [lib["num_threads"] for lib in threadpool_info()] == blas_before


def test_slug_names_a_file():
    code, out, _ = run(benchmarks_main.main, ["--slug"])
    assert code == 0
    assert out.strip() == machine.cpu_slug()
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", out.strip())


def test_slug_names_the_numba_target_when_it_is_not_the_host(monkeypatch):
    monkeypatch.setattr(numba.config, "CPU_NAME", None)  # the host's own code
    native = machine.cpu_slug()
    assert "-as-" not in native
    monkeypatch.setattr(numba.config, "CPU_NAME", "host")
    assert machine.cpu_slug() == native
    monkeypatch.setattr(numba.config, "CPU_NAME", "haswell")  # the AVX2 path
    assert machine.cpu_slug() == native + "-as-haswell"


def test_bench_writes_pytest_benchmark_json(saved):
    path, (code, out, _) = saved["all"]
    assert code == 0
    assert out.splitlines()[0].split() == ["kernel", "shape", "dtype", "threads", "reference",
                                           "ms", "fastmlp", "ms", "speedup", "after", "idle",
                                           "GFLOP/s", "%", "of", "peak"]
    data = json.loads(path.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(data)
    assert data["machine_info"]["fastmlp"]["slug"] == machine.cpu_slug()
    benches = data["benchmarks"]
    # 5 headline shapes x 3 variants (reference float64, fastmlp float64, float32) x thread counts
    assert len(benches) == 5 * 3 * len({1, ALL_THREADS})
    medians = {(b["group"], b["extra_info"]["impl"]): b["stats"]["median"] for b in benches}
    after_idle = {(b["group"], b["extra_info"]["impl"]): b["extra_info"]["after_idle_median"]
                  for b in benches}
    for bench in benches:
        assert {"group", "name", "fullname", "params", "stats", "extra_info"} <= set(bench)
        assert {"min", "max", "mean", "stddev", "median", "rounds"} <= set(bench["stats"])
        info = bench["extra_info"]
        assert bench["group"] == (f"{info['kernel']}|{bench['group'].split('|')[1]}|"
                                  f"{info['dtype']}|t{info['threads']}")
        assert info["gflops"] == pytest.approx(info["flops"] / bench["stats"]["median"] / 1e9)
        if info["impl"] == "fastmlp":
            reference = medians[(bench["group"].replace("float32", "float64"), "reference")]
            assert info["speedup"] == pytest.approx(reference / bench["stats"]["median"])
            reference_group = bench["group"].replace("float32", "float64")
            assert info["speedup_after_idle"] == pytest.approx(
                after_idle[(reference_group, "reference")] / info["after_idle_median"])
        else:
            assert info["dtype"] == "float64" and "speedup" not in info
        assert bench["stats"]["rounds"] == 1 and info["after_idle_median"] > 0
    assert all(f"rows={TINY_ROWS}" in b["group"] for b in benches if b["extra_info"]["kernel"]
               in ("epoch", "evaluate"))


def test_bench_default_output_names_the_cpu(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(cli.main, ["bench", "--quick", "--rows", TINY_ROWS, "--rounds", "1",
                                  "--threads", "1"])
    assert code == 0
    [path] = tmp_path.glob(f"bench-{machine.cpu_slug()}-*.json")
    assert f"saved {path.name}" in out


def test_bench_warns_about_openblas_coretype(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    code, _, err = run(benchmarks_main.main, ["bench", "--quick", "--rows", TINY_ROWS, "--rounds", "1",
                                        "--threads", "1", "--output", str(tmp_path / "r.json")])
    assert code == 0
    assert "OPENBLAS_CORETYPE=Haswell" in err and "env -u OPENBLAS_CORETYPE" in err


@pytest.mark.parametrize("main", [benchmarks_main.main, cli.main], ids=["benchmark", "cli"])
def test_compare_tables_and_plots_two_results(saved, tmp_path, main):
    (one, _), (both, _) = saved["one"], saved["all"]
    png = tmp_path / "speedups.png"
    code, out, err = run(main, ["compare", str(one), str(both), "--plot", str(png)])
    assert (code, err) == (0, "")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = out.splitlines()
    header = lines[1]
    # same CPU in both files: the labels carry the thread counts to tell them apart
    assert "[t1 float32,float64]" in header
    assert f"[t{','.join(sorted({'1', str(ALL_THREADS)}))} float32,float64]" in header
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:]}
    speedup = re.compile(r"\d+\.\d\dx")
    one_thread = f"epoch|rows={TINY_ROWS},batch=100,hidden=50|float32|t1"
    assert all(speedup.fullmatch(cell) for cell in rows[one_thread])
    if ALL_THREADS > 1:
        assert rows[one_thread.replace("|t1", f"|t{ALL_THREADS}")][0] == "-"


def test_compare_computes_missing_speedups_from_medians(saved, tmp_path):
    path, _ = saved["one"]
    data = json.loads(path.read_text())
    expected = report.speedups(data["benchmarks"])
    for bench in data["benchmarks"]:
        bench["extra_info"].pop("speedup", None)
    assert report.speedups(data["benchmarks"]) == pytest.approx(expected)
    stripped = tmp_path / "stripped.json"
    stripped.write_text(json.dumps(data))
    code, out, _ = run(benchmarks_main.main, ["compare", str(stripped)])
    assert code == 0
    assert f"{expected['step|batch=1000,hidden=1024|float32|t1']:.2f}x" in out


@pytest.mark.parametrize("content, message", [
    ("Epoch: 001/040 | Train MSE: 0.0500", "is not a JSON file"),
    (b"\x89PNG\r\n\x1a\n\x00\xff", "is not a JSON file"),
    (json.dumps({"epoch_loss": [0.1]}), "is not a benchmark result"),
    (json.dumps({"machine_info": {}, "benchmarks": {}}), "is not a benchmark result"),
    (json.dumps([1, 2]), "is not a benchmark result"),
    (json.dumps({"machine_info": {}, "benchmarks": []}), "holds no fastmlp/reference pair"),
], ids=["text", "binary", "other-json", "benchmarks-not-a-list", "json-list", "no-pairs"])
def test_compare_refuses_other_files(tmp_path, content, message):
    path = tmp_path / "results.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    code, out, err = run(benchmarks_main.main, ["compare", str(path)])
    assert code == 2 and out == ""
    assert err.startswith("fastmlp compare: error: ") and message in err
    assert err.count("\n") == 1


def test_compare_refuses_a_missing_file(tmp_path):
    code, _, err = run(cli.main, ["compare", str(tmp_path / "absent.json")])
    assert code == 2
    assert err == f"fastmlp compare: error: cannot read {tmp_path / 'absent.json'}: " \
                  f"No such file or directory\n"


@pytest.mark.parametrize("command", [["bench", "--benchmark-only"], ["--benchmark"]],
                         ids=["bench-benchmark-only", "benchmark"])
def test_the_pytest_suite_saves_annotated_results(tmp_path, command):
    path = tmp_path / "suite.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *command, "--quick", "-k", "onehot",
         "-p", "no:cacheprovider", f"--benchmark-json={path}"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fastmlp vs the reference (float64): medians" in result.stdout
    data = json.loads(path.read_text())
    assert data["machine_info"]["fastmlp"]["slug"] == machine.cpu_slug()
    assert data["commit_info"]["project"] == "fastmlp"
    assert {b["group"] for b in data["benchmarks"]} == {
        f"onehot|batch=100|{dtype}|t{n}" for dtype in ("float64", "float32")
        for n in timing.thread_counts()}
    for bench in data["benchmarks"]:
        assert bench["params"]["kernel"] == bench["extra_info"]["kernel"] == "onehot"
        assert ("speedup" in bench["extra_info"]) == (bench["extra_info"]["impl"] == "fastmlp")
    code, out, _ = run(benchmarks_main.main, ["compare", str(path)])
    assert code == 0 and "onehot|batch=100|float32|t1" in out


@pytest.mark.parametrize("options, folder", [([], "tests/"), (["--benchmark"], "bench/")],
                         ids=["plain", "benchmark"])
def test_plain_pytest_collects_the_tests_and_benchmark_the_suite(options, folder):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *options, "--collect-only", "-q", "-k", "onehot",
         "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith(folder) for line in collected), result.stdout


def needs(impl):
    """Marks that skip a test, saying why, where peer ``impl``'s library is not installed."""
    return pytest.mark.skipif(bool(peers.peer_missing(impl)),
                              reason=str(peers.peer_missing(impl)))


@pytest.mark.parametrize("impl", [
    "sklearn",  # a runtime dependency: always there
    pytest.param("torch", marks=needs("torch")),
    pytest.param("jax", marks=needs("jax"))])
def test_peer_epoch_runs_and_is_tabled_beside_fastmlp(impl):
    assert peers.peer_missing(impl) is None
    pair = [cases.Case("epoch", name, "float32", 1, rows=300, batch=100, hidden=8)
            for name in ("fastmlp", impl)]
    rows = report.peer_rows(commands.run_interleaved(pair, rounds=1))
    assert [row[0] for row in rows] == [impl]
    assert rows[0][-1].endswith("x") and float(rows[0][-1][:-1]) > 0


def test_every_peer_is_tabled_or_skipped_with_a_reason():
    assert set(cases.PEERS) == {"sklearn", "torch", "jax"}
    for impl in cases.PEERS:
        assert peers.peer_missing(impl) is None or "pip install" in peers.peer_missing(impl)


@needs("jax")
def test_jax_worker_is_held_to_one_cpu_and_ends_cleanly():
    case = cases.Case("epoch", "jax", "float32", 1, rows=2000, batch=1000, hidden=256)
    worker = peers._JaxWorker(case)
    try:
        for _ in range(3):
            worker.run()
        info = worker.describe()
    finally:
        worker.close()
    assert worker._process.returncode == 0  # quit, not killed
    assert "jax" not in sys.modules  # the parent never imports JAX
    assert info["pid"] == worker.pid != os.getpid()
    assert (info["backend"], info["dtype"], info["runs"]) == ("cpu", "float32", 3)
    assert peers.JAX_ONE_THREAD_FLAGS in info["xla_flags"]
    if hasattr(os, "sched_getaffinity"):
        assert len(info["affinity"]) == 1
        # one CPU: its epochs' CPU time cannot exceed their wall time
        assert info["cpu_seconds"] <= 1.05 * info["wall_seconds"] + 0.01
    with pytest.raises(RuntimeError, match="could not be sent 'run'"):
        worker.run()


@pytest.mark.parametrize("code, message", [
    ("import sys; sys.stderr.write('no backend'); sys.exit(3)",
     r"exited during its setup \(exit status 3\); its stderr ends with:\nno backend"),
    ("import sys; print('ready {}', flush=True); sys.stdin.readline(); "
     "sys.stderr.write('Segmentation fault'); sys.exit(-11 % 256)",
     r"exited during 'run' \(exit status 245\).*\nSegmentation fault"),
    ("import sys; print('ready {}', flush=True); sys.stdin.readline(); print('oops', flush=True)",
     r"answered 'oops' to 'run' instead of 'done'"),
], ids=["setup", "run", "garbled"])
def test_a_jax_worker_crash_raises_instead_of_hanging(monkeypatch, code, message):
    # a stand-in worker (no JAX needed): the parent's side of the protocol
    monkeypatch.setattr(peers, "_JAX_WORKER_CODE", code)
    case = cases.Case("epoch", "jax", "float32", 1, rows=300, batch=100, hidden=8)
    with pytest.raises(RuntimeError, match=f"the JAX worker of {case.id} \\(pid \\d+\\) "):
        try:
            peers._JaxWorker(case).run()
        except RuntimeError as error:
            assert re.search(message, str(error), re.S), str(error)
            raise


def test_a_stuck_jax_worker_times_out(monkeypatch):
    monkeypatch.setattr(peers, "_JAX_WORKER_CODE", "import time; time.sleep(60)")
    monkeypatch.setattr(peers, "JAX_WORKER_TIMEOUT", 0.5)
    case = cases.Case("epoch", "jax", "float32", 1, rows=300, batch=100, hidden=8)
    with pytest.raises(RuntimeError, match=r"did not finish its setup within 0.5 s \(exit status -9\)"):
        peers._JaxWorker(case)
