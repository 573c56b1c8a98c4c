"""``C += alpha * (A @ B)`` inside a kernel: BLAS ``gemm`` with ``beta = 1``.

Numba's ``np.dot`` calls SciPy's BLAS with ``beta = 0`` (``C = A @ B``). The SGD
update ``w_h -= lr * (delta_h.T @ x)`` then needs a gradient matrix, written by
BLAS and read back by the update. With ``beta = 1`` BLAS adds the scaled product
into ``w_h`` as it computes it: no gradient matrix, one pass less over ``w_h``'s
size. Same entry point as ``np.dot`` (``numba_xxgemm`` in Numba's helper library,
which calls SciPy's ``dgemm``/``sgemm``), so the thread limits of
:mod:`fastmlp.threads` apply.
"""
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np.linalg import check_blas_return, ensure_blas

from ._config import jit

_BLAS_KIND = {types.float64: "d", types.float32: "s"}


@intrinsic
def _gemm_beta1(typingctx, a, b, c, alpha):
    """``c += alpha * (a @ b)``; a (M, K), b (K, N), c (M, N), C-contiguous, no size checks."""
    for array in (a, b, c):
        if not (isinstance(array, types.Array) and array.ndim == 2 and array.layout == "C"
                and array.dtype == c.dtype and c.dtype in _BLAS_KIND):
            raise TypingError(f"gemm_add takes C-contiguous 2-D float32/float64 arrays of one "
                              f"dtype, got {a}, {b}, {c}")
    if not isinstance(alpha, (types.Float, types.Integer)):
        raise TypingError(f"gemm_add's alpha must be a real scalar, got {alpha}")
    ensure_blas()

    def codegen(context, builder, signature, args):
        a_arr, b_arr, c_arr = (context.make_array(ty)(context, builder, value)
                               for ty, value in zip(signature.args[:3], args[:3]))
        m, k = cgutils.unpack_tuple(builder, a_arr.shape, 2)
        n = cgutils.unpack_tuple(builder, b_arr.shape, 2)[1]
        dtype = c.dtype
        alpha_slot = cgutils.alloca_once_value(
            builder, context.cast(builder, args[3], signature.args[3], dtype))
        beta_slot = cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0))
        char, void_p, intp = ir.IntType(8), ir.IntType(8).as_pointer(), cgutils.intp_t
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp,
                                                void_p, void_p, intp, void_p, intp, void_p,
                                                void_p, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        notrans = ir.Constant(char, ord("n"))
        # Row-major C = A @ B is column-major C.T = B.T @ A.T: BLAS gets (b, a), sizes (n, m, k).
        res = builder.call(fn, (ir.Constant(char, ord(_BLAS_KIND[dtype])), notrans, notrans,
                                n, m, k, builder.bitcast(alpha_slot, void_p),
                                builder.bitcast(b_arr.data, void_p), n,
                                builder.bitcast(a_arr.data, void_p), k,
                                builder.bitcast(beta_slot, void_p),
                                builder.bitcast(c_arr.data, void_p), n))
        check_blas_return(context, builder, res)
        return context.get_dummy_value()

    return types.none(a, b, c, alpha), codegen


@jit
def gemm_add(a, b, c, alpha):
    """``c += alpha * (a @ b)``: a (M, K), b (K, N), c (M, N), C-contiguous, one dtype.

    Shapes are the caller's to get right (as for every kernel); empty products are skipped.
    """
    if a.shape[0] > 0 and b.shape[1] > 0 and a.shape[1] > 0:
        _gemm_beta1(a, b, c, alpha)
