"""Helpers of the kernels: ``kernels.blas.gemm_add`` (BLAS gemm with beta = 1) against NumPy,
cache-line-aligned workspaces, and the 512-bit vector hint.

Tolerance: the same float64 sums as ``A @ B`` in NumPy, in BLAS's order with one
fused multiply-add more: ``1e-12`` of the largest entry (K <= 300 terms of
products of order 1 give ~K * 2**-53 ~ 3e-14), float32 ``1e-5`` (K * 2**-24 ~ 2e-5
at K = 300 is the worst case; the random terms here cancel to well below it).
"""
import numba
import numpy as np
import pytest

from fastmlp._memory import CACHE_LINE, aligned_copy, empty_aligned
from fastmlp.kernels._config import prefer_512_bit_vectors
from fastmlp.kernels.blas import gemm_add

RTOL = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (7, 5, 9), (50, 100, 784), (33, 3, 2), (4, 300, 1)])
def test_gemm_add_is_c_plus_alpha_a_b(dtype, m, k, n):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b, c = (rng.standard_normal(shape).astype(dtype) for shape in ((m, k), (k, n), (m, n)))
    expected = c.astype(np.float64) - 0.1 * (a.astype(np.float64) @ b.astype(np.float64))
    gemm_add(a, b, c, dtype(-0.1))
    assert np.max(np.abs(c - expected)) <= RTOL[dtype] * np.max(np.abs(expected))


@numba.njit
def update_rows(a, b, c, h0, h1, alpha):
    gemm_add(a[h0:h1], b, c[h0:h1], alpha)


def test_gemm_add_on_row_blocks_and_empty_blocks():
    rng = np.random.default_rng(3)
    a, b, c = rng.random((10, 6)), rng.random((6, 4)), rng.random((10, 4))
    expected = c.copy()
    expected[2:7] += 2.0 * (a[2:7] @ b)
    update_rows(a, b, c, 2, 7, 2.0)
    update_rows(a, b, c, 5, 5, 2.0)  # empty: nothing to do, no BLAS call
    np.testing.assert_allclose(c, expected, rtol=1e-14)


def test_gemm_add_rejects_other_layouts_at_compile_time():
    a = np.ones((4, 4))
    with pytest.raises(numba.core.errors.TypingError, match="C-contiguous"):
        gemm_add(np.asfortranarray(a), a, a, 1.0)


@pytest.mark.parametrize("shape, dtype", [((3, 784), np.float64), ((2, 5, 7), np.float32),
                                          ((0,), np.float64)])
def test_workspaces_start_on_a_cache_line(shape, dtype):
    out = empty_aligned(shape, dtype)
    assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous
    assert out.size == 0 or out.ctypes.data % CACHE_LINE == 0  # an empty array has no first element
    source = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    copy = aligned_copy(source)
    assert copy.size == 0 or copy.ctypes.data % CACHE_LINE == 0
    np.testing.assert_array_equal(copy, source)


def test_vector_width_hint_reaches_the_compiled_function():
    @numba.njit(cache=False)  # inspectable: cached code cannot show its IR
    def total(x):
        prefer_512_bit_vectors()
        s = 0.0
        for v in x:
            s += v
        return s

    assert total(np.arange(10.0)) == 45.0
    llvm_ir = total.inspect_llvm(total.signatures[0])
    assert '"prefer-vector-width"="512"' in llvm_ir
