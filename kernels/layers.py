"""The chapter's two layers as forward/backward units on row-major ``(batch, units)`` arrays.

Shapes: x (B, F), weight_h (H, F), a_h (B, H), weight_out (C, H), a_out (B, C).

* The two products of size B x F x H (the hidden layer's ``x @ w_h.T`` and the weight
  gradient ``delta_h.T @ x``) go to BLAS (:mod:`.blas`) on a piece ``f0:f1`` of the
  feature columns: ``hidden_partial`` writes one piece's share of ``z_h``, and
  ``add_gradient`` adds ``alpha * delta.T @ x[:, f0:f1]`` into the matching columns
  of a weight (with ``beta = 1`` that is the SGD update, no gradient matrix).
* Everything else is per row (bias, activation, the C x H output layer, the
  deltas) and runs as loops on rows ``n0:n1``: the same code for any split of the
  rows, so every element has the same bits whichever thread computes it.

For one row the two products are loops instead (BLAS's call costs more than the work).
The functions that take ``one_row`` choose by the shape where it is ``ONE``; where it is
None the caller's rows are never one, and Numba prunes the ``one_row is None`` branch
while compiling: the training step of larger minibatches then never compiles the loops
(~0.6-1 s of a cold start, measured; docs/bench.md).
"""
from ._config import ONE, RELU, ZERO, jit
from .blas import gemm_nt, gemm_tn
from .exp import exp


@jit
def chunk(n, parts, i, align):
    """Bounds of part ``i`` of ``range(n)`` cut into ``parts`` at multiples of ``align``.

    The ``ceil(n / align)`` tiles are dealt out evenly (floor), parts differ by at most one.
    """
    tiles = (n + align - 1) // align
    return min(tiles * i // parts * align, n), min(tiles * (i + 1) // parts * align, n)


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
def hidden_partial(x, weight_h, partial, f0, f1, one_row):
    """``partial = x[:, f0:f1] @ weight_h[:, f0:f1].T``: feature piece ``f0:f1`` of ``z_h`` (B, H).

    ``one_row``: see the module docstring.
    """
    if one_row is None or x.shape[0] > 1:
        gemm_nt(x[:, f0:f1], weight_h[:, f0:f1], partial, x.dtype.type(1), x.dtype.type(0))
        return
    row = x[0, f0:f1]
    for h in range(weight_h.shape[0]):
        w = weight_h[h, f0:f1]
        s = x.dtype.type(0)
        for f in range(row.shape[0]):
            s += row[f] * w[f]
        partial[0, h] = s


@jit
def hidden_rows(partials, bias_h, activation, a_h, n0, n1):
    """``a_h[n] = act(sum_p partials[p, n] + b_h)`` for rows ``n0:n1``, pieces summed in order.

    partials (P, B, H); ``a_h`` may be ``partials[0]`` itself. The activation's branch
    stays outside the loops over a row, which then vectorise (``exp`` included).
    """
    one = a_h.dtype.type(1)
    for n in range(n0, n1):
        row = a_h[n]
        if partials.shape[0] == 1:
            for h in range(row.shape[0]):
                row[h] = partials[0, n, h] + bias_h[h]
        else:
            for h in range(row.shape[0]):
                row[h] = partials[0, n, h] + partials[1, n, h]
            for p in range(2, partials.shape[0]):
                for h in range(row.shape[0]):
                    row[h] += partials[p, n, h]
            for h in range(row.shape[0]):
                row[h] += bias_h[h]
        if activation == RELU:  # in place on one array: vectorises (a second, aliased one may not)
            for h in range(row.shape[0]):
                row[h] = row[h] if row[h] > 0 else row[h] * 0
        else:
            for h in range(row.shape[0]):
                row[h] = sigmoid(row[h], one)


@jit
def output_rows(a_h, weight_out, bias_out, a_out, n0, n1):
    """``a_out[n] = sigmoid(a_h[n] @ w_out.T + b_out)`` for rows ``n0:n1`` (C x H: loops, so a
    row's bits do not depend on the rows a call covers; the epoch splits them by thread)."""
    one = a_out.dtype.type(1)
    for n in range(n0, n1):
        for c in range(weight_out.shape[0]):
            z = a_h.dtype.type(0)
            for h in range(weight_out.shape[1]):
                z += a_h[n, h] * weight_out[c, h]
            a_out[n, c] = sigmoid(z + bias_out[c], one)


@jit(entry=True)
def forward_rows(x, weight_h, bias_h, weight_out, bias_out, activation, a_h, a_out):
    """The forward pass of every row of ``x`` (one feature piece: all of them; the output
    layer one product too, as the callers' blocks of rows are fixed)."""
    num_rows, num_hidden = a_h.shape
    hidden_partial(x, weight_h, a_h, ZERO, x.shape[1], ONE)
    hidden_rows(a_h.reshape((1, num_rows, num_hidden)), bias_h, activation, a_h, ZERO, num_rows)
    output_layer(a_h, weight_out, bias_out, a_out)


@jit
def output_layer(a_h, weight_out, bias_out, a_out):
    """``a_out = sigmoid(a_h @ w_out.T + b_out)`` for every row: one product (loops for one row)."""
    num_rows = a_h.shape[0]
    one = a_out.dtype.type(1)
    if num_rows == 1:
        output_rows(a_h, weight_out, bias_out, a_out, ZERO, num_rows)
        return
    gemm_nt(a_h, weight_out, a_out, one, one * 0)
    for n in range(num_rows):
        row = a_out[n]
        for c in range(row.shape[0]):
            row[c] = sigmoid(row[c] + bias_out[c], one)


@jit(reassociate=False)
def delta_rows(a_h, a_out, labels, weight_out, activation, delta_out, delta_h, n0, n1):
    """The chapter's deltas of rows ``n0:n1`` (label of row ``n``: ``labels[n]``).

    ``delta_out = 2 (a_out - onehot(y)) / B * a_out (1 - a_out)``   (B, C)
    ``delta_h   = (delta_out @ w_out) * act'(a_h)``                 (B, H)
    The one-hot matrix is never built. Compiled without ``reassoc``: the products keep
    the chapter's order in every compilation (a cached and a fresh one give the same bits).
    """
    one = a_out.dtype.type(1)
    num_rows = a_out.dtype.type(a_out.shape[0])
    num_classes, num_hidden = weight_out.shape
    for n in range(n0, n1):
        for h in range(num_hidden):
            delta_h[n, h] = 0
        for c in range(num_classes):
            a = a_out[n, c]
            target = one if labels[n] == c else one * 0
            delta = (one + one) * (a - target) / num_rows * (a * (one - a))
            delta_out[n, c] = delta
            for h in range(num_hidden):
                delta_h[n, h] += delta * weight_out[c, h]
        for h in range(num_hidden):
            delta_h[n, h] *= activation_derivative(a_h[n, h], activation, one)


@jit
def add_gradient(delta, inputs, weight, alpha, beta, f0, f1, one_row):
    """``weight[:, f0:f1] = alpha * delta.T @ inputs[:, f0:f1] + beta * weight[:, f0:f1]``.

    delta (B, U), inputs (B, K), weight (U, K). ``alpha = -lr, beta = 1`` is the SGD
    update; ``alpha = 1, beta = 0`` writes the gradient. ``one_row``: see the module docstring.
    """
    if one_row is None or delta.shape[0] > 1:
        gemm_tn(delta, inputs[:, f0:f1], weight[:, f0:f1], alpha, beta)
        return
    row = inputs[0, f0:f1]
    for u in range(weight.shape[0]):
        d = alpha * delta[0, u]
        w = weight[u, f0:f1]
        if beta == 0:
            for f in range(row.shape[0]):
                w[f] = d * row[f]
        else:
            for f in range(row.shape[0]):
                w[f] = beta * w[f] + d * row[f]


@jit
def update_then_partial(delta, x, weight, alpha, x_next, partial, f0, f1, one_row):
    """``weight[:, f0:f1] += alpha * delta.T @ x[:, f0:f1]``, then ``partial = x_next[:, f0:f1]
    @ weight[:, f0:f1].T``: a piece's SGD update (``alpha = -lr``; none where ``alpha = 0``)
    and the next step's share of ``z_h``.

    For one row, one pass over the weights, updating and dotting each row of ``weight``
    while it is in L1: measured 1.5-1.8x faster than an update loop and a product loop
    (the step is bound by the weights' traffic). Every training step takes this pass, the
    first (``alpha = 0``) and last of a run included, so a run gives the bits of any
    split of it. ``one_row``: see the module docstring.
    """
    if one_row is None or delta.shape[0] > 1:
        if alpha != 0:
            add_gradient(delta, x, weight, alpha, weight.dtype.type(1), f0, f1, None)
        hidden_partial(x_next, weight, partial, f0, f1, None)
        return
    row, row_next = x[0, f0:f1], x_next[0, f0:f1]
    for u in range(weight.shape[0]):
        d = alpha * delta[0, u] if alpha != 0 else alpha  # delta is not yet written at alpha = 0
        w = weight[u, f0:f1]
        s = x.dtype.type(0)
        for f in range(row.shape[0]):
            value = w[f] + d * row[f]
            w[f] = value
            s += value * row_next[f]
        partial[0, u] = s


@jit
def add_bias_gradient(delta, bias, alpha, beta, sums):
    """``bias = alpha * delta.sum(axis=0) + beta * bias``, each sum over the rows in order.

    Row by row into ``sums`` (U,) (``bias`` itself where ``beta = 0``): one pass down a
    large ``delta``; a column at a time strided through it (1000 x 1024: 8 MB read 8 times).
    """
    for u in range(delta.shape[1]):
        sums[u] = delta[0, u]
    for n in range(1, delta.shape[0]):
        row = delta[n]
        for u in range(row.shape[0]):
            sums[u] += row[u]
    for u in range(delta.shape[1]):
        bias[u] = alpha * sums[u] if beta == 0 else beta * bias[u] + alpha * sums[u]
