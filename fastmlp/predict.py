"""Class labels for one image or a batch, in whatever shape the images come."""
import numpy as np


def predict_labels(model, X):
    """Predict the class of one image, or of each image of a batch.

    The chapter's ``np.argmax(model.forward(x)[1])``, for the shapes an image
    comes in. With F = ``model.num_features`` (784 for MNIST):

    * one image: a vector of shape (F,), or a 2-D image such as (28, 28) --
      any 2-D array of F pixels whose last dimension is not F;
    * a batch: an array of shape (n, F), or (n, h, w) with ``h * w == F``.

    Parameters
    ----------
    model : fastmlp.NeuralNetMLP or fastmlp.reference.NeuralNetMLP
        A trained model.
    X : array-like
        One image or a batch, as above.

    Returns
    -------
    int or numpy.ndarray
        The label (a Python int) for one image; an int64 array of shape (n,)
        for a batch.

    Raises
    ------
    ValueError
        If `X` has a shape that is neither one image nor a batch of images.
    """
    X = np.asarray(X)
    num_features = model.num_features
    single = X.ndim == 1 or (X.ndim == 2 and X.shape[-1] != num_features)
    if single and X.size == num_features:
        rows = X.reshape(1, num_features)  # [1, F]
    elif X.ndim == 2 and X.shape[1] == num_features:
        rows = X  # [n, F]
    elif X.ndim == 3 and X.shape[1] * X.shape[2] == num_features:
        rows = X.reshape(X.shape[0], num_features)  # [n, h, w] -> [n, F]
    else:
        raise ValueError(f"cannot read an array of shape {X.shape} as images of "
                         f"{num_features} pixels: pass one image of shape ({num_features},) "
                         f"or (h, w) with h*w == {num_features}, or a batch of shape "
                         f"(n, {num_features}) or (n, h, w)")
    _, probas = model.forward(rows)  # [n, C]
    labels = np.argmax(probas, axis=1)
    return int(labels[0]) if single else labels.astype(np.int64)
