"""A general multi-layer perceptron in plain NumPy: the specification of :mod:`fastmlp.network`.

Any number of hidden layers of any width; weights ``coefs[i]`` of shape
``(fan_in, fan_out)`` and biases ``intercepts[i]`` of shape ``(fan_out,)``, as
scikit-learn's ``MLPClassifier`` stores them (``z = a @ W + b``).

Conventions (scikit-learn's ``_backprop`` and ``_stochastic_optimizers``):

* output and loss ``"log_loss"``: softmax outputs and cross-entropy for more than
  one output; one logistic output and binary cross-entropy for one (scikit-learn's
  binary classifier). The output delta is ``a_out - t``.
* output and loss ``"mse"`` (the chapter's): sigmoid outputs; the loss is
  ``mean((t - a_out)**2)`` over every entry of the batch, the output delta the
  chapter's ``2 * (a_out - t) * a_out * (1 - a_out)`` (the chapter scales it by
  the batch size only, not by the number of outputs).
* the gradient of a batch of ``n`` is ``(a_in.T @ delta + alpha * W) / n`` for the
  weights and ``delta.sum(axis=0) / n`` for the biases; the loss adds
  ``alpha / 2 * sum(||W||**2) / n``.
* optimisers: ``"sgd"`` (momentum, optionally Nesterov's) and ``"adam"``, updating
  in the order ``coefs + intercepts`` exactly as scikit-learn's optimisers do.
"""
import numpy as np

HIDDEN_ACTIVATIONS = ("logistic", "relu", "tanh", "identity")
LOSSES = ("log_loss", "mse")


def activate(z, activation):
    """The hidden activation of pre-activations ``z``."""
    if activation == "logistic":
        return 1. / (1. + np.exp(-z))
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "tanh":
        return np.tanh(z)
    return z


def derivative(a, activation):
    """The activation's derivative, written in terms of its output ``a`` (as scikit-learn's)."""
    if activation == "logistic":
        return a * (1 - a)
    if activation == "relu":
        return (a != 0).astype(a.dtype)
    if activation == "tanh":
        return 1 - a ** 2
    return np.ones_like(a)


def output(z, loss):
    """The output layer's activation: softmax for log-loss with several outputs, else logistic."""
    if loss == "log_loss" and z.shape[1] > 1:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 1. / (1. + np.exp(-z))


def targets(y, num_outputs):
    """The targets of integer labels ``y``: one-hot rows, or ``y`` itself for one output."""
    if num_outputs == 1:
        return y.reshape(-1, 1).astype(float)
    return (y.reshape(-1, 1) == np.arange(num_outputs)).astype(float)


def forward(coefs, intercepts, x, activation, loss):
    """The activations of every layer, ``[x, a_1, ..., a_out]``."""
    acts = [x]
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        z = acts[-1] @ w + b
        acts.append(output(z, loss) if i == len(coefs) - 1 else activate(z, activation))
    return acts


def loss_value(coefs, a_out, t, alpha, loss):
    """The batch loss scikit-learn reports (the chapter's MSE for ``"mse"``), with the L2 penalty."""
    n = t.shape[0]
    if loss == "mse":
        value = np.mean((t - a_out) ** 2)
    else:
        eps = np.finfo(a_out.dtype).eps
        p = np.clip(a_out, eps, 1 - eps)
        if p.shape[1] == 1:  # binary: both columns, as scikit-learn's log_loss
            p, t = np.hstack([1 - p, p]), np.hstack([1 - t, t])
        value = -np.sum(t * np.log(p)) / n
    return value + 0.5 * alpha * sum(np.sum(w * w) for w in coefs) / n


def gradients(coefs, intercepts, x, y, activation, loss, alpha):
    """``(loss, coef_grads, intercept_grads)`` of one batch ``x`` with integer labels ``y``."""
    n = x.shape[0]
    acts = forward(coefs, intercepts, x, activation, loss)
    a_out = acts[-1]
    t = targets(y, a_out.shape[1])
    delta = a_out - t  # [n, n_out]
    if loss == "mse":
        delta = 2. * delta * a_out * (1. - a_out)
    coef_grads = [None] * len(coefs)
    intercept_grads = [None] * len(coefs)
    for i in range(len(coefs) - 1, -1, -1):
        coef_grads[i] = (acts[i].T @ delta + alpha * coefs[i]) / n
        intercept_grads[i] = delta.sum(axis=0) / n
        if i > 0:
            delta = (delta @ coefs[i].T) * derivative(acts[i], activation)
    return loss_value(coefs, a_out, t, alpha, loss), coef_grads, intercept_grads


class Optimizer:
    """scikit-learn's SGD (momentum, Nesterov) and Adam updates, in place on ``params``."""

    def __init__(self, params, solver="adam", learning_rate_init=0.001, momentum=0.9,
                 nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.solver, self.lr, self.momentum, self.nesterov = (
            solver, learning_rate_init, momentum, nesterovs_momentum)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.velocities = [np.zeros_like(p) for p in params]  # sgd; Adam's first moments
        self.vs = [np.zeros_like(p) for p in params]  # Adam's second moments

    def update(self, params, grads):
        if self.solver == "sgd":
            updates = [self.momentum * v - self.lr * g for v, g in zip(self.velocities, grads)]
            self.velocities = updates
            if self.nesterov:
                updates = [self.momentum * v - self.lr * g
                           for v, g in zip(self.velocities, grads)]
        else:
            self.t += 1
            self.velocities = [self.beta_1 * m + (1 - self.beta_1) * g
                               for m, g in zip(self.velocities, grads)]
            self.vs = [self.beta_2 * v + (1 - self.beta_2) * g ** 2
                       for v, g in zip(self.vs, grads)]
            lr = self.lr * np.sqrt(1 - self.beta_2 ** self.t) / (1 - self.beta_1 ** self.t)
            updates = [-lr * m / (np.sqrt(v) + self.epsilon)
                       for m, v in zip(self.velocities, self.vs)]
        for p, u in zip(params, updates):
            p += u


def train_epoch(coefs, intercepts, optimizer, X, y, order, batch_size, activation, loss,
                alpha):
    """One epoch over ``X[order]`` in batches of ``batch_size`` (the last one may be smaller).

    Updates ``coefs`` and ``intercepts`` in place; returns the epoch's mean loss
    (each batch's loss weighted by its size, as scikit-learn's ``loss_``).
    """
    total = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch_loss, coef_grads, intercept_grads = gradients(
            coefs, intercepts, X[idx], y[idx], activation, loss, alpha)
        total += batch_loss * len(idx)
        optimizer.update(coefs + intercepts, coef_grads + intercept_grads)
    return total / len(order)
