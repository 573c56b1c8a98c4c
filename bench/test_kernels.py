"""One benchmark per kernel, shape, implementation, dtype and thread count (see conftest.py)."""
from fastmlp.benchmarks.cases import Case


def test_kernel(measure, kernel, impl, dtype, threads, rows, batch, hidden):
    measure(Case(kernel, impl, dtype, threads, rows, batch, hidden))
