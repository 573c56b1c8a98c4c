"""BLAS ``gemm`` inside a kernel, on row-major blocks with any row stride.

``C = alpha * op(A) @ op(B) + beta * C`` where each operand is a 2-D row-major
block whose rows may be longer than its width (a column slice ``X[:, f0:f1]``):
BLAS's leading dimension is the block's row stride. ``gemm_nt`` takes ``B`` as
stored and uses its transpose (``x @ W.T``: the forward product); ``gemm_tn``
transposes ``A`` (``delta.T @ x``: the weight gradient); ``beta = 1`` adds the
product into ``C`` (the SGD update ``W -= lr * grad`` in one call, no gradient
matrix). Numba's ``np.dot`` takes contiguous arrays only and always has ``beta = 0``.

Same entry point as ``np.dot`` (``numba_xxgemm`` in Numba's helper library, which
calls SciPy's ``dgemm``/``sgemm``): SciPy's OpenBLAS, whose thread count
:mod:`fastmlp.threads` sets. Blocks must have unit stride along their rows
(``strides[1] == itemsize``): every slice the kernels take has; nothing checks it.
"""
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np.linalg import check_blas_return, ensure_blas

from ._config import jit

_BLAS_KIND = {types.float64: "d", types.float32: "s"}


def _check(arrays, scalars):
    dtype = arrays[-1].dtype
    for array in arrays:
        if not (isinstance(array, types.Array) and array.ndim == 2 and array.layout in "CA"
                and array.dtype == dtype and dtype in _BLAS_KIND):
            raise TypingError(f"gemm takes row-major 2-D float32/float64 blocks of one dtype, "
                              f"got {arrays}")
    for scalar in scalars:
        if not isinstance(scalar, (types.Float, types.Integer)):
            raise TypingError(f"gemm's alpha and beta must be real scalars, got {scalar}")


def _make_gemm(trans_a, trans_b):
    """An intrinsic ``c = alpha * op(a) @ op(b) + beta * c``, with fixed transpositions."""

    @intrinsic
    def gemm(typingctx, a, b, c, alpha, beta):
        _check((a, b, c), (alpha, beta))
        ensure_blas()

        def codegen(context, builder, signature, args):
            a_arr, b_arr, c_arr = (context.make_array(ty)(context, builder, value)
                                   for ty, value in zip(signature.args[:3], args[:3]))
            dtype = c.dtype
            itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
                context.get_data_type(dtype)))
            a_rows, a_cols = cgutils.unpack_tuple(builder, a_arr.shape, 2)
            m, n = cgutils.unpack_tuple(builder, c_arr.shape, 2)
            k = a_rows if trans_a else a_cols
            lda, ldb, ldc = (builder.sdiv(cgutils.unpack_tuple(builder, arr.strides, 2)[0], itemsize)
                             for arr in (a_arr, b_arr, c_arr))
            alpha_slot, beta_slot = (cgutils.alloca_once_value(
                builder, context.cast(builder, value, ty, dtype))
                for value, ty in zip(args[3:], signature.args[3:]))
            char, void_p, intp = ir.IntType(8), ir.IntType(8).as_pointer(), cgutils.intp_t
            fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp,
                                                    void_p, void_p, intp, void_p, intp, void_p,
                                                    void_p, intp])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
            flag = {False: ir.Constant(char, ord("n")), True: ir.Constant(char, ord("t"))}
            # Row-major C = op(A) op(B) is column-major C.T = op(B).T op(A).T: a row-major block
            # is its own transpose in column-major terms, so BLAS gets (b, a), sizes (n, m, k).
            res = builder.call(fn, (ir.Constant(char, ord(_BLAS_KIND[dtype])), flag[trans_b],
                                    flag[trans_a], n, m, k, builder.bitcast(alpha_slot, void_p),
                                    builder.bitcast(b_arr.data, void_p), ldb,
                                    builder.bitcast(a_arr.data, void_p), lda,
                                    builder.bitcast(beta_slot, void_p),
                                    builder.bitcast(c_arr.data, void_p), ldc))
            check_blas_return(context, builder, res)
            return context.get_dummy_value()

        return types.none(a, b, c, alpha, beta), codegen

    return gemm


_gemm_nt = _make_gemm(False, True)
_gemm_tn = _make_gemm(True, False)


@jit
def gemm_nt(a, b, c, alpha, beta):
    """``c = alpha * a @ b.T + beta * c``: a (M, K), b (N, K), c (M, N). An empty ``c`` is skipped."""
    if c.shape[0] > 0 and c.shape[1] > 0:
        _gemm_nt(a, b, c, alpha, beta)


@jit
def gemm_tn(a, b, c, alpha, beta):
    """``c = alpha * a.T @ b + beta * c``: a (K, M), b (K, N), c (M, N). An empty ``c`` is skipped."""
    if c.shape[0] > 0 and c.shape[1] > 0:
        _gemm_tn(a, b, c, alpha, beta)
