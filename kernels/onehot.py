"""One-hot encoding."""
from ._config import jit


@jit(entry=True)
def onehot(y, out):
    """``out[i, y[i]] = 1``, every other entry 0. Labels must already be in ``[0, out.shape[1])``."""
    out[:] = 0
    for i in range(y.shape[0]):
        out[i, y[i]] = 1
