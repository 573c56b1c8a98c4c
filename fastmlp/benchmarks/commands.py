"""``fastmlp bench`` and ``fastmlp compare`` (their parsers are in :mod:`fastmlp.cli.bench`)."""
import datetime
import json
import os
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

from .. import __version__
from .cases import HEADLINE, PEER_SHAPE, PEERS, QUICK_ROWS, VARIANTS, Case
from .machine import BLAS_ENV, commit_info, machine_info
from .peers import peer_missing
from .report import (PEER_HEADERS, SUMMARY_HEADERS, BenchmarkFileError, annotate,
                     compare_table, format_number, format_table, impl_of, peer_rows,
                     plot_speedups, stats, summary_rows)
from .timing import SETTLE_SECONDS, seconds, thread_counts, thread_limit
from .workloads import build_workload

def headline_cases(threads, quick=False, max_rows=None):
    """The cases of ``fastmlp bench``, each shape and thread count's variants together.

    Returns
    -------
    list of tuple of Case
        One tuple per (shape, thread count): the :data:`VARIANTS` to interleave.
    """
    caps = [cap for cap in (QUICK_ROWS if quick else None, max_rows) if cap]
    batches = []
    for kernel, shape in HEADLINE:
        if caps and "rows" in shape:
            shape = {**shape, "rows": min(shape["rows"], *caps)}
        peers = [impl for impl in PEERS if not peer_missing(impl)] \
            if kernel == "epoch" and shape == PEER_SHAPE else []
        for n in threads:
            variants = [*VARIANTS, *((impl, dtype) for impl in peers
                                     for dtype in ("float64", "float32"))]
            batches.append(tuple(Case(kernel, impl, dtype, n, **shape) for impl, dtype in variants))
    return batches


def run_interleaved(cases, rounds):
    """Time ``cases`` (same shape and threads) round by round, alternating their order.

    Returns
    -------
    list of dict
        pytest-benchmark ``benchmarks`` entries, one per case.
    """
    with thread_limit(cases[0].threads):
        workloads = [build_workload(case) for case in cases]
        for workload in workloads:
            workload.run()  # JIT compilation and first touch, untimed
        times = {workload.case: ([], []) for workload in workloads}
        for r in range(rounds):
            for workload in workloads[::-1] if r % 2 else workloads:
                after_idle, steady = times[workload.case]
                after_idle.append(seconds(workload.run, SETTLE_SECONDS))
                steady.append(seconds(workload.run))
    return [_benchmark_entry(case, *times[case]) for case in cases]


def _benchmark_entry(case, after_idle, steady):
    name = f"bench_{case.kernel}[{case.id}]"
    extra_info = {**case.extra_info, "after_idle_median": statistics.median(after_idle)}
    return {"group": case.group, "name": name, "fullname": f"fastmlp.benchmarks::{name}",
            "params": {key: value for key, value in asdict(case).items() if value is not None},
            "param": case.id, "extra_info": extra_info,
            "options": {"timer": "perf_counter", "interleaved": True,
                        "settle_seconds": SETTLE_SECONDS}, "stats": stats(steady)}


def run_bench(args):
    """``fastmlp bench``: time the headline cases, print the table, save the JSON. Returns 0."""
    for name, effect in BLAS_ENV.items():
        if os.environ.get(name):
            print(f"warning: {name}={os.environ[name]} {effect}, which can slow the reference; "
                  f"for a fair comparison unset it for this command only: "
                  f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE fastmlp bench ...",
                  file=sys.stderr)
    threads = tuple(sorted(set(args.threads or thread_counts())))
    rounds = args.rounds or (3 if args.quick else 5)
    benchmarks = []
    for cases in headline_cases(threads, args.quick, args.rows):
        print(f"{cases[0].kernel} {cases[0].shape_label} t{cases[0].threads} ...", file=sys.stderr)
        benchmarks += run_interleaved(cases, rounds)
    machine = machine_info(threads)
    annotate(benchmarks, machine)
    print(format_table(SUMMARY_HEADERS, summary_rows(benchmarks)))
    if any(impl_of(b) in PEERS for b in benchmarks):
        print("\nThe chapter epoch in other libraries (same job; scikit-learn with its own log-loss):")
        print(format_table(PEER_HEADERS, peer_rows(benchmarks)))
    for impl in PEERS:
        if peer_missing(impl):
            print(f"peer {impl} skipped: {peer_missing(impl)}")
    stamp = datetime.datetime.now(datetime.timezone.utc)
    output = Path(args.output or f"bench-{machine['fastmlp']['slug']}-{stamp:%Y%m%d-%H%M%S}.json")
    output.write_text(json.dumps({"machine_info": machine, "commit_info": commit_info(),
                                  "benchmarks": benchmarks, "datetime": stamp.isoformat(),
                                  "version": __version__}, indent=2))
    print(f"saved {output}")
    return 0


def run_compare(args):
    """``fastmlp compare``: print (and plot) the speedups of each file; 0, or 2 on a bad file."""
    try:
        labels, groups, table = compare_table(args.files)
    except BenchmarkFileError as exc:
        print(f"fastmlp compare: error: {exc}", file=sys.stderr)
        return 2
    rows = [[group, *(format_number(value, ".2f", "x") for value in table[group])] for group in groups]
    print("speedup of fastmlp over the reference (float64), median times")
    print(format_table(("kernel|shape|dtype|threads", *labels), rows))
    if args.plot:
        plot_speedups(labels, groups, table, args.plot)
        print(f"saved {args.plot}")
    return 0
