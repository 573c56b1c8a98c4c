"""The kernel benchmark suite: ``pytest --benchmark`` or ``pytest bench --benchmark-only``.

Plain ``pytest`` runs ``tests/`` only; the options ``--benchmark`` and ``--quick``
are registered in the repository's root ``conftest.py``.

Every kernel runs at every shape of the grid below, by the reference (the
chapter's NumPy code, float64) and by fastmlp (float64 and float32), on 1
thread and on all cores. Each benchmark's group is ``kernel|shape|dtype|tN``;
its ``extra_info`` holds the case, its flops and bytes, and (in saved JSON and
in the summary printed at the end) its GFLOP/s, fraction of the measured peak
and, for fastmlp, its speedup over the float64 reference.

The grid, pruned to run in under ten minutes on two cores:

* onehot: batch 1, 10, 100, 1000; shuffle (+ the epoch's gathers): 55,000 rows
  at each batch;
* forward, backward, step: each batch x hidden 50, 256, 1024;
* evaluate and epoch: the chapter's 55,000 training rows (the epoch also
  evaluates 5,000 validation rows) at hidden 50, 5,500 rows at hidden 256 and
  1024, where the work is 5-20 times larger; the epoch at batch 1 runs 5,500
  rows at hidden 50 and not at all at larger hidden layers (the reference's
  single-row steps alone take 3-15 s a round there).

The chapter epoch also runs in scikit-learn (``MLPClassifier``, plain SGD, its own
log-loss) and, where installed, PyTorch eager and JAX (``jax.jit``, the epoch a
``lax.scan``, in a worker process per dtype and thread count) (the same network,
MSE, SGD), in float64 and float32: rows beside fastmlp's in the epoch's groups.

Quick mode (``--quick`` or ``FASTMLP_BENCH_QUICK=1``) keeps batch 100, hidden
50, no peers, and times fewer rounds.
"""
import math
import os
import time

import pytest

from fastmlp.benchmarks.cases import KERNEL_AXES, PEER_SHAPE, PEERS, VARIANTS, Case
from fastmlp.benchmarks.machine import commit_info, fingerprint
from fastmlp.benchmarks.peers import peer_missing
from fastmlp.benchmarks.report import (PEER_HEADERS, SUMMARY_HEADERS, annotate, format_table,
                                       peer_rows, summary_rows)
from fastmlp.benchmarks.timing import SETTLE_SECONDS, seconds, thread_counts, thread_limit
from fastmlp.benchmarks.workloads import build_workload

BATCHES = (1, 10, 100, 1000)
HIDDEN = (50, 256, 1024)
CHAPTER_ROWS = 55_000
SMALL_ROWS = 5_500
ARGNAMES = ("kernel", "impl", "dtype", "threads", "rows", "batch", "hidden")

# Timing plan per benchmark: about `budget` seconds of rounds, within [min_rounds, max_rounds],
# each round at least MIN_ROUND_SECONDS long (tiny kernels loop `iterations` times per round).
ROUNDS = {False: {"budget": 0.3, "min_rounds": 3, "max_rounds": 100},
          True: {"budget": 0.05, "min_rounds": 3, "max_rounds": 10}}
MIN_ROUND_SECONDS = 1e-4
CALIBRATION_SECONDS = 0.05  # after the warm-up call, time up to 5 calls within this for the plan
RESULTS = pytest.StashKey[list]()


def pytest_configure(config):
    config.stash[RESULTS] = []


def _quick(config):
    return config.getoption("--quick") or os.environ.get("FASTMLP_BENCH_QUICK", "") not in ("", "0")


def _shapes(quick):
    """``(kernel, shape)`` pairs of the grid (see the module docstring)."""
    if quick:
        shape = {"rows": CHAPTER_ROWS, "batch": 100, "hidden": 50}
        for kernel, axes in KERNEL_AXES.items():
            yield kernel, {axis: shape[axis] for axis in axes}
        return
    for batch in BATCHES:
        yield "onehot", {"batch": batch}
        yield "shuffle", {"rows": CHAPTER_ROWS, "batch": batch}
        for hidden in HIDDEN:
            for kernel in ("forward", "backward", "step"):
                yield kernel, {"batch": batch, "hidden": hidden}
    for hidden in HIDDEN:
        rows = CHAPTER_ROWS if hidden == 50 else SMALL_ROWS
        yield "evaluate", {"rows": rows, "hidden": hidden}
        for batch in BATCHES:
            if batch > 1:
                yield "epoch", {"rows": rows, "batch": batch, "hidden": hidden}
            elif hidden == 50:
                yield "epoch", {"rows": SMALL_ROWS, "batch": batch, "hidden": hidden}


def _peer_cases(quick):
    """The chapter epoch in the :data:`PEERS` (full grid only), each skipped without its library."""
    if quick:
        return []
    return [pytest.param(*(getattr(case, arg) for arg in ARGNAMES), id=case.id,
                         marks=pytest.mark.skipif(bool(peer_missing(impl)),
                                                  reason=str(peer_missing(impl))))
            for threads in thread_counts() for impl in PEERS for dtype in ("float64", "float32")
            for case in [Case("epoch", impl, dtype, threads, **PEER_SHAPE)]]


def pytest_generate_tests(metafunc):
    if set(ARGNAMES) <= set(metafunc.fixturenames):
        quick = _quick(metafunc.config)
        cases = [Case(kernel, impl, dtype, threads, **shape)
                 for kernel, shape in _shapes(quick)
                 for threads in thread_counts() for impl, dtype in VARIANTS]
        params = [pytest.param(*(getattr(case, arg) for arg in ARGNAMES), id=case.id)
                  for case in cases]
        metafunc.parametrize(ARGNAMES, params + _peer_cases(quick))


@pytest.fixture
def measure(benchmark, request):
    """``measure(case)``: time ``case`` with pytest-benchmark, its JIT compilation done first."""
    plan = ROUNDS[_quick(request.config)]

    def run(case):
        benchmark.group = case.group
        benchmark.extra_info.update(case.extra_info)
        with thread_limit(case.threads):
            workload = build_workload(case)
            workload.run()  # compiles (or loads) the kernels, touches the data
            estimate = _calibrate(workload.run)
            iterations = math.ceil(MIN_ROUND_SECONDS / estimate)
            rounds = round(plan["budget"] / (estimate * iterations))
            # idle first, as fastmlp bench does: the case before may have left OpenBLAS's
            # workers spinning (~0.1 s), on the cores this one's threads need
            time.sleep(SETTLE_SECONDS)
            benchmark.pedantic(workload.run, iterations=iterations,
                               rounds=min(plan["max_rounds"], max(plan["min_rounds"], rounds)))
        if benchmark.stats:  # None under --benchmark-disable
            request.config.stash[RESULTS].append({
                "group": case.group, "extra_info": dict(benchmark.extra_info),
                "stats": {"median": benchmark.stats.stats.median}})

    return run


def _calibrate(run):
    """The fastest of up to 5 calls of ``run`` (fewer if they take over CALIBRATION_SECONDS)."""
    times = []
    while len(times) < 5 and sum(times) < CALIBRATION_SECONDS:
        times.append(seconds(run))
    return min(times)


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastmlp"] = fingerprint(thread_counts())


def pytest_benchmark_generate_commit_info(config):
    return commit_info()  # read from .git, instead of pytest-benchmark's git commands


def pytest_benchmark_update_json(config, benchmarks, output_json):
    annotate(output_json["benchmarks"], output_json["machine_info"])


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter, config):
    results = config.stash[RESULTS]
    if results:
        annotate(results, {"fastmlp": fingerprint(thread_counts())})
        terminalreporter.write_sep("-", "fastmlp vs the reference (float64): medians")
        terminalreporter.write_line(format_table(SUMMARY_HEADERS, summary_rows(results)))
        if any(r["extra_info"]["impl"] in PEERS for r in results):
            terminalreporter.write_sep("-", "the chapter epoch in other libraries: medians")
            terminalreporter.write_line(format_table(PEER_HEADERS, peer_rows(results)))
