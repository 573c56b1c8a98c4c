"""The kernels' vectorisable ``exp`` (fastmlp.kernels.exp) against a higher-precision exp.

Error bounds, from the arithmetic: the reduction ``r = x - n ln 2`` is exact, the
Taylor series to degree 12 is within 2e-16 relative on ``|r| <= ln(2)/2``, and the
Horner steps round about once per term near 1 (measured max: 2.4 ulp in float64,
1.0 ulp in float32). The bounds below are those plus half an ulp of margin.
"""
import numba
import numpy as np
import pytest

from fastmlp.kernels._config import FASTMATH
from fastmlp.kernels.exp import exp

MAX_ULP = {np.float64: 3.0, np.float32: 1.5}
NORMAL_RANGE = {np.float64: (-708.0, 709.0), np.float32: (-87.0, 88.0)}

needs_long_double = pytest.mark.skipif(
    np.finfo(np.longdouble).eps > 1e-18,
    reason="np.longdouble is no wider than float64 here: no exact exp to compare with")


@numba.njit(fastmath=set(FASTMATH))  # a kernel's flags around it
def exp_each(x, out):
    for i in range(x.shape[0]):
        out[i] = exp(x[i])


def run(x):
    out = np.empty_like(x)
    exp_each(x, out)
    return out


@needs_long_double
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_within_bound_of_exact(dtype):
    rng = np.random.default_rng(7)
    lo, hi = NORMAL_RANGE[dtype]
    x = np.concatenate([rng.uniform(lo, hi, 200_000), rng.uniform(-1, 1, 200_000),
                        rng.uniform(-1e-8, 1e-8, 1000), [0.0, -0.0, lo, hi]]).astype(dtype)
    exact = np.exp(x.astype(np.longdouble))
    ulp = np.spacing(exact.astype(dtype)).astype(np.longdouble)
    assert float(np.max(np.abs(run(x) - exact) / ulp)) <= MAX_ULP[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_overflow_underflow_and_special_values_as_numpy(dtype):
    info = np.finfo(dtype)
    edge = float(np.log(info.max))
    x = np.array([np.inf, -np.inf, np.nan, -np.nan, edge - 1e-3, edge + 1e-3, 1e30, -1e30,
                  float(np.log(info.tiny)) - 5, float(np.log(info.smallest_subnormal)) - 1],
                 dtype)
    with np.errstate(over="ignore", under="ignore"):
        expected = np.exp(x)
    out = run(x)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(out[~np.isnan(out)] == np.inf, expected[~np.isnan(out)] == np.inf)
    # subnormal results: within one subnormal step of numpy's
    finite = np.isfinite(expected)
    np.testing.assert_allclose(out[finite], expected[finite], rtol=4 * info.eps,
                               atol=info.smallest_subnormal)


def test_exp_keeps_the_argument_type():
    for dtype in (np.float64, np.float32):
        assert run(np.ones(3, dtype)).dtype == dtype


def test_exp_is_vectorised():
    """The point of this exp: no call into the C library per element."""
    run(np.ones(16))
    asm = exp_each.inspect_asm(exp_each.signatures[0])
    calls = [line.split()[-1] for line in asm.splitlines() if line.strip().startswith("call")]
    assert not any("exp" in target for target in calls), calls
