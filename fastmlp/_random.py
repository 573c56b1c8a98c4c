"""Lend the global ``np.random`` generator's MT19937 state to a kernel, and take it back."""
from contextlib import contextmanager

import numpy as np


@contextmanager
def global_mt19937():
    """Yield ``(key, pos)``: the global generator's state words (624 uint32) and position.

    A kernel that draws from them advances the generator exactly as NumPy would;
    on exit the advanced state becomes the global state again (the Gaussian
    cache is kept as it was, since shuffling does not touch it).
    """
    name, key, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    key = np.array(key, dtype=np.uint32)
    pos = np.array([pos], dtype=np.int64)
    try:
        yield key, pos
    finally:
        np.random.set_state((name, key, int(pos[0]), has_gauss, cached_gaussian))
