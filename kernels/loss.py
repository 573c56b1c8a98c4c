"""The chapter's MSE against one-hot targets, and its argmax, without a one-hot matrix."""
from ._config import jit


@jit
def row_sse_argmax(probas, n, label):
    """``(sum_k (onehot(label)[k] - probas[n, k])**2, argmax_k probas[n, k])`` of row ``n``.

    The squared error is summed in float64; ties go to the first maximum, as ``np.argmax``.
    """
    sse = 0.0
    best = 0
    for k in range(probas.shape[1]):
        p = probas[n, k]
        e = 1.0 - p if k == label else 0.0 - p
        sse += e * e
        if p > probas[n, best]:
            best = k
    return sse, best


@jit(entry=True)
def onehot_sse(y, probas):
    """``sum((onehot(y) - probas)**2)`` over every row."""
    total = 0.0
    for n in range(probas.shape[0]):
        total += row_sse_argmax(probas, n, y[n])[0]
    return total
