"""Fused loops: one compiled call trains a whole epoch, one evaluates a whole data set.

Neither allocates: the caller passes the workspaces (``fastmlp.model._train_workspace``
and ``_evaluate`` allocate them once per call).
"""
import numba
import numpy as np

from ._config import jit
from .loss import row_sse_argmax
from .dense import (ZERO, blas_pieces, chunk, forward_rows, gradient_rows, hidden_layer,
                    output_delta, output_deltas, output_layer, row_sum, sgd_update, sum_rows,
                    unit_deltas, update_block, update_forward_one)
from .shuffle import gather_rows
from .sync import barrier, join_team


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


@jit
def private_layout(num_classes, num_hidden, batch, num_features, itemsize):
    """Offsets of ``train_steps_by_unit``'s per-thread arrays in a row of ``private``, and its width.

    rows (4, G), w_out (C, H), b_out (C,), a_out (B, C), delta_out_t (C, B), each
    starting a cache line (G = max(F, H) rounded up to one), so that two threads'
    rows never share a line.
    """
    line = 64 // itemsize
    width = -(-max(num_features, num_hidden) // line) * line
    offsets = [0]
    for size in (4 * width, num_classes * num_hidden, num_classes, batch * num_classes,
                 num_classes * batch):
        offsets.append(offsets[-1] + -(-size // line) * line)
    return width, offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5]


@jit
def _train_hidden_slice(X, y, order, first_step, last_step, minibatch_size, lr, activation,
                        weight_h, bias_h, weight_out, bias_out, xb, yb, a_h, delta_h_t, private,
                        sync, slot, size):
    """Thread ``slot`` of ``size``'s share of ``train_steps_by_unit`` (see there)."""
    num_hidden, num_features = weight_h.shape
    num_classes = weight_out.shape[0]
    batch = minibatch_size
    num_steps = last_step - first_step
    one = a_h.dtype.type(1)
    num_rows = a_h.dtype.type(batch)
    # This thread's hidden units: tiles of 4 dealt evenly, the last thread getting the fewest
    # (it has the partial tile, which is slower: measured 3.7 us of 21 at batch 10, hidden 50)
    num_tiles = (num_hidden + 3) // 4
    h0 = min(-(-num_tiles * slot // size) * 4, num_hidden)
    h1 = min(-(-num_tiles * (slot + 1) // size) * 4, num_hidden)
    width, o_rows, o_w, o_b, o_a, o_d, _ = private_layout(num_classes, num_hidden, batch,
                                                          num_features, private.itemsize)
    rows = private[o_rows:o_w].reshape((4, width))
    w_out = private[o_w:o_w + num_classes * num_hidden].reshape((num_classes, num_hidden))
    b_out = private[o_b:o_b + num_classes]
    a_out = private[o_a:o_a + batch * num_classes].reshape((batch, num_classes))
    delta_out_t = private[o_d:o_d + num_classes * batch].reshape((num_classes, batch))
    for c in range(num_classes):
        b_out[c] = bias_out[c]
        for h in range(num_hidden):
            w_out[c, h] = weight_out[c, h]
    for i in range(min(2, num_steps)):
        gather_rows(X, y, order[(first_step + i) * batch:], xb[i], yb[i], ZERO, batch)
    generation = barrier(sync, 0, size)
    hidden_layer(xb[0], weight_h, bias_h, activation, a_h[0], ZERO, batch, h0, h1)
    generation = barrier(sync, generation, size)
    for i in range(num_steps):
        x, labels, a_cur, a_next = xb[i % 3], yb[i % 3], a_h[i % 2], a_h[(i + 1) % 2]
        # The output layer, its deltas and its update: every thread, on its own copy (C x H)
        output_layer(a_cur, w_out, b_out, a_out, ZERO, batch)
        for c in range(num_classes):
            for n in range(batch):
                delta_out_t[c, n] = output_delta(a_out[n, c], labels[n] == c, num_rows, one)
        unit_deltas(a_cur, delta_out_t, w_out, activation, delta_h_t, h0, h1)  # old w_out
        update_block(delta_out_t, a_cur, w_out, rows, lr, ZERO, num_classes)
        for c in range(num_classes):
            b_out[c] -= lr * row_sum(delta_out_t, c)
        # This thread's hidden units: update, then (still in L1) the next minibatch's forward
        for h in range(h0, h1):
            bias_h[h] -= lr * row_sum(delta_h_t, h)
        if batch == 1 and i + 1 < num_steps:
            update_forward_one(delta_h_t, x, xb[(i + 1) % 3], weight_h, bias_h, activation,
                               a_next, lr, h0, h1)
        else:
            for hb in range(h0, h1, 4):  # BLAS calls of one shape: the same bits at any T
                he = min(hb + 4, h1)
                update_block(delta_h_t, x, weight_h, rows, lr, hb, he)
                if i + 1 < num_steps:
                    hidden_layer(xb[(i + 1) % 3], weight_h, bias_h, activation, a_next, ZERO,
                                 batch, hb, he)
        if i + 2 < num_steps:
            gather_rows(X, y, order[(first_step + i + 2) * batch:], xb[(i + 2) % 3],
                        yb[(i + 2) % 3], ZERO, batch)
        generation = barrier(sync, generation, size)
    if slot == 0:
        for c in range(num_classes):
            bias_out[c] = b_out[c]
            for h in range(num_hidden):
                weight_out[c, h] = w_out[c, h]


@jit(parallel=True)
def train_steps_by_unit(X, y, order, first_step, last_step, minibatch_size, learning_rate,
                        activation, weight_h, bias_h, weight_out, bias_out,
                        xb, yb, a_h, delta_h_t, private, sync):
    """``train_steps`` for small minibatches: one parallel region, each thread owning hidden units.

    Same steps, same arithmetic. A step of a small minibatch takes microseconds:
    two parallel regions per step would cost more than the step (~1.7 us each), and
    split by rows, a thread would have few. Here the threads enter one region
    for all the steps and meet at a spinning barrier (``kernels.sync``, ~0.3 us) once
    per step. Thread ``t`` of ``T`` owns the hidden units of the 4-unit tiles
    ``ceil(t n / T):ceil((t + 1) n / T)`` of the ``n`` tiles (the partial tile, last, goes
    with the smallest share): it computes their activations, deltas and update (w_h, b_h rows: only it touches
    them), the update followed at once by the next minibatch's forward product while
    the rows are in L1, four rows at a time (``update_block``: from ``SMALL_BATCH``
    examples on, a BLAS call per four rows, always of one shape, so of the same bits;
    at batch 1 the update and the product share one loop, ``update_forward_one``). The
    small output layer (C x H) runs on every thread, each on a private copy of w_out
    and b_out, identically; thread 0's is written back. Each thread gathers the
    next-but-one minibatch into its own buffers during the step (one thread
    gathering for all measured 7.0 -> 5.6 us per step at batch 1: the other thread
    then reads the rows from its cache).

    Workspaces (B = minibatch_size): xb (T', 3, B, F), yb (T', 3, B), three minibatch
    buffers per thread; a_h (2, B, H), this and the next step's activations;
    delta_h_t (H, B); private (T, P), one row per thread (``private_layout``); sync
    (``SYNC_SIZE``,) int64, 64-byte aligned. T' >= T. T = ``private.shape[0]``
    threads are asked for; if they do not all start
    (``kernels.sync.join_team``), one thread does all the work. Every element is
    computed by the same code at any T (hidden units are cut at multiples of 4, see
    ``dense.gemm_nt``), so the results do not depend on the thread count.
    """
    if last_step <= first_step:
        return
    lr = weight_h.dtype.type(learning_rate)
    team = private.shape[0]
    sync[:] = 0
    for t in numba.prange(team):
        slot, size = join_team(sync, team)
        if size > 0:
            _train_hidden_slice(X, y, order, first_step, last_step, minibatch_size, lr,
                                activation, weight_h, bias_h, weight_out, bias_out, xb[slot],
                                yb[slot], a_h,
                                delta_h_t, private[slot], sync, slot, size)


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
