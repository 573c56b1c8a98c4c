"""The fused training epoch and the fused evaluation, each run by a team of threads.

Each kernel is called once per thread of a team, as ``kernel(slot, size, ...)``
(:mod:`fastmlp.team` starts the calls on ``size`` threads and joins them); the
threads meet at :func:`.sync.barrier`. There is no Numba parallel region: its
lowering was most of the cold compile time, and its worker threads kept spinning
after it, taking cores from whatever ran next.

Training splits the two large products into **tiles** of ``w_h``: feature pieces
(columns) times blocks of hidden units (rows). Thread ``t`` owns some tiles, and alone
reads and writes them (its share of the update, of ``z_h``'s partial sums). Each piece
lives in a plane of its own (``TrainWork.weight_pieces``, ``x_pieces``: copied from
``w_h`` at the start of a call, back at its end), so that no two threads write the
same cache line or stream through each other's lines: with the pieces as column
slices of the row-major ``w_h``, a batch-1 update ran 2.5x slower on two cores than
on one (measured on a 2-core Zen 4). Each piece writes a partial sum of ``z_h``
(B x H) that the per-row work (activation, output layer, deltas, split by rows)
adds up: cheap while the partial sums stay in cache, as at the chapter's shapes (4
pieces, one block of units), and costly where they do not (1000 x 1024: four 8 MB
planes, and OpenBLAS repacking the 1000 x 1024 ``delta`` once a piece). So
:func:`tiles` trades pieces for unit blocks, which repack the minibatch
instead, as the partial sums outgrow ``PARTIAL_BUDGET``. Two barriers a step. The
tiles depend on the shape only, never on the thread count, and each is one BLAS call
of the same shape at any thread count, so the results do not depend on it.
"""
from typing import NamedTuple

import numpy as np

from ._config import ONE, ZERO, jit
from .layers import (add_bias_gradient, add_gradient, chunk, delta_rows, forward_rows,
                     hidden_partial, hidden_rows, output_layer, output_rows,
                     update_then_partial)
from .loss import row_sse_argmax
from .shuffle import gather_columns
from .sync import SYNC_SIZE, barrier

PIECE_ALIGN = 16  # feature pieces start at multiples of 16 elements: whole cache lines per row
MIN_PIECE = 128  # fewest features per piece: shorter BLAS products lose more than a thread gains
MAX_PIECES = 8
PARTIAL_BUDGET = 1 << 20  # bytes of partial sums (P x B x H) a step keeps in cache (~L2)
EVAL_BLOCK = 256  # rows per block in the evaluation: one BLAS product each, of a fixed shape


class Params(NamedTuple):
    """The model's arrays: weight_h (H, F), bias_h (H,), weight_out (C, H), bias_out (C,)."""
    weight_h: np.ndarray
    bias_h: np.ndarray
    weight_out: np.ndarray
    bias_out: np.ndarray


class TrainWork(NamedTuple):
    """Workspaces of :func:`train_steps` (B = minibatch size, P = feature pieces, W = the
    widest piece rounded up to ``PIECE_ALIGN``; piece ``p`` in the first columns of its plane;
    ``num_units`` blocks of hidden units per piece: see :func:`tiles`)."""
    weight_pieces: np.ndarray  # (P, H, W) the pieces of w_h's columns
    x_pieces: np.ndarray  # (2, P, B, W) the same pieces of this step's and the next minibatch
    yb: np.ndarray  # (B,) int64 its labels; each thread its own rows
    partial: np.ndarray  # (P, B, H) each piece's share of z_h
    a_h: np.ndarray  # (B, H)
    a_out: np.ndarray  # (B, C)
    delta_out: np.ndarray  # (B, C)
    delta_h: np.ndarray  # (B, H)
    sync: np.ndarray  # (SYNC_SIZE,) int64 barrier state
    bias_sums: np.ndarray  # (max(H, C),) the bias gradients' column sums
    num_units: int


class EvalWork(NamedTuple):
    """Workspaces of :func:`evaluate` (T = team size)."""
    a_h: np.ndarray  # (T, EVAL_BLOCK, H)
    a_out: np.ndarray  # (T, EVAL_BLOCK, C)
    block_sse: np.ndarray  # (num_blocks,) float64
    block_correct: np.ndarray  # (num_blocks,) int64


def feature_pieces(num_features):
    """Pieces the features are cut into: the largest power of two up to ``MAX_PIECES`` that
    leaves each at least ``MIN_PIECE`` features (784 -> 4 pieces of 192-208)."""
    pieces = 1
    while 2 * pieces <= MAX_PIECES and num_features // (2 * pieces) >= MIN_PIECE:
        pieces *= 2
    return pieces


def tiles(num_features, batch, num_hidden, itemsize):
    """``(pieces, units)``: the tiles of ``w_h`` of a call on ``batch`` rows, ``pieces * units``
    = :func:`feature_pieces` of them. Pieces halve (units double) while their partial sums
    of ``z_h`` (``pieces * batch * num_hidden * itemsize`` bytes; as much ``delta`` repacked
    by BLAS in the weight gradient) exceed ``PARTIAL_BUDGET``: the chapter's 100 x 784 x 50
    keeps 4 x 1, 1000 x 784 x 1024 takes 1 x 4."""
    count = pieces = feature_pieces(num_features)
    while pieces > 1 and pieces * batch * num_hidden * itemsize > PARTIAL_BUDGET:
        pieces //= 2
    return pieces, count // pieces


def aligned_empty(shape, dtype):
    """``np.empty(shape, dtype)`` starting on a cache line (64 bytes; NumPy gives 16)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    buffer = np.empty(size + 64, np.uint8)
    offset = -buffer.ctypes.data % 64
    return buffer[offset:offset + size].view(dtype).reshape(shape)


def train_workspace(params, minibatch_size):
    """The :class:`TrainWork` of a model's ``params`` and ``minibatch_size``."""
    (num_hidden, num_features), num_classes = params.weight_h.shape, params.weight_out.shape[0]
    b, dtype = minibatch_size, params.weight_h.dtype
    pieces, units = tiles(num_features, b, num_hidden, dtype.itemsize)
    widest = max(f1 - f0 for f0, f1 in (chunk.py_func(num_features, pieces, p, PIECE_ALIGN)
                                        for p in range(pieces)))
    width = -(-widest // PIECE_ALIGN) * PIECE_ALIGN
    return TrainWork(aligned_empty((pieces, num_hidden, width), dtype),
                     aligned_empty((2, pieces, b, width), dtype), np.empty(b, np.int64),
                     aligned_empty((pieces, b, num_hidden), dtype),
                     np.empty((b, num_hidden), dtype), np.empty((b, num_classes), dtype),
                     np.empty((b, num_classes), dtype), np.empty((b, num_hidden), dtype),
                     np.zeros(SYNC_SIZE, np.int64), np.empty(max(num_hidden, num_classes), dtype),
                     units)


def eval_workspace(params, num_rows, team):
    """The :class:`EvalWork` of ``num_rows`` rows for a team of ``team`` threads."""
    num_hidden, num_classes = params.weight_h.shape[0], params.weight_out.shape[0]
    dtype = params.weight_h.dtype
    num_blocks = -(-num_rows // EVAL_BLOCK)
    return EvalWork(np.empty((team, EVAL_BLOCK, num_hidden), dtype),
                    np.empty((team, EVAL_BLOCK, num_classes), dtype),
                    np.empty(num_blocks), np.empty(num_blocks, np.int64))


@jit
def _piece(num_features, pieces, p):
    """Columns ``f0:f1`` of feature piece ``p`` (starts at multiples of ``PIECE_ALIGN``)."""
    return chunk(num_features, pieces, p, np.int64(PIECE_ALIGN))


@jit
def _tile(num_features, num_hidden, num_pieces, num_units, t):
    """Piece ``p``, its columns ``f0:f1`` and the hidden units ``u0:u1`` of tile ``t``."""
    p = t // num_units
    f0, f1 = _piece(num_features, num_pieces, p)
    u0, u1 = chunk(num_hidden, num_units, t % num_units, np.int64(PIECE_ALIGN))
    return p, f0, f1, u0, u1


@jit
def _copy_piece(source, s0, destination, d0, width):
    """``destination[:, d0:d0 + width] = source[:, s0:s0 + width]``, row by row."""
    for h in range(source.shape[0]):
        src = source[h, s0:s0 + width]
        dst = destination[h, d0:d0 + width]
        for f in range(width):
            dst[f] = src[f]


@jit
def _gather_rows(X, order, start, x_planes, n0, n1):
    """Rows ``n0:n1`` of the minibatch at ``order[start:]``, every piece into its plane of
    ``x_planes`` (P, B, W)."""
    for p in range(x_planes.shape[0]):
        f0, f1 = _piece(X.shape[1], x_planes.shape[0], p)
        gather_columns(X, order, start + n0, f0, f1, x_planes[p, n0:n1])


@jit(entry=True)
def train_steps(slot, size, X, y, order, first_step, last_step, learning_rate, activation,
                params, work, one_row):
    """Thread ``slot`` of ``size``'s share of SGD steps ``first_step:last_step``.

    Step ``s`` trains on the rows ``order[s*B:(s+1)*B]`` (a whole epoch is
    ``0:len(order) // B``; the chapter drops the last partial minibatch; runs of
    steps give the bits of one run). Each step is the chapter's forward, backward
    and update, in its arithmetic:
    1. own rows: the labels; barrier; own rows: ``a_h`` (from the pieces' partial sums),
       ``a_out``, the deltas (and, where a piece has several unit blocks, whose tiles all
       read its whole minibatch, the next minibatch's rows); barrier;
    2. own tiles (piece ``f0:f1``, units ``u0:u1``): with one unit block, gather the next
       minibatch's columns of the piece; then
       ``w_h[u0:u1, piece] -= lr * delta_h[:, u0:u1].T @ xb[:, piece]`` and the next step's
       ``partial[p][:, u0:u1] = xb_next[:, piece] @ w_h[u0:u1, piece].T`` (one pass for one
       row); thread 0 also updates ``w_out`` and both biases (read again only after the
       next step's first barrier).
    ``one_row`` is ``ONE`` for minibatches of one row, else None (see :mod:`.layers`).
    """
    weight_h, bias_h, weight_out, bias_out = params
    pieces, x_pieces, yb, partial, a_h, delta_h = (work.weight_pieces, work.x_pieces, work.yb,
                                                   work.partial, work.a_h, work.delta_h)
    batch, (num_hidden, num_features) = yb.shape[0], weight_h.shape
    num_pieces, num_units = pieces.shape[0], work.num_units
    lr = weight_h.dtype.type(learning_rate)
    one, zero = weight_h.dtype.type(1), weight_h.dtype.type(0)
    t0, t1 = chunk(num_pieces * num_units, size, slot, ONE)
    n0, n1 = chunk(batch, size, slot, ONE)
    if last_step <= first_step:
        return
    generation = 0
    if num_units > 1:
        _gather_rows(X, order, first_step * batch, x_pieces[0], n0, n1)
        generation = barrier(work.sync, generation, size)
    for t in range(t0, t1):
        p, f0, f1, u0, u1 = _tile(num_features, num_hidden, num_pieces, num_units, t)
        _copy_piece(weight_h[u0:u1], f0, pieces[p, u0:u1], ZERO, f1 - f0)
        if num_units == 1:
            gather_columns(X, order, first_step * batch, f0, f1, x_pieces[0, p])
        update_then_partial(delta_h[:, u0:u1], x_pieces[0, p], pieces[p, u0:u1], zero,
                            x_pieces[0, p], partial[p, :, u0:u1], ZERO, f1 - f0, one_row)
    for step in range(first_step, last_step):
        for n in range(n0, n1):
            yb[n] = y[order[step * batch + n]]
        generation = barrier(work.sync, generation, size)
        hidden_rows(partial, bias_h, activation, a_h, n0, n1)
        output_rows(a_h, weight_out, bias_out, work.a_out, n0, n1)
        delta_rows(a_h, work.a_out, yb, weight_out, activation, work.delta_out, delta_h,
                   n0, n1)
        this = x_pieces[(step - first_step) % 2]
        following = x_pieces[(step - first_step + 1) % 2]
        more = step + 1 < last_step
        if more and num_units > 1:
            _gather_rows(X, order, (step + 1) * batch, following, n0, n1)
        generation = barrier(work.sync, generation, size)
        for t in range(t0, t1):
            p, f0, f1, u0, u1 = _tile(num_features, num_hidden, num_pieces, num_units, t)
            delta, weight, part = delta_h[:, u0:u1], pieces[p, u0:u1], partial[p, :, u0:u1]
            if more:
                if num_units == 1:
                    gather_columns(X, order, (step + 1) * batch, f0, f1, following[p])
                update_then_partial(delta, this[p], weight, -lr, following[p], part, ZERO,
                                    f1 - f0, one_row)
            elif batch == 1:  # the same pass as every other step (its product unused)
                update_then_partial(delta, this[p], weight, -lr, this[p], part, ZERO, f1 - f0,
                                    one_row)
            else:
                add_gradient(delta, this[p], weight, -lr, one, ZERO, f1 - f0, None)
        if slot == 0:
            add_gradient(work.delta_out, a_h, weight_out, -lr, one, ZERO, a_h.shape[1], one_row)
            add_bias_gradient(work.delta_out, bias_out, -lr, one,
                              work.bias_sums[:bias_out.shape[0]])
            add_bias_gradient(delta_h, bias_h, -lr, one, work.bias_sums[:num_hidden])
    for t in range(t0, t1):
        p, f0, f1, u0, u1 = _tile(num_features, num_hidden, num_pieces, num_units, t)
        _copy_piece(pieces[p, u0:u1], ZERO, weight_h[u0:u1], f0, f1 - f0)


@jit(entry=True)
def forward_blocks(slot, size, X, activation, params, a_h, a_out):
    """Thread ``slot`` of ``size``'s share of the forward pass of every row of ``X``.

    Rows go in blocks of ``EVAL_BLOCK`` (as in :func:`evaluate`), dealt in contiguous runs:
    each block is one call of :func:`.layers.forward_rows`, the same at any thread count.
    a_h (N, H), a_out (N, C) are outputs.
    """
    num_rows = X.shape[0]
    b0, b1 = chunk(-(-num_rows // EVAL_BLOCK), size, slot, ONE)
    for b in range(b0, b1):
        r0 = b * EVAL_BLOCK
        r1 = min(r0 + EVAL_BLOCK, num_rows)
        forward_rows(X[r0:r1], params.weight_h, params.bias_h, params.weight_out,
                     params.bias_out, activation, a_h[r0:r1], a_out[r0:r1])


@jit(entry=True)
def evaluate(slot, size, X, y, include, activation, params, work):
    """Thread ``slot`` of ``size``'s share of the squared error and correct predictions of
    the rows of ``X`` where ``include`` is set.

    Rows go in blocks of ``EVAL_BLOCK``, dealt to the threads in contiguous runs; block
    ``b``'s sums go to ``block_sse[b]`` / ``block_correct[b]``, so the caller's total has a
    fixed order at any thread count. No one-hot matrix, no copy of ``X``.
    """
    weight_h, bias_h, weight_out, bias_out = params
    block = work.a_h.shape[1]
    num_rows = X.shape[0]
    b0, b1 = chunk(work.block_sse.shape[0], size, slot, ONE)
    for b in range(b0, b1):
        r0 = b * block
        r1 = min(r0 + block, num_rows)
        a_h = work.a_h[slot, :r1 - r0]
        a_out = work.a_out[slot, :r1 - r0]
        forward_rows(X[r0:r1], weight_h, bias_h, weight_out, bias_out, activation, a_h, a_out)
        sse = 0.0
        correct = 0
        for n in range(r1 - r0):
            if include[r0 + n]:
                label = y[r0 + n]
                row_sse, best = row_sse_argmax(a_out, n, label)
                sse += row_sse
                correct += best == label
        work.block_sse[b] = sse
        work.block_correct[b] = correct


@jit(entry=True)
def forward_pieces(slot, size, x, activation, params, partial, num_units, sync, a_h, a_out):
    """Thread ``slot`` of ``size``'s share of the forward pass of the rows of ``x``, its
    hidden layer cut into the tiles of :func:`tiles`: the feature pieces of ``partial``
    (P, B, H) times ``num_units`` blocks of units.

    Its tiles' partial products; a barrier; ``a_h`` of its rows (the pieces summed in
    order); a barrier; thread 0 the output layer of every row (one product). The bits
    depend on the tiles only, not on the thread count. a_h (B, H), a_out (B, C) outputs.
    """
    num_pieces, (num_hidden, num_features) = partial.shape[0], params.weight_h.shape
    t0, t1 = chunk(num_pieces * num_units, size, slot, ONE)
    for t in range(t0, t1):
        p, f0, f1, u0, u1 = _tile(num_features, num_hidden, num_pieces, num_units, t)
        hidden_partial(x, params.weight_h[u0:u1], partial[p, :, u0:u1], f0, f1, ONE)
    barrier(sync, 0, size)
    n0, n1 = chunk(x.shape[0], size, slot, ONE)
    hidden_rows(partial, params.bias_h, activation, a_h, n0, n1)
    barrier(sync, 1, size)
    if slot == 0:
        output_layer(a_h, params.weight_out, params.bias_out, a_out)


@jit(entry=True)
def backward_pieces(slot, size, x, a_h, a_out, labels, weight_out, activation, num_pieces,
                    num_units, delta_out, delta_h, sync, grads):
    """Thread ``slot`` of ``size``'s share of the chapter's four gradients of every row of ``x``.

    The deltas of its rows; a barrier; ``d_w_h``'s tiles (``num_pieces`` feature pieces
    times ``num_units`` blocks of units: 1 x 1, or :func:`tiles` for a large call), and in
    thread 0 the biases' and the output layer's gradients. The tiles depend on the shape
    only, so the bits do not depend on the thread count. ``grads`` a :class:`Params` of
    outputs; delta_out (B, C), delta_h (B, H) workspaces.
    """
    one, zero = x.dtype.type(1), x.dtype.type(0)
    num_hidden, num_features = grads.weight_h.shape
    n0, n1 = chunk(x.shape[0], size, slot, ONE)
    delta_rows(a_h, a_out, labels, weight_out, activation, delta_out, delta_h, n0, n1)
    barrier(sync, 0, size)
    t0, t1 = chunk(num_pieces * num_units, size, slot, ONE)
    for t in range(t0, t1):
        p, f0, f1, u0, u1 = _tile(num_features, num_hidden, num_pieces, num_units, t)
        add_gradient(delta_h[:, u0:u1], x, grads.weight_h[u0:u1], one, zero, f0, f1, ONE)
    if slot == 0:
        add_bias_gradient(delta_h, grads.bias_h, one, zero, grads.bias_h)
        add_gradient(delta_out, a_h, grads.weight_out, one, zero, ZERO, a_h.shape[1], ONE)
        add_bias_gradient(delta_out, grads.bias_out, one, zero, grads.bias_out)
