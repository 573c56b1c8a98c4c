"""Fused loops: one compiled call trains a whole epoch, one evaluates a whole data set.

Neither allocates: the caller passes the workspaces (``fastmlp.model._train_workspace``
and ``_evaluate`` allocate them once per call).
"""
import numba
import numpy as np

from ._config import jit
from .loss import row_sse_argmax
from .dense import (ZERO, blas_pieces, chunk, forward_rows, gradient_rows, output_deltas, sgd_update,
                    sum_rows)
from .shuffle import gather_rows


@jit(parallel=True)
def train_steps(X, y, order, first_step, last_step, minibatch_size, learning_rate, activation,
                weight_h, bias_h, weight_out, bias_out,
                xb, yb, a_h, a_out, delta_out_t, d_a_h, delta_h_t, d_w_out, d_b_out, grad_rows, d_b_h,
                num_chunks):
    """SGD steps ``first_step:last_step`` over the minibatches ``order[s*B:(s+1)*B]``.

    A whole epoch is ``0:len(order) // B`` (the chapter drops the last partial batch);
    a caller may run it in pieces (a progress bar) with the same result.
    Each step: the chapter's forward, backward and update, with its arithmetic.
    Workspaces (B = minibatch_size): xb (2, B, F) and yb (2, B), two minibatch buffers;
    a_h (B, H), a_out (B, C), delta_out_t (C, B), d_a_h (B, H), delta_h_t (H, B),
    d_w_out (C, H), d_b_out (C,), grad_rows (P, F) one gradient row per BLAS block (used
    under ``SMALL_BATCH`` examples only: above, BLAS adds the update into w_h directly),
    d_b_h (H,).
    Two parallel regions per step, each in ``num_chunks`` chunks: the rows (forward,
    deltas); then the w_h gradient and update in ``blas_pieces`` row blocks, dealt
    evenly between the chunks, and the gather of the next minibatch into the other
    buffer by the last chunk (at the chapter's shape, one BLAS block: one thread
    updates while another gathers). Results do not depend on the thread count: the
    blocks depend on the shapes only.
    """
    num_hidden = weight_h.shape[0]
    lr = weight_h.dtype.type(learning_rate)
    pieces = blas_pieces(num_hidden, xb[0])
    if first_step < last_step:  # one minibatch: not worth a parallel region (one more to compile)
        gather_rows(X, y, order[first_step * minibatch_size:], xb[0], yb[0], ZERO, minibatch_size)
    for step in range(first_step, last_step):
        x_cur, y_cur = xb[(step - first_step) % 2], yb[(step - first_step) % 2]
        for c in numba.prange(num_chunks):
            n0, n1 = chunk(minibatch_size, num_chunks, np.int64(c))
            forward_rows(x_cur, weight_h, bias_h, weight_out, bias_out, activation, a_h, a_out,
                         n0, n1)
            output_deltas(a_h, a_out, y_cur, weight_out, activation, delta_out_t, d_a_h,
                          delta_h_t, n0, n1)
        gradient_rows(delta_out_t, a_h, d_w_out, ZERO, d_w_out.shape[0])  # [C, B] @ [B, H]: small
        sum_rows(delta_out_t, d_b_out)
        sum_rows(delta_h_t, d_b_h)
        # w_h -= lr * ([H, B] @ [B, F]): the blocks of hidden units dealt evenly between the
        # chunks (ceil: the last chunk gets the fewest), and the last also gathers the next minibatch
        for c in numba.prange(num_chunks):
            for p in range(-(-pieces * c // num_chunks), -(-pieces * (c + 1) // num_chunks)):
                sgd_update(delta_h_t, x_cur, weight_h, grad_rows[p], lr, pieces, np.int64(p))
            if c == num_chunks - 1 and step + 1 < last_step:
                nxt = (step + 1 - first_step) % 2
                gather_rows(X, y, order[(step + 1) * minibatch_size:], xb[nxt], yb[nxt], ZERO,
                            minibatch_size)
        for h in range(num_hidden):
            bias_h[h] -= lr * d_b_h[h]
        for k in range(weight_out.shape[0]):
            for h in range(num_hidden):
                weight_out[k, h] -= lr * d_w_out[k, h]
            bias_out[k] -= lr * d_b_out[k]


@jit(parallel=True)
def evaluate(X, y, include, weight_h, bias_h, weight_out, bias_out, activation,
             xa, a_h, a_out, block_sse, block_correct):
    """Squared error and correct predictions of the rows of ``X`` where ``include`` is set.

    Rows are taken in blocks of ``a_h.shape[1]`` (a multiple of 4); each block's
    sums go to ``block_sse[b]`` / ``block_correct[b]``, so the caller's total has a
    fixed order at any thread count. Workspaces: xa (T, block, F), a_h (T, block, H),
    a_out (T, block, C), one slice per chunk of blocks (T = the thread count). Each
    block is copied into ``xa``, cache-line aligned for the forward product's vector
    loads (measured ~10% faster at one thread than reading ``X`` in place). No one-hot matrix.
    """
    num_chunks, block = a_h.shape[0], a_h.shape[1]
    num_rows = X.shape[0]
    num_blocks = (num_rows + block - 1) // block
    for c in numba.prange(num_chunks):
        b0 = num_blocks * c // num_chunks
        b1 = num_blocks * (c + 1) // num_chunks
        xa_c = xa[c]
        a_h_c = a_h[c]
        a_out_c = a_out[c]
        for b in range(b0, b1):
            r0 = b * block
            r1 = min(r0 + block, num_rows)
            for n in range(r1 - r0):  # loops, not a slice assignment: no shape-error path to compile
                for f in range(X.shape[1]):
                    xa_c[n, f] = X[r0 + n, f]
            forward_rows(xa_c, weight_h, bias_h, weight_out, bias_out, activation,
                         a_h_c, a_out_c, ZERO, r1 - r0)
            sse = 0.0
            correct = 0
            for n in range(r1 - r0):
                if include[r0 + n]:
                    label = y[r0 + n]
                    row_sse, best = row_sse_argmax(a_out_c, n, label)
                    sse += row_sse
                    correct += best == label
            block_sse[b] = sse
            block_correct[b] = correct
