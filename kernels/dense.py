"""Dense layers: the forward pass, the deltas and the weight gradients.

Two kinds of matrix product, each where it is faster:

* forward ``z_h[n, h] = sum_f x[n, f] * w_h[h, f]``, ``A @ B.T`` with both operands
  contiguous along the reduction axis: ``gemm_nt``, a 4 x 4 register-tiled dot
  product that LLVM vectorises (16 accumulators, 8 loads per 16 multiply-adds),
  in 512-bit registers where the CPU has them (``prefer_512_bit_vectors``; measured
  58 -> 71 GFLOP/s in float64 on cache-line-aligned operands, see fastmlp._memory).
  BLAS measured slower here (it packs ``w_h`` again on every call).
  Tiles start at multiples of 4 of the caller's range; leftovers take 1 x 4, 4 x 1
  and 1 x 1 paths. Callers that split rows between threads cut at multiples of 4, so
  every output element takes the same path, hence the same bits, at any thread count.
* weight gradients ``d_w_h = delta_h.T @ x`` (a reduction over the minibatch,
  often short): ``np.dot`` inside the kernel, i.e. SciPy's BLAS. A dot product over
  the batch would pay a horizontal sum per output and need ``x.T``; BLAS
  accumulates along the batch in vector registers and reads ``x`` as it is
  (measured: 2x faster at batch 100, 3x at batch 10, one thread). The caller keeps
  BLAS at one thread (``fastmlp.threads.threads_for``): these calls run inside
  parallel regions. A BLAS call's bits can depend on its size (OpenBLAS picks a
  kernel by shape), so the gradient is cut into ``blas_pieces`` row blocks, a
  count that depends on the shape only, never on the thread count. In training,
  the update ``w_h -= lr * d_w_h`` is folded into that BLAS call (``gemm_add``).
"""
import numba
import numpy as np

from ._config import RELU, jit, prefer_512_bit_vectors
from .blas import gemm_add
from .exp import exp

# A bound of 0 passed as ZERO, not as the literal 0: Numba compiles a callee once per distinct
# argument type, and a literal is a type of its own (an extra compilation on a cold cache).
ZERO = np.int64(0)
L2_BLOCK_BYTES = 512 * 1024  # rows of A that gemm_nt keeps in L2 at once (a quarter of a 2 MiB L2)
SMALL_BATCH = 8  # fewer examples than this: weight gradients without BLAS (see gradient_rows)
# Fewest gradient rows per BLAS call: each call packs x again. From L2 that costs ~25% at 25 rows;
# a minibatch larger than L2 is packed from memory, and wants longer pieces (measured at batch
# 1000, hidden 1024: 33 -> 26 ms per update at 128 rows, one thread; 18 -> 16 ms at two).
BLAS_PIECE_ROWS = 32
BLAS_PIECE_ROWS_BEYOND_L2 = 128
L2_BYTES = 1024 * 1024  # a minibatch above this is taken to be packed from beyond L2


@jit
def sigmoid(z, one):
    """``1 / (1 + exp(-z))`` in the type of ``one`` (keeps float32 in float32)."""
    return one / (one + exp(-z))


@jit
def activate(z, activation, one):
    if activation == RELU:
        return z if z > 0 else z * 0  # z * 0: a zero of z's type (the chapter's np.maximum(0, z))
    return sigmoid(z, one)


@jit(reassociate=False)
def activation_derivative(a, activation, one):
    """Derivative in terms of the activation's output ``a`` (chapter: ``a * (1 - a)``, ``a > 0``)."""
    if activation == RELU:
        return one if a > 0 else one * 0
    return a * (one - a)


@jit
def _gemm_nt_tiles(A, B, C, m0, m1, n0, n1):
    """The 4 x 4 tiles of ``gemm_nt``: ``m1 - m0`` and ``n1 - n0`` are multiples of 4."""
    prefer_512_bit_vectors()
    K = A.shape[1]
    zero = C.dtype.type(0)
    for k in range(n0, n1, 4):  # a 4-row panel of B stays in L1 while A's rows pass it
        for i in range(m0, m1, 4):
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = zero
            c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = zero
            for r in range(K):
                a0 = A[i, r]
                a1 = A[i + 1, r]
                a2 = A[i + 2, r]
                a3 = A[i + 3, r]
                b0 = B[k, r]
                b1 = B[k + 1, r]
                b2 = B[k + 2, r]
                b3 = B[k + 3, r]
                c00 += a0 * b0
                c01 += a0 * b1
                c02 += a0 * b2
                c03 += a0 * b3
                c10 += a1 * b0
                c11 += a1 * b1
                c12 += a1 * b2
                c13 += a1 * b3
                c20 += a2 * b0
                c21 += a2 * b1
                c22 += a2 * b2
                c23 += a2 * b3
                c30 += a3 * b0
                c31 += a3 * b1
                c32 += a3 * b2
                c33 += a3 * b3
            C[i, k] = c00
            C[i, k + 1] = c01
            C[i, k + 2] = c02
            C[i, k + 3] = c03
            C[i + 1, k] = c10
            C[i + 1, k + 1] = c11
            C[i + 1, k + 2] = c12
            C[i + 1, k + 3] = c13
            C[i + 2, k] = c20
            C[i + 2, k + 1] = c21
            C[i + 2, k + 2] = c22
            C[i + 2, k + 3] = c23
            C[i + 3, k] = c30
            C[i + 3, k + 1] = c31
            C[i + 3, k + 2] = c32
            C[i + 3, k + 3] = c33


@jit
def gemm_nt(A, B, C, m0, m1, n0, n1):
    """``C[m0:m1, n0:n1] = A[m0:m1] @ B[n0:n1].T``.

    A (M, K), B (N, K), C (M, N), all C-contiguous. ``m0`` and ``n0`` should be
    multiples of 4 for thread-count-independent results (see module docstring).
    """
    K = A.shape[1]
    zero = C.dtype.type(0)
    m4 = m0 + (m1 - m0) // 4 * 4
    n4 = n0 + (n1 - n0) // 4 * 4
    # Rows of A in blocks that stay in L2 while every 4-row panel of B (in L1) passes them
    row_block = max(4, L2_BLOCK_BYTES // max(1, K * A.itemsize) // 4 * 4)
    for mb in range(m0, m4, row_block):
        _gemm_nt_tiles(A, B, C, mb, min(mb + row_block, m4), n0, n4)
    for k in range(n0, n4, 4):
        for i in range(m4, m1):  # leftover rows of A against each 4-row panel of B
            c0 = c1 = c2 = c3 = zero
            for r in range(K):
                a = A[i, r]
                c0 += a * B[k, r]
                c1 += a * B[k + 1, r]
                c2 += a * B[k + 2, r]
                c3 += a * B[k + 3, r]
            C[i, k] = c0
            C[i, k + 1] = c1
            C[i, k + 2] = c2
            C[i, k + 3] = c3
    for k in range(n4, n1):  # leftover rows of B
        for i in range(m0, m4, 4):
            c0 = c1 = c2 = c3 = zero
            for r in range(K):
                b = B[k, r]
                c0 += A[i, r] * b
                c1 += A[i + 1, r] * b
                c2 += A[i + 2, r] * b
                c3 += A[i + 3, r] * b
            C[i, k] = c0
            C[i + 1, k] = c1
            C[i + 2, k] = c2
            C[i + 3, k] = c3
        for i in range(m4, m1):
            c = zero
            for r in range(K):
                c += A[i, r] * B[k, r]
            C[i, k] = c


@jit
def chunk(n, num_chunks, c):
    """Bounds of chunk ``c`` of ``range(n)`` cut into ``num_chunks`` pieces at multiples of 4.

    The ``ceil(n / 4)`` tiles are dealt out evenly (chunks differ by at most one tile).
    Callers pass a ``prange`` index as ``np.int64(c)``: Numba types that index int64, then
    uint64 in the parallel body, and would compile every callee twice (cold-cache time).
    """
    num_tiles = (n + 3) // 4
    return (min(num_tiles * c // num_chunks * 4, n),
            min(num_tiles * (c + 1) // num_chunks * 4, n))


@jit
def hidden_layer(x, weight_h, bias_h, activation, a_h, n0, n1, h0, h1):
    """``a_h[n0:n1, h0:h1] = act(x[n0:n1] @ w_h[h0:h1].T + b_h[h0:h1])``; x (N, F), weight_h (H, F)."""
    one = a_h.dtype.type(1)
    gemm_nt(x, weight_h, a_h, n0, n1, h0, h1)
    for n in range(n0, n1):
        for h in range(h0, h1):
            a_h[n, h] = activate(a_h[n, h] + bias_h[h], activation, one)


@jit
def output_layer(a_h, weight_out, bias_out, a_out, n0, n1):
    """``a_out[n0:n1] = sigmoid(a_h[n0:n1] @ w_out.T + b_out)``; weight_out (C, H), a_out (N, C)."""
    one = a_out.dtype.type(1)
    gemm_nt(a_h, weight_out, a_out, n0, n1, ZERO, weight_out.shape[0])
    for n in range(n0, n1):
        for c in range(weight_out.shape[0]):
            a_out[n, c] = sigmoid(a_out[n, c] + bias_out[c], one)


@jit
def forward_rows(x, weight_h, bias_h, weight_out, bias_out, activation, a_h, a_out, n0, n1):
    """Forward pass of rows ``n0:n1``: ``a_h = act(x @ w_h.T + b_h)``, ``a_out = sigmoid(a_h @ w_out.T + b_out)``.

    x (N, F), weight_h (H, F), weight_out (C, H); a_h (N, H) and a_out (N, C) are outputs.
    Written out, not as calls of ``hidden_layer`` and ``output_layer`` (which
    ``epoch.train_steps_by_unit`` uses): through them, ``epoch.evaluate`` and
    ``train_steps`` measured ~35% slower (float32, one thread; a different inlining in
    those larger kernels, it seems), and took ~0.3 s longer to compile.
    """
    one = a_h.dtype.type(1)
    gemm_nt(x, weight_h, a_h, n0, n1, ZERO, weight_h.shape[0])
    for n in range(n0, n1):
        for h in range(a_h.shape[1]):
            a_h[n, h] = activate(a_h[n, h] + bias_h[h], activation, one)
    gemm_nt(a_h, weight_out, a_out, n0, n1, ZERO, weight_out.shape[0])
    for n in range(n0, n1):
        for c in range(a_out.shape[1]):
            a_out[n, c] = sigmoid(a_out[n, c] + bias_out[c], one)


@jit(parallel=True)
def forward(x, weight_h, bias_h, weight_out, bias_out, activation, a_h, a_out, num_chunks):
    """Forward pass of every row of ``x``, rows split between threads."""
    for c in numba.prange(num_chunks):
        n0, n1 = chunk(x.shape[0], num_chunks, np.int64(c))
        forward_rows(x, weight_h, bias_h, weight_out, bias_out, activation, a_h, a_out, n0, n1)


@jit(reassociate=False)
def output_delta(a, is_target, num_rows, one):
    """The chapter's ``d_loss/d_z_out`` of one output ``a`` of ``num_rows`` (in the type of ``one``):
    ``2 (a - target) / N * a (1 - a)``."""
    target = one if is_target else one * 0
    return (one + one) * (a - target) / num_rows * (a * (one - a))


@jit(reassociate=False)
def output_deltas(a_h, a_out, y, weight_out, activation, delta_out_t, d_a_h, delta_h_t, n0, n1):
    """Deltas of rows ``n0:n1``, stored transposed for the weight-gradient products.

    ``delta_out = 2 (a_out - onehot(y)) / N * a_out (1 - a_out)``   -> delta_out_t (C, N)
    ``delta_h   = (delta_out @ w_out) * act'(a_h)``                 -> delta_h_t (H, N)
    ``delta_out @ w_out`` is accumulated row by row in ``d_a_h`` (N, H), a workspace,
    so the inner loop runs along w_out's rows. The one-hot matrix is never built.
    """
    one = a_out.dtype.type(1)
    num_rows = a_out.dtype.type(a_out.shape[0])
    num_classes, num_hidden = weight_out.shape
    for n in range(n0, n1):
        d_a_h[n, :] = 0
        for c in range(num_classes):
            delta = output_delta(a_out[n, c], y[n] == c, num_rows, one)
            delta_out_t[c, n] = delta
            for h in range(num_hidden):
                d_a_h[n, h] += delta * weight_out[c, h]
        for h in range(num_hidden):
            delta_h_t[h, n] = d_a_h[n, h] * activation_derivative(a_h[n, h], activation, one)


@jit
def sum_rows(delta_t, out):
    """``out[j] = sum_n delta_t[j, n]``: the bias gradients, in a fixed order."""
    for j in range(delta_t.shape[0]):
        out[j] = row_sum(delta_t, j)


@jit
def row_sum(delta_t, j):
    """``sum_n delta_t[j, n]``, in order."""
    s = delta_t.dtype.type(0)
    for n in range(delta_t.shape[1]):
        s += delta_t[j, n]
    return s


@jit
def blas_pieces(num_rows, x):
    """Row blocks for a BLAS weight gradient over the minibatch ``x``: a power of two with at
    least ``BLAS_PIECE_ROWS`` rows each (``BLAS_PIECE_ROWS_BEYOND_L2`` when ``x`` exceeds L2).

    A function of the shapes only, so each call, hence each bit, is the same at any thread count.
    """
    rows = BLAS_PIECE_ROWS if x.size * x.itemsize <= L2_BYTES else BLAS_PIECE_ROWS_BEYOND_L2
    pieces = 1
    while num_rows // (2 * pieces) >= rows:
        pieces *= 2
    return pieces


@jit
def gradient_rows(delta_t, x, d_w, h0, h1):
    """``d_w[h0:h1] = delta_t[h0:h1] @ x``; delta_t (H, N), x (N, F), d_w (H, F).

    Below ``SMALL_BATCH`` examples a BLAS call costs more than the product: each row
    is ``row_gradient``.
    """
    if h1 <= h0:
        return
    if x.shape[0] >= SMALL_BATCH:
        np.dot(delta_t[h0:h1], x, d_w[h0:h1])
        return
    for h in range(h0, h1):
        row_gradient(delta_t, x, h, d_w[h])


@jit
def row_gradient(delta_t, x, h, out):
    """``out[:] = delta_t[h] @ x``: the ``N`` scaled rows of ``x`` summed (vectorised along them)."""
    d = delta_t[h, 0]
    for f in range(x.shape[1]):
        out[f] = d * x[0, f]
    for n in range(1, x.shape[0]):
        d = delta_t[h, n]
        for f in range(x.shape[1]):
            out[f] += d * x[n, f]


@jit
def sgd_update(delta_t, x, weight, row, learning_rate, pieces, p):
    """``weight -= lr * (delta_t @ x)`` on the rows of piece ``p`` of ``pieces``.

    From ``SMALL_BATCH`` examples on, one BLAS call adds ``-lr * (delta_t @ x)`` into
    the piece's rows (``gemm_add``: no gradient matrix is written). Below, each row's
    gradient goes to ``row`` (F,), the piece's own workspace, and is applied from
    there. (``update_block`` does the same with four rows at a time; this version
    compiles faster, and ``train_steps`` sees batches under ``SMALL_BATCH`` only when
    called directly: ``fastmlp`` trains those with ``train_steps_by_unit``.)
    """
    h0, h1 = chunk(weight.shape[0], pieces, p)
    if x.shape[0] >= SMALL_BATCH:
        gemm_add(delta_t[h0:h1], x, weight[h0:h1], -learning_rate)
        return
    for h in range(h0, h1):
        row_gradient(delta_t, x, h, row)
        for f in range(weight.shape[1]):
            weight[h, f] -= learning_rate * row[f]


@jit
def update_block(delta_t, x, weight, rows, learning_rate, h0, h1):
    """``weight[h0:h1] -= lr * (delta_t[h0:h1] @ x)``; delta_t (H, N), x (N, F), weight (H, F).

    From ``SMALL_BATCH`` examples on, one BLAS call adds ``-lr * (delta_t @ x)`` into
    the rows (``gemm_add``: no gradient matrix is written). Below, ``update_rows``
    with its workspace ``rows`` (4, >= F): a BLAS call costs more than the product.
    """
    if x.shape[0] >= SMALL_BATCH:
        gemm_add(delta_t[h0:h1], x, weight[h0:h1], -learning_rate)
    else:
        update_rows(delta_t, x, weight, rows, learning_rate, h0, h1)


@jit(reassociate=False)
def unit_deltas(a_h, delta_out_t, weight_out, activation, delta_h_t, h0, h1):
    """``delta_h_t[h0:h1] = ((delta_out @ w_out) * act'(a_h))[:, h0:h1].T``, every row of ``a_h``.

    ``output_deltas`` by hidden unit rather than by row, summing over the classes
    in the same order. a_h (N, H), delta_out_t (C, N), weight_out (C, H), delta_h_t (H, N).
    """
    one = a_h.dtype.type(1)
    for h in range(h0, h1):
        for n in range(a_h.shape[0]):
            s = one * 0
            for c in range(weight_out.shape[0]):
                s += delta_out_t[c, n] * weight_out[c, h]
            delta_h_t[h, n] = s * activation_derivative(a_h[n, h], activation, one)


@jit
def update_rows(delta_t, x, weight, rows, learning_rate, h0, h1):
    """``weight[h0:h1] -= lr * (delta_t[h0:h1] @ x)`` without BLAS, four rows at a time.

    delta_t (H, N), x (N, F), weight (H, F). The four gradient rows build up in
    ``rows`` (4, >= F), in L1, as each row of ``x`` passes once for all four (one
    gradient row per hidden unit would read ``x`` from L2 four times as often).
    Each gradient element sums over ``n`` in order, as ``row_gradient`` does.
    """
    num_rows, num_features = x.shape
    for hb in range(h0, h1, 4):
        m = min(4, h1 - hb)
        if m < 4:  # the last rows of the range: one at a time
            for j in range(m):
                row_gradient(delta_t, x, hb + j, rows[j])
        else:
            for j in range(4):
                d = delta_t[hb + j, 0]
                for f in range(num_features):
                    rows[j, f] = d * x[0, f]
            for n in range(1, num_rows):
                d0 = delta_t[hb, n]
                d1 = delta_t[hb + 1, n]
                d2 = delta_t[hb + 2, n]
                d3 = delta_t[hb + 3, n]
                for f in range(num_features):
                    v = x[n, f]
                    rows[0, f] += d0 * v
                    rows[1, f] += d1 * v
                    rows[2, f] += d2 * v
                    rows[3, f] += d3 * v
        for j in range(m):
            for f in range(num_features):
                weight[hb + j, f] -= learning_rate * rows[j, f]


@jit
def update_forward_one(delta_t, x, x_next, weight, bias, activation, a_next, learning_rate, h0, h1):
    """One-example minibatches: ``update_rows`` and the next example's ``hidden_layer`` in one pass.

    ``weight[h] -= lr * (delta_t[h, 0] * x[0])``, then
    ``a_next[0, h] = act(weight[h] @ x_next[0] + bias[h])`` (``bias`` already updated),
    four rows at a time, each element updated and multiplied while in a register:
    each row of ``weight`` passes through the core once per step, not three times.
    """
    one = a_next.dtype.type(1)
    for hb in range(h0, h1, 4):
        if h1 - hb < 4:
            for h in range(hb, h1):
                d = delta_t[h, 0]
                z = one * 0
                for f in range(x.shape[1]):
                    w = weight[h, f] - learning_rate * (d * x[0, f])
                    weight[h, f] = w
                    z += w * x_next[0, f]
                a_next[0, h] = activate(z + bias[h], activation, one)
            continue
        d0 = delta_t[hb, 0]
        d1 = delta_t[hb + 1, 0]
        d2 = delta_t[hb + 2, 0]
        d3 = delta_t[hb + 3, 0]
        z0 = z1 = z2 = z3 = one * 0
        for f in range(x.shape[1]):
            v = x[0, f]
            u = x_next[0, f]
            w0 = weight[hb, f] - learning_rate * (d0 * v)
            w1 = weight[hb + 1, f] - learning_rate * (d1 * v)
            w2 = weight[hb + 2, f] - learning_rate * (d2 * v)
            w3 = weight[hb + 3, f] - learning_rate * (d3 * v)
            weight[hb, f] = w0
            weight[hb + 1, f] = w1
            weight[hb + 2, f] = w2
            weight[hb + 3, f] = w3
            z0 += w0 * u
            z1 += w1 * u
            z2 += w2 * u
            z3 += w3 * u
        a_next[0, hb] = activate(z0 + bias[hb], activation, one)
        a_next[0, hb + 1] = activate(z1 + bias[hb + 1], activation, one)
        a_next[0, hb + 2] = activate(z2 + bias[hb + 2], activation, one)
        a_next[0, hb + 3] = activate(z3 + bias[hb + 3], activation, one)


@jit(parallel=True)
def backward(x, a_h, a_out, y, weight_out, activation, delta_out_t, d_a_h, delta_h_t,
             d_w_out, d_b_out, d_w_h, d_b_h, num_chunks):
    """The chapter's four gradients, written into ``d_w_out, d_b_out, d_w_h, d_b_h``.

    Workspaces: delta_out_t (C, N), d_a_h (N, H), delta_h_t (H, N).
    """
    num_rows = x.shape[0]
    for c in numba.prange(num_chunks):
        n0, n1 = chunk(num_rows, num_chunks, np.int64(c))
        output_deltas(a_h, a_out, y, weight_out, activation, delta_out_t, d_a_h, delta_h_t, n0, n1)
    gradient_rows(delta_out_t, a_h, d_w_out, ZERO, d_w_out.shape[0])  # [C, N] @ [N, H]
    sum_rows(delta_out_t, d_b_out)
    sum_rows(delta_h_t, d_b_h)
    pieces = blas_pieces(d_w_h.shape[0], x)
    for p in numba.prange(pieces):
        h0, h1 = chunk(d_w_h.shape[0], pieces, np.int64(p))
        gradient_rows(delta_h_t, x, d_w_h, h0, h1)
