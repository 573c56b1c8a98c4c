"""The ``bench`` and ``compare`` commands' parsers; they run :mod:`fastmlp.benchmarks.commands`."""
import argparse

from ..benchmarks.cases import EVAL_MINIBATCH, QUICK_ROWS
from ..benchmarks.commands import run_bench, run_compare
from ..threads import max_threads
from .arguments import int_in


def add_commands(subparsers):
    """Register ``bench`` and ``compare`` on an ``argparse`` subparsers object.

    Each sets ``func``: ``args.func(args)`` runs the command and returns its exit code.
    """
    bench = subparsers.add_parser(
        "bench", help="time fastmlp against the chapter's NumPy code on this machine",
        description="Time the headline cases (the chapter epoch: 55,000 rows at batch 100, "
                    "hidden 50; epochs at batch 10 and 1 on 5,500 rows; an SGD step at batch "
                    "1000, hidden 1024; the fused evaluation of 55,000 rows) for the reference "
                    "(float64) and fastmlp (float64, float32), interleaved round by round. "
                    "Prints median times and speedups; saves pytest-benchmark JSON.")
    bench.add_argument("--quick", action="store_true",
                       help=f"at most {QUICK_ROWS:,} rows per case and 3 rounds")
    bench.add_argument("--threads", type=int_in(1, max_threads()), nargs="+",
                       metavar="N", help="thread counts (default: 1 and all cores)")
    bench.add_argument("--output", metavar="JSON",
                       help="result file (default: bench-<cpu-slug>-<UTC time>.json here)")
    bench.add_argument("--rounds", type=int_in(1), metavar="R",
                       help="timed rounds per case (default 5; 3 with --quick)")
    # tests: tiny data (100 rows: one minibatch of the evaluation and of the chapter's training)
    bench.add_argument("--rows", type=int_in(EVAL_MINIBATCH), help=argparse.SUPPRESS)
    bench.set_defaults(func=run_bench)

    compare = subparsers.add_parser(
        "compare", help="compare the speedups of saved benchmark results (one per machine)",
        description="Table the speedup of fastmlp over the reference for each "
                    "kernel|shape|dtype|threads, one column per file (files from fastmlp "
                    "bench or pytest bench --benchmark-json/--benchmark-save).")
    compare.add_argument("files", nargs="+", metavar="JSON")
    compare.add_argument("--plot", metavar="PNG", help="also save a bar chart of the speedups")
    compare.set_defaults(func=run_compare)
