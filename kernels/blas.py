"""BLAS ``gemm`` inside a kernel, on row-major blocks with any row stride: NumPy's own BLAS.

``C = alpha * op(A) @ op(B) + beta * C`` where each operand is a 2-D row-major
block whose rows may be longer than its width (a column slice ``X[:, f0:f1]``):
BLAS's leading dimension is the block's row stride. ``gemm_nn`` is ``a @ b``;
``gemm_nt`` takes ``B`` as stored and uses its transpose (``x @ W.T``: the forward
product); ``gemm_tn`` transposes ``A`` (``delta.T @ x``: the weight gradient);
``beta = 1`` adds the product into ``C`` (the SGD update ``W -= lr * grad`` in one
call, no gradient matrix). Numba's ``np.dot`` takes contiguous arrays only and
always has ``beta = 0``.

The library is the one NumPy's ``@`` calls where it can be found (pip's NumPy
bundles OpenBLAS with a CBLAS interface, ILP64), so that every product is at least as
fast as the chapter's: SciPy's OpenBLAS, which Numba's ``np.dot`` calls, was measured
up to 2x slower at the chapter's small shapes (OpenBLAS 0.3.30 against NumPy's 0.3.31,
float32 10 x 784 x 50 on a Zen 3). Else SciPy's CBLAS, else Numba's own entry point.
Compiled kernels call the symbol ``fastmlp_dgemm`` / ``fastmlp_sgemm``, whose ABI
never changes (so cached kernels stay valid); at import a two-line shim, compiled
by llvmlite in milliseconds, maps it onto the library found. :data:`LIBRARY`
names it; :mod:`fastmlp.threads` sets its thread count. Blocks must have unit stride
along their rows (``strides[1] == itemsize``): every slice the kernels take has;
nothing checks it.
"""
import ctypes
import os

import llvmlite.binding as llvm
import numba._helperlib
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic

from ._config import jit

_BLAS_KIND = {types.float64: "d", types.float32: "s"}
_LLVM_TYPE = {"d": "double", "s": "float"}
NO_TRANS, TRANS, ROW_MAJOR = 111, 112, 101  # CBLAS's enums
# The shims' ABI (row-major, CBLAS's transposition codes, 64-bit sizes):
# void fastmlp_<k>gemm(i32 trans_a, i32 trans_b, i64 m, i64 n, i64 k, T alpha, T* a,
#                      i64 lda, T* b, i64 ldb, T beta, T* c, i64 ldc)
_ARGS = "i32 %ta, i32 %tb, i64 %m, i64 %n, i64 %k, {t} %alpha, {t}* %a, i64 %lda, {t}* %b, " \
        "i64 %ldb, {t} %beta, {t}* %c, i64 %ldc"


def _find_cblas():
    """``(path, {"d": address, "s": address}, ilp64)`` of the CBLAS to call, or None.

    NumPy's own library first; else SciPy's (loaded only then), else any other BLAS."""
    from threadpoolctl import ThreadpoolController
    site = os.path.dirname(os.path.dirname(np.__file__))

    def rank(controller):
        for order, package in enumerate(("numpy", "scipy")):
            if controller.filepath.startswith(os.path.join(site, package)):
                return order
        return 2

    controllers = ThreadpoolController().select(user_api="blas").lib_controllers
    if not any(rank(c) == 0 for c in controllers):
        import scipy.linalg.cython_blas  # noqa: F401  loads SciPy's BLAS, so threadpoolctl sees it
        controllers = ThreadpoolController().select(user_api="blas").lib_controllers
    for controller in sorted(controllers, key=rank):
        found = cblas_gemms(controller)
        if found is not None:
            return (controller.filepath,) + found
    return None


def cblas_gemms(controller):
    """``({"d": address, "s": address}, ilp64)`` of the CBLAS ``gemm``s in the library of a
    threadpoolctl ``controller``, or None where it has none."""
    prefix, suffix = ("", "")
    if controller.internal_api == "openblas":
        prefix, suffix = controller._find_affixes()
    lib = ctypes.CDLL(controller.filepath)
    try:
        return ({kind: ctypes.cast(getattr(lib, f"{prefix}cblas_{kind}gemm{suffix}"),
                                   ctypes.c_void_p).value for kind in "ds"}, "64" in suffix)
    except AttributeError:
        return None


def _shim(kind, address, ilp64):
    """LLVM IR of ``fastmlp_<kind>gemm_shim``: the fixed ABI onto a CBLAS ``address``
    (32- or 64-bit sizes) or, with no address, onto Numba's ``numba_xxgemm``."""
    t = _LLVM_TYPE[kind]
    head = f"define void @fastmlp_{kind}gemm_shim({_ARGS.format(t=t)}) {{\n"
    if address is None:  # column-major: C.T = op(B).T op(A).T, scalars by pointer
        fn = numba._helperlib.c_helpers["xxgemm"]
        body = (f"  %pa = alloca {t}\n  store {t} %alpha, {t}* %pa\n"
                f"  %pb = alloca {t}\n  store {t} %beta, {t}* %pb\n"
                f"  %isa = icmp eq i32 %ta, {TRANS}\n  %ca = select i1 %isa, i8 116, i8 110\n"
                f"  %isb = icmp eq i32 %tb, {TRANS}\n  %cb = select i1 %isb, i8 116, i8 110\n"
                f"  %f = inttoptr i64 {fn} to i32 (i8, i8, i8, i64, i64, i64, i8*, i8*, i64, "
                f"i8*, i64, i8*, i8*, i64)*\n")
        cast = "".join(f"  %{v}8 = bitcast {t}* %{v} to i8*\n" for v in "abc") + \
            "".join(f"  %p{v}8 = bitcast {t}* %p{v} to i8*\n" for v in "ab")
        call = (f"  call i32 %f(i8 {ord(kind)}, i8 %cb, i8 %ca, i64 %n, i64 %m, i64 %k, "
                f"i8* %pa8, i8* %b8, i64 %ldb, i8* %a8, i64 %lda, i8* %pb8, i8* %c8, i64 %ldc)\n")
        return head + body + cast + call + "  ret void\n}\n"
    size = "i64" if ilp64 else "i32"
    convert = "add i64 %{v}, 0" if ilp64 else "trunc i64 %{v} to i32"  # the sizes as the library's ints
    sizes = "".join(f"  %{v}s = {convert.format(v=v)}\n" for v in ("m", "n", "k", "lda", "ldb", "ldc"))
    body = (f"  %f = inttoptr i64 {address} to void (i32, i32, i32, {size}, {size}, {size}, {t}, "
            f"{t}*, {size}, {t}*, {size}, {t}, {t}*, {size})*\n")
    call = (f"  call void %f(i32 {ROW_MAJOR}, i32 %ta, i32 %tb, {size} %ms, {size} %ns, "
            f"{size} %ks, {t} %alpha, {t}* %a, {size} %ldas, {t}* %b, {size} %ldbs, {t} %beta, "
            f"{t}* %c, {size} %ldcs)\n")
    return head + sizes + body + call + "  ret void\n}\n"


def compile_shims(addresses, ilp64):
    """An llvmlite engine holding ``fastmlp_dgemm_shim`` and ``fastmlp_sgemm_shim`` onto
    ``addresses`` (``{"d": ..., "s": ...}``, None for Numba's entry point)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    module = llvm.parse_assembly("".join(_shim(kind, addresses[kind], ilp64) for kind in "ds"))
    module.verify()
    engine = llvm.create_mcjit_compiler(module,
                                        llvm.Target.from_default_triple().create_target_machine())
    engine.finalize_object()
    return engine


def _install():
    """Compile the shims and register them as ``fastmlp_dgemm`` / ``fastmlp_sgemm``."""
    found = _find_cblas()
    path, addresses, ilp64 = found if found else (None, {"d": None, "s": None}, False)
    engine = compile_shims(addresses, ilp64)
    for kind in "ds":
        llvm.add_symbol(f"fastmlp_{kind}gemm", engine.get_function_address(f"fastmlp_{kind}gemm_shim"))
    return engine, path


_ENGINE, LIBRARY = _install()
"""The shims' engine (kept alive), and the path of the BLAS they call (None: Numba's)."""


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
            alpha_v, beta_v = (context.cast(builder, value, ty, dtype)
                               for value, ty in zip(args[3:], signature.args[3:]))
            real, i32, i64 = context.get_data_type(dtype), ir.IntType(32), ir.IntType(64)
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i64, i64, i64, real, real.as_pointer(),
                                                   i64, real.as_pointer(), i64, real,
                                                   real.as_pointer(), i64])
            kind = _BLAS_KIND[dtype]
            fn = cgutils.get_or_insert_function(builder.module, fnty, f"fastmlp_{kind}gemm")
            code = {False: ir.Constant(i32, NO_TRANS), True: ir.Constant(i32, TRANS)}
            builder.call(fn, (code[trans_a], code[trans_b], m, n, k, alpha_v, a_arr.data, lda,
                              b_arr.data, ldb, beta_v, c_arr.data, ldc))
            return context.get_dummy_value()

        return types.none(a, b, c, alpha, beta), codegen

    return gemm


_gemm_nn = _make_gemm(False, False)
_gemm_nt = _make_gemm(False, True)
_gemm_tn = _make_gemm(True, False)


@jit
def gemm_nn(a, b, c, alpha, beta):
    """``c = alpha * a @ b + beta * c``: a (M, K), b (K, N), c (M, N). An empty ``c`` is skipped."""
    if c.shape[0] > 0 and c.shape[1] > 0:
        _gemm_nn(a, b, c, alpha, beta)


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
