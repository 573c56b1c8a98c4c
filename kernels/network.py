"""The general network's kernels: dense layers of any depth, log-loss or MSE, SGD/Nesterov/Adam.

Specification: :mod:`fastmlp.reference_deep` (scikit-learn's conventions). Every
large product is one BLAS call (:mod:`.blas`, NumPy's BLAS);
the elementwise work (bias, activation, output delta and loss, the L2 term, the
optimiser) runs in plain loops around them.

Training runs on a team of threads (:mod:`fastmlp.team`), two barriers a step:
1. each thread takes its share of the batch's rows through the whole forward and
   backward pass (every layer's activations and deltas of those rows: row-local,
   no barrier); barrier;
2. each thread computes the weight gradients of its share of every layer's input
   units (rows of ``W``: a contiguous range of ``params``) and of its share of the
   biases, each followed at once by its optimiser step; barrier.
BLAS runs on one thread inside a team (it would split the same products again).
The shares depend on the team size, so the last bits may too.

Parameters live in one flat vector ``params``: every layer's weights (row-major
``(fan_in, fan_out)``, scikit-learn's ``coefs_``) in order, then every layer's
biases. The gradients, Adam's moments and the momentum velocities share that
layout, so the optimiser is one loop over a range of one vector. ``units`` holds the
layer sizes ``[n_features, hidden..., n_outputs]``.
"""
import math
from typing import NamedTuple

import numpy as np

from ._config import ONE, RELU, SIGMOID, jit
from .blas import gemm_nn, gemm_nt, gemm_tn
from .exp import exp
from .layers import chunk
from .sync import barrier

# Hidden activations (SIGMOID and RELU are the chapter network's codes).
LOGISTIC = SIGMOID
TANH = 2
IDENTITY = 3
# Output layer and loss.
SOFTMAX_LOG_LOSS = 0  # softmax, cross-entropy (more than one output)
LOGISTIC_LOG_LOSS = 1  # one logistic output, binary cross-entropy
SIGMOID_MSE = 2  # the chapter's sigmoid outputs and MSE against one-hot targets
# Optimisers.
SGD = 0  # with momentum (0 is plain SGD)
NESTEROV = 1
ADAM = 2


class Model(NamedTuple):
    """A network's parameters and configuration, as the kernels take them."""
    params: np.ndarray  # (n_params,) weights then biases, see the module docstring
    units: np.ndarray  # (n_layers,) int64 layer sizes
    hidden: int  # hidden activation code
    output: int  # output/loss code
    alpha: float  # L2 penalty


class Workspace(NamedTuple):
    """Buffers for batches of up to ``B`` rows, allocated once per fit."""
    xb: np.ndarray  # (B, n_features) the gathered batch
    yb: np.ndarray  # (B,) int64 its labels
    acts: np.ndarray  # (B * sum(units[1:]),) every layer's activations, layer after layer
    deltas: np.ndarray  # (B * sum(units[1:]),) every layer's deltas, laid out as acts
    grads: np.ndarray  # (n_params,) the last batch's gradient


class Optimizer(NamedTuple):
    """An optimiser's settings and state (kept between fits, as scikit-learn's ``_optimizer``)."""
    solver: int  # SGD, NESTEROV or ADAM
    hyper: np.ndarray  # float64 [learning_rate, momentum, beta_1, beta_2, epsilon]
    m: np.ndarray  # (n_params,) SGD velocities, or Adam's first moments
    v: np.ndarray  # (n_params,) Adam's second moments
    t: np.ndarray  # (1,) int64 Adam's step count


class Team(NamedTuple):
    """The shared state of the team calls of one epoch of :func:`epoch` (T: the most threads
    a call has)."""
    sync: np.ndarray  # (SYNC_SIZE,) int64 barrier state
    parts: np.ndarray  # (2, 2, T) float64 by step parity: each thread's rows' loss, weights' squares
    total: np.ndarray  # (1,) float64 the epoch's batch losses, each times its size


@jit
def _weight_offset(units, i):
    """Start of layer ``i``'s weights in ``params``."""
    off = 0
    for j in range(i):
        off += units[j] * units[j + 1]
    return off


@jit
def _bias_offset(units, i):
    """Start of layer ``i``'s biases in ``params`` (after every weight)."""
    off = _weight_offset(units, units.shape[0] - 1)
    for j in range(i):
        off += units[j + 1]
    return off


@jit
def _rows(flat, units, i, b, r0, r1):
    """Rows ``r0:r1`` of layer ``i``'s (b, units[i + 1]) block of ``flat`` (``acts`` or ``deltas``)."""
    off = 0
    for j in range(1, i + 1):
        off += b * units[j]
    width = units[i + 1]
    return flat[off + r0 * width:off + r1 * width].reshape((r1 - r0, width))


@jit
def _weights(params, units, i):
    """Layer ``i``'s weights, a (units[i], units[i + 1]) view of ``params``."""
    off = _weight_offset(units, i)
    return params[off:off + units[i] * units[i + 1]].reshape((units[i], units[i + 1]))


@jit
def _bias_activate(z, bias, code):
    """``z = f(z + bias)`` in place, row by row; ``code`` a hidden activation."""
    one = z.dtype.type(1)  # arithmetic in z's dtype
    for r in range(z.shape[0]):
        row = z[r]
        if code == RELU:
            for k in range(row.shape[0]):
                s = row[k] + bias[k]
                row[k] = s if s > 0 else 0
        elif code == LOGISTIC:
            for k in range(row.shape[0]):
                row[k] = one / (one + exp(-(row[k] + bias[k])))
        elif code == TANH:
            for k in range(row.shape[0]):
                row[k] = math.tanh(row[k] + bias[k])
        else:
            for k in range(row.shape[0]):
                row[k] += bias[k]


@jit
def _bias_softmax(z, bias):
    """``z = softmax(z + bias)`` row by row, in place (max subtracted, as scikit-learn)."""
    for r in range(z.shape[0]):
        row = z[r]
        top = -np.inf
        for k in range(row.shape[0]):
            row[k] += bias[k]
            top = max(top, row[k])
        total = 0.0
        for k in range(row.shape[0]):
            row[k] = exp(row[k] - top)
            total += row[k]
        for k in range(row.shape[0]):
            row[k] /= total


@jit
def _forward(model, x, acts, b, r0, r1):
    """Rows ``r0:r1`` of every layer's activations of a ``b``-row batch, into ``acts``;
    ``x`` holds those rows' inputs (r1 - r0, n_features)."""
    units, params = model.units, model.params
    last = units.shape[0] - 2
    one, zero = params.dtype.type(1), params.dtype.type(0)
    a_in = x
    for i in range(last + 1):
        z = _rows(acts, units, i, b, r0, r1)  # [r1 - r0, units[i + 1]]
        gemm_nn(a_in, _weights(params, units, i), z, one, zero)
        b_off = _bias_offset(units, i)
        bias = params[b_off:b_off + units[i + 1]]
        if i < last:
            _bias_activate(z, bias, model.hidden)
        elif model.output == SOFTMAX_LOG_LOSS:
            _bias_softmax(z, bias)
        else:
            _bias_activate(z, bias, LOGISTIC)
        a_in = z


@jit
def _output_delta(a_out, y, output, delta):
    """The output delta into ``delta`` (b, n_out); returns the summed loss (float64).

    Targets: one-hot rows of the labels ``y``, or ``y`` itself for one output.
    Log-loss clips the probabilities to ``[eps, 1 - eps]`` of their dtype (scikit-learn).
    """
    eps = np.finfo(a_out.dtype).eps
    one = a_out.dtype.type(1)
    n_out = a_out.shape[1]
    loss = 0.0
    for r in range(a_out.shape[0]):
        for k in range(n_out):
            p = a_out[r, k]
            t = one if (y[r] == k if n_out > 1 else y[r] == 1) else 0 * one
            e = p - t
            if output == SIGMOID_MSE:
                delta[r, k] = (one + one) * e * p * (one - p)
                loss += e * e
            else:
                delta[r, k] = e
                pc = min(max(p, eps), one - eps)
                if t == 1:
                    loss -= math.log(pc)
                elif n_out == 1:
                    loss -= math.log(one - pc)
    if output == SIGMOID_MSE:
        return loss / n_out
    return loss


@jit
def _derivative(delta, a, code):
    """``delta *= f'`` of the hidden activation ``code``, from its outputs ``a``."""
    d, av = delta.ravel(), a.ravel()
    one = d.dtype.type(1)
    if code == RELU:
        for j in range(d.shape[0]):
            if av[j] == 0:
                d[j] = 0
    elif code == LOGISTIC:
        for j in range(d.shape[0]):
            d[j] *= av[j] * (one - av[j])
    elif code == TANH:
        for j in range(d.shape[0]):
            d[j] *= one - av[j] * av[j]


@jit
def _backprop_rows(model, xb, yb, ws, r0, r1):
    """Forward and backward pass of rows ``r0:r1`` of the batch ``xb`` (b, n_features), ``yb``:
    every layer's activations and deltas of those rows. Returns their summed loss (float64)."""
    units, params = model.units, model.params
    b = xb.shape[0]
    last = units.shape[0] - 2
    _forward(model, xb[r0:r1], ws.acts, b, r0, r1)
    delta = _rows(ws.deltas, units, last, b, r0, r1)
    loss = _output_delta(_rows(ws.acts, units, last, b, r0, r1), yb[r0:r1], model.output, delta)
    one, zero = params.dtype.type(1), params.dtype.type(0)
    for i in range(last, 0, -1):
        prev = _rows(ws.deltas, units, i - 1, b, r0, r1)  # [r1 - r0, units[i]]
        gemm_nt(delta, _weights(params, units, i), prev, one, zero)
        _derivative(prev, _rows(ws.acts, units, i - 1, b, r0, r1), model.hidden)
        delta = prev
    return loss


@jit
def _gradients(model, xb, ws, slot, size, opt, t):
    """Thread ``slot`` of ``size``'s share of the batch's gradient into ``ws.grads`` (scikit-learn's
    ``(a_in.T @ delta + alpha * W) / b`` and mean deltas), after :func:`_backprop_rows` of
    every row; each range is followed by optimiser step ``t`` unless ``opt`` is None.

    The share: rows ``chunk(units[i])`` of every layer's weights, columns ``chunk(units[i + 1])``
    of its biases. Returns the sum of squares of those weights (before the step).
    """
    units, params, grads = model.units, model.params, ws.grads
    b = xb.shape[0]
    last = units.shape[0] - 2
    dtype = params.dtype.type  # scalars in the weights' dtype, as NumPy's scalar * array
    inv_n, alpha, one, zero = dtype(1.0 / b), dtype(model.alpha), dtype(1), dtype(0)
    squares = 0.0
    for i in range(last + 1):
        fan_in, fan_out = units[i], units[i + 1]
        a_in = xb if i == 0 else _rows(ws.acts, units, i - 1, b, 0, b)  # [b, fan_in]
        delta = _rows(ws.deltas, units, i, b, 0, b)  # [b, fan_out]
        j0, j1 = chunk(fan_in, size, slot, ONE)
        lo = _weight_offset(units, i) + j0 * fan_out
        hi = lo + (j1 - j0) * fan_out
        gemm_tn(a_in[:, j0:j1], delta, grads[lo:hi].reshape((j1 - j0, fan_out)), one, zero)
        squares += _step(params, grads, opt, t, lo, hi, alpha, inv_n)
        k0, k1 = chunk(fan_out, size, slot, ONE)
        b_off = _bias_offset(units, i)
        gb = grads[b_off + k0:b_off + k1]
        gb[:] = 0
        for r in range(b):
            row = delta[r, k0:k1]
            for k in range(k1 - k0):
                gb[k] += row[k]
        _step(params, grads, opt, t, b_off + k0, b_off + k1, zero, inv_n)
    return squares


@jit(entry=True)
def gradient(model, x, y, ws):
    """Forward and backward pass of one batch: the gradient into ``ws.grads``.

    ``x`` (b, n_features) and ``y`` (b,) int64 labels. Returns the batch loss with
    the L2 penalty (scikit-learn's ``_backprop``).
    """
    b = x.shape[0]
    loss = _backprop_rows(model, x, y, ws, 0, b)
    squares = _gradients(model, x, ws, 0, 1, None, 0)
    return (loss + 0.5 * model.alpha * squares) / b


@jit
def _step(params, grads, opt, t, lo, hi, alpha, inv_n):
    """``grads[lo:hi] = (grads + alpha * params) * inv_n`` (scikit-learn's gradient from the
    summed one), then, unless ``opt`` is None, optimiser step ``t`` (counted from 1) on
    ``params[lo:hi]`` (scikit-learn's ``_get_updates``), in one pass over the range.
    Returns the sum of squares of ``params[lo:hi]`` before the step (float64)."""
    dtype = params.dtype.type  # scalars in the weights' dtype, as NumPy's scalar * array
    # Views indexed from 0: with range(lo, hi) Numba's negative-index check stays in the loop
    # and it does not vectorise (10x slower, measured).
    p, g = params[lo:hi], grads[lo:hi]
    squares = 0.0
    if opt is None:
        for j in range(p.shape[0]):
            squares += p[j] * p[j]
            g[j] = (g[j] + alpha * p[j]) * inv_n
        return squares
    m, v = opt.m[lo:hi], opt.v[lo:hi]
    if opt.solver == ADAM:
        beta_1, beta_2 = opt.hyper[2], opt.hyper[3]
        step = dtype(opt.hyper[0] * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t))
        b1, c1, b2, c2 = dtype(beta_1), dtype(1 - beta_1), dtype(beta_2), dtype(1 - beta_2)
        epsilon = dtype(opt.hyper[4])
        for j in range(p.shape[0]):
            w = p[j]
            squares += w * w
            gj = (g[j] + alpha * w) * inv_n
            g[j] = gj
            m[j] = b1 * m[j] + c1 * gj
            v[j] = b2 * v[j] + c2 * (gj * gj)
            p[j] = w + -step * m[j] / (math.sqrt(v[j]) + epsilon)
    else:
        lr, momentum, nesterov = dtype(opt.hyper[0]), dtype(opt.hyper[1]), opt.solver == NESTEROV
        for j in range(p.shape[0]):
            w = p[j]
            squares += w * w
            gj = (g[j] + alpha * w) * inv_n
            g[j] = gj
            u = momentum * m[j] - lr * gj
            m[j] = u
            if nesterov:
                u = momentum * u - lr * gj
            p[j] = w + u
    return squares


@jit(entry=True)
def epoch(slot, size, model, X, y, order, first_step, last_step, batch_size, ws, opt, team):
    """Thread ``slot`` of ``size``'s share of steps ``first_step:last_step`` of an epoch over
    ``X[order]`` in batches of ``batch_size`` (the last may be smaller; ``batch_size`` <= the
    rows of ``ws.xb``); runs of steps give the bits of one run on the same team size.

    Adds each batch's loss times its size to ``team.total`` (scikit-learn's ``loss_`` is
    that over the rows), and advances ``opt.t`` by the number of steps.
    """
    n = order.shape[0]
    t0 = opt.t[0]  # read by every thread before the first barrier, written after the last
    generation = 0
    for s in range(first_step, last_step):
        start = s * batch_size
        b = min(batch_size, n - start)
        xb, yb = ws.xb[:b], ws.yb[:b]
        r0, r1 = chunk(b, size, slot, ONE)
        for r in range(r0, r1):  # gather own rows: contiguous rows for BLAS
            xb[r, :] = X[order[start + r]]
            yb[r] = y[order[start + r]]
        parts = team.parts[s % 2]  # read by thread 0 after this step, written again in step s + 2
        parts[0, slot] = _backprop_rows(model, xb, yb, ws, r0, r1)
        generation = barrier(team.sync, generation, size)
        parts[1, slot] = _gradients(model, xb, ws, slot, size, opt, t0 + s - first_step + 1)
        generation = barrier(team.sync, generation, size)
        if slot == 0:
            loss, squares = 0.0, 0.0
            for k in range(size):
                loss += parts[0, k]
                squares += parts[1, k]
            batch_loss = (loss + 0.5 * model.alpha * squares) / b  # scikit-learn's, weighted by b
            team.total[0] += batch_loss * b
    if slot == 0:
        opt.t[0] = t0 + last_step - first_step


@jit(entry=True)
def predict(model, X, acts, out):
    """The output layer for every row of ``X`` into ``out`` (n, n_out), in chunks ``acts`` holds."""
    units = model.units
    last = units.shape[0] - 2
    width = 0
    for j in range(1, units.shape[0]):
        width += units[j]
    chunk_rows = acts.shape[0] // width
    for start in range(0, X.shape[0], chunk_rows):
        stop = min(start + chunk_rows, X.shape[0])
        _forward(model, X[start:stop], acts, stop - start, 0, stop - start)
        out[start:stop] = _rows(acts, units, last, stop - start, 0, stop - start)
