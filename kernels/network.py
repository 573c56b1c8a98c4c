"""The general network's kernels: dense layers of any depth, log-loss or MSE, SGD/Nesterov/Adam.

Specification: :mod:`fastmlp.reference_deep` (scikit-learn's conventions). Every
large product is one BLAS call (Numba's ``np.dot``, SciPy's BLAS, which may use its
own threads); the elementwise work (bias, activation, output delta and loss, the
L2 term, the optimiser) runs in plain loops around them. No ``prange``: the only
threads are BLAS's.

Parameters live in one flat vector ``params``: every layer's weights (row-major
``(fan_in, fan_out)``, scikit-learn's ``coefs_``) in order, then every layer's
biases. The gradients, Adam's moments and the momentum velocities share that
layout, so the optimiser is one loop over one vector. ``units`` holds the layer
sizes ``[n_features, hidden..., n_outputs]``.
"""
import math
from typing import NamedTuple

import numpy as np

from ._config import RELU, SIGMOID, jit
from .exp import exp

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
    delta0: np.ndarray  # (B * max(units[1:]),) deltas, ping-pong between layers
    delta1: np.ndarray
    grads: np.ndarray  # (n_params,) the last batch's gradient


class Optimizer(NamedTuple):
    """An optimiser's settings and state (kept between fits, as scikit-learn's ``_optimizer``)."""
    solver: int  # SGD, NESTEROV or ADAM
    hyper: np.ndarray  # float64 [learning_rate, momentum, beta_1, beta_2, epsilon]
    m: np.ndarray  # (n_params,) SGD velocities, or Adam's first moments
    v: np.ndarray  # (n_params,) Adam's second moments
    t: np.ndarray  # (1,) int64 Adam's step count


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
def _activation(acts, units, i, b):
    """Layer ``i``'s output activations (i >= 0), a (b, units[i + 1]) view of ``acts``."""
    off = 0
    for j in range(1, i + 1):
        off += b * units[j]
    return acts[off:off + b * units[i + 1]].reshape((b, units[i + 1]))


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
def forward(model, x, acts):
    """Every layer's activations for the batch ``x`` (b, n_features), into ``acts``."""
    units, params = model.units, model.params
    b = x.shape[0]
    last = units.shape[0] - 2
    a_in = x
    for i in range(last + 1):
        w_off, b_off = _weight_offset(units, i), _bias_offset(units, i)
        w = params[w_off:w_off + units[i] * units[i + 1]].reshape((units[i], units[i + 1]))
        z = _activation(acts, units, i, b)  # [b, units[i + 1]]
        np.dot(a_in, w, z)
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


@jit(entry=True)
def gradient(model, x, y, ws):
    """Forward and backward pass of one batch: the gradient into ``ws.grads``.

    ``x`` (b, n_features) and ``y`` (b,) int64 labels. Returns the batch loss with
    the L2 penalty (scikit-learn's ``_backprop``).
    """
    units, params, grads = model.units, model.params, ws.grads
    b = x.shape[0]
    last = units.shape[0] - 2
    forward(model, x, ws.acts)
    delta = ws.delta0[:b * units[last + 1]].reshape((b, units[last + 1]))
    loss = _output_delta(_activation(ws.acts, units, last, b), y, model.output, delta)
    dtype = params.dtype.type  # scalars in the weights' dtype, as NumPy's scalar * array
    inv_n = dtype(1.0 / b)
    alpha = dtype(model.alpha)
    squares = 0.0
    for i in range(last, -1, -1):
        a_in = x if i == 0 else _activation(ws.acts, units, i - 1, b)  # [b, units[i]]
        w_off, size = _weight_offset(units, i), units[i] * units[i + 1]
        g = grads[w_off:w_off + size]
        np.dot(a_in.T, delta, g.reshape((units[i], units[i + 1])))
        w = params[w_off:w_off + size]
        for j in range(size):  # (a_in.T @ delta + alpha * W) / b, and ||W||^2
            squares += w[j] * w[j]
            g[j] = (g[j] + alpha * w[j]) * inv_n
        b_off = _bias_offset(units, i)
        gb = grads[b_off:b_off + units[i + 1]]
        gb[:] = 0
        for r in range(b):
            for k in range(units[i + 1]):
                gb[k] += delta[r, k]
        for k in range(units[i + 1]):
            gb[k] *= inv_n
        if i > 0:
            buffer = ws.delta1 if (last - i) % 2 == 0 else ws.delta0
            prev = buffer[:b * units[i]].reshape((b, units[i]))
            np.dot(delta, w.reshape((units[i], units[i + 1])).T, prev)
            _derivative(prev, a_in, model.hidden)
            delta = prev
    return (loss + 0.5 * alpha * squares) * inv_n


@jit
def update(params, grads, opt):
    """One optimiser step on ``params`` from ``grads`` (scikit-learn's ``_get_updates``)."""
    dtype = params.dtype.type  # scalars in the weights' dtype, as NumPy's scalar * array
    lr, momentum = dtype(opt.hyper[0]), dtype(opt.hyper[1])
    m, v = opt.m, opt.v
    if opt.solver == ADAM:
        beta_1, beta_2 = opt.hyper[2], opt.hyper[3]
        opt.t[0] += 1
        step = dtype(opt.hyper[0] * math.sqrt(1 - beta_2 ** opt.t[0])
                     / (1 - beta_1 ** opt.t[0]))
        b1, c1, b2, c2 = dtype(beta_1), dtype(1 - beta_1), dtype(beta_2), dtype(1 - beta_2)
        epsilon = dtype(opt.hyper[4])
        for j in range(params.shape[0]):
            g = grads[j]
            m[j] = b1 * m[j] + c1 * g
            v[j] = b2 * v[j] + c2 * (g * g)
            params[j] += -step * m[j] / (math.sqrt(v[j]) + epsilon)
    else:
        nesterov = opt.solver == NESTEROV
        for j in range(params.shape[0]):
            g = grads[j]
            u = momentum * m[j] - lr * g
            m[j] = u
            if nesterov:
                u = momentum * u - lr * g
            params[j] += u


@jit(entry=True)
def epoch(model, X, y, order, batch_size, ws, opt):
    """One epoch over ``X[order]`` in batches of ``batch_size`` (the last may be smaller).

    ``batch_size`` <= the rows of ``ws.xb``. Returns the mean batch loss, each
    weighted by its size (scikit-learn's ``loss_``).
    """
    n = order.shape[0]
    total = 0.0
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        xb, yb = ws.xb[:b], ws.yb[:b]
        for r in range(b):  # gather the batch: contiguous rows for BLAS
            xb[r, :] = X[order[start + r]]
            yb[r] = y[order[start + r]]
        total += gradient(model, xb, yb, ws) * b
        update(model.params, ws.grads, opt)
    return total / n


@jit(entry=True)
def predict(model, X, acts, out):
    """The output layer for every row of ``X`` into ``out`` (n, n_out), in chunks ``acts`` holds."""
    units = model.units
    last = units.shape[0] - 2
    width = 0
    for j in range(1, units.shape[0]):
        width += units[j]
    chunk = acts.shape[0] // width
    for start in range(0, X.shape[0], chunk):
        stop = min(start + chunk, X.shape[0])
        forward(model, X[start:stop], acts)
        out[start:stop] = _activation(acts, units, last, stop - start)
