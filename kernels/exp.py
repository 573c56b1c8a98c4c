"""``exp`` that LLVM can vectorise, for the sigmoid in the forward pass.

``math.exp`` compiles to a call into the C library, one element at a time
(Numba vectorises it only with Intel's SVML, which is not a dependency here):
about 3.5 ns a call, 60 calls per example per pass. This one is plain arithmetic:

    exp(x) = 2**n * exp(r),  n = round(x / ln 2),  r = x - n ln 2,  |r| <= ln(2) / 2

``n`` is rounded by adding ``1.5 * 2**52`` (float32: ``2**23``), which leaves it in the
sum's low mantissa bits: no float-to-integer conversion, which AVX2 cannot vectorise.

``r`` is computed with ln 2 split in two (Cody and Waite): ``n * LN2_HI`` is exact
for every ``n`` in range, in float64 and float32, so ``r`` carries no rounding
from the reduction. ``exp(r)`` is its Taylor series to degree 12 (truncation below
2e-16 relative at ``|r| = ln(2)/2``), ``2**n`` is built from its exponent bits in
two halves, so that results down to the subnormals and up to the overflow to
``inf`` come out as ``np.exp`` gives them. Measured against an exact (long double)
exp: at most 2.4 ulp in float64 and 1.0 in float32 (NumPy's: 0.7 and 2.5 ulp); see
tests/test_exp.py. About 1.7 ns per element in 256-bit vectors, against 3.5 ns per call.

Compiled with ``contract`` only: re-association could merge the two halves of
ln 2 and undo the exact reduction.
"""
import math

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

# Coefficients in float64; each dtype's implementation gets them in its own type.
LOG2_E = 1.4426950408889634
LN2_HI = 0.693359375  # 9 significant bits: n * LN2_HI is exact for |n| < 2**15
LN2_LO = -2.1219444005469058e-4  # ln 2 - LN2_HI
# Clamp bounds per dtype: beyond them exp is 0 or inf, inside them 2**n is two normal halves.
X_RANGE = {np.float64: (-746.0, 710.0), np.float32: (-104.0, 89.0)}


@intrinsic
def _times_pow2(typingctx, p, k, shifter):
    """``p * 2.0 ** n``, where ``k = n + shifter`` holds the integer ``n`` in its low mantissa
    bits (``shifter = 1.5 * 2**mantissa_bits``), in two halves ``2**(n >> 1) * 2**(n - (n >> 1))``
    so that each is a normal number from the subnormal results up to the overflow.

    In 32-bit integers: x86's AVX2 has no vector conversion between floats and 64-bit
    integers nor a 64-bit arithmetic shift, so ``math.floor`` and int64 code would leave the
    loop scalar on AVX2 machines (measured 4x slower on a Zen 3).
    """
    if not (p == k == shifter and p in (types.float32, types.float64)):
        raise TypingError(f"_times_pow2 takes three floats of one type, got {p}, {k}, {shifter}")

    def codegen(context, builder, signature, args):
        bits, mantissa, bias = (64, 52, 1023) if p == types.float64 else (32, 23, 127)
        int_type, i32 = ir.IntType(bits), ir.IntType(32)
        n = builder.sub(builder.bitcast(args[1], int_type), builder.bitcast(args[2], int_type))
        if bits > 32:
            n = builder.trunc(n, i32)
        low = builder.ashr(n, ir.Constant(i32, 1))
        result = args[0]
        for half in (low, builder.sub(n, low)):
            exponent = builder.add(half, ir.Constant(i32, bias))
            if bits > 32:
                exponent = builder.sext(exponent, int_type)
            power = builder.bitcast(builder.shl(exponent, ir.Constant(int_type, mantissa)),
                                    context.get_value_type(p))
            result = builder.fmul(result, power)
        return result

    return p(p, k, shifter), codegen


def exp(x):
    """``e ** x`` for a float32 or float64 scalar, in its type (NaN and +-inf as ``np.exp``).

    Python calls get ``np.exp``; compiled kernels get the implementation below.
    """
    return np.exp(x)


@overload(exp, jit_options=dict(fastmath={"contract"}))
def _exp(x):
    if x not in (types.float32, types.float64):
        return None
    t = np.float32 if x == types.float32 else np.float64
    log2_e, ln2_hi, ln2_lo = t(LOG2_E), t(LN2_HI), t(LN2_LO)
    x_min, x_max = (t(bound) for bound in X_RANGE[t])
    one = t(1)
    shifter = t(1.5 * 2.0 ** (52 if t is np.float64 else 23))
    c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = (t(1 / math.factorial(k))
                                                       for k in range(12, 1, -1))

    def impl(x):
        xc = min(max(x, x_min), x_max)
        k = xc * log2_e + shifter  # n = round(x / ln 2) lands in k's low mantissa bits
        nf = k - shifter
        r = (xc - nf * ln2_hi) - nf * ln2_lo
        p = ((((((((((c12 * r + c11) * r + c10) * r + c9) * r + c8) * r + c7) * r + c6) * r
                  + c5) * r + c4) * r + c3) * r + c2) * r * r + r + one
        result = _times_pow2(p, k, shifter)
        return result if x == x else x

    return impl
