"""Options for every pytest run from the repository: ``pytest --benchmark`` runs ``bench/``.

Plain ``pytest`` runs ``tests/`` (``testpaths``) and times nothing;
``pytest --benchmark`` runs the benchmark suite instead, as
``pytest bench --benchmark-only`` does (see ``bench/conftest.py``), with any
other pytest or pytest-benchmark option. ``--quick`` is the suite's small grid.
The options live here, not in ``bench/conftest.py``, because pytest reads a
command line's options only from the conftest files of the paths it is given
(or of ``testpaths``), and ``pytest --benchmark`` is given none.
"""
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent / "bench"


def pytest_addoption(parser):
    parser.addoption("--benchmark", action="store_true",
                     help="run the fastmlp benchmark suite (bench/) instead of the tests, "
                          "as 'pytest bench --benchmark-only' does")
    parser.addoption("--quick", action="store_true",
                     help="fastmlp benchmarks: batch 100, hidden 50 only, few rounds "
                          "(also FASTMLP_BENCH_QUICK=1)")


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark reads --benchmark-only
def pytest_configure(config):
    if not config.getoption("benchmark"):
        return
    config.option.benchmark_only = True
    if config.args_source == pytest.Config.ArgsSource.TESTPATHS:  # no paths given: bench/
        config.args = [str(BENCH)]
