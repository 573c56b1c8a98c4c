"""fastmlp's Numba kernels (installed as ``fastmlp.kernels``).

One module per concern: :mod:`.dense` (the blocked ``A @ B.T``, the layer
passes and the BLAS weight gradients), :mod:`.blas` (BLAS ``gemm`` with beta = 1,
the SGD update), :mod:`.exp` (a vectorisable ``exp``), :mod:`.onehot`, :mod:`.loss`,
:mod:`.shuffle` (NumPy's legacy shuffle and the row gather), :mod:`.epoch` (the
fused training epoch and evaluation), :mod:`.sync` (atomics and a spinning barrier)
and :mod:`.validate`. Kernels trust their
inputs: :mod:`fastmlp` validates first.
"""
