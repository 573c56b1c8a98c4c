"""Benchmarks of fastmlp against the chapter's NumPy code, and the machine they ran on.

Shared by the pytest-benchmark suite in ``bench/`` and by two commands:

* ``fastmlp bench``: the headline cases (the chapter epoch and a few others),
  reference and fastmlp interleaved round by round, printed as a table and
  saved as JSON in pytest-benchmark's format;
* ``fastmlp compare A.json B.json ...``: the speedups of several such files
  (one per machine, say) side by side, as a table and optionally a chart.

============= ================================================================
module        what
============= ================================================================
``cases``     :class:`~.cases.Case` (kernel, shape, impl, dtype, threads), its cost, the data
``workloads`` a case's inputs and workspaces, ready to time
``peers``     scikit-learn, PyTorch and JAX (a worker process per case) on the chapter epoch
``timing``    one timed call, thread counts and limits
``machine``   the fingerprint: CPU, caches, LLVM target, libraries, GEMM peak, commit
``report``    statistics, speedups, GFLOP/s, tables, result files, the compare plot
``commands``  ``fastmlp bench`` and ``fastmlp compare`` (parsers: :mod:`fastmlp.cli.bench`)
============= ================================================================

``python -m fastmlp.benchmarks --slug`` prints this machine's CPU slug (to
name saved results); ``python -m fastmlp.benchmarks bench|compare ...`` runs
the commands.
"""
