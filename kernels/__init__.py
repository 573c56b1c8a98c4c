"""fastmlp's Numba kernels (installed as ``fastmlp.kernels``).

One module per concern: :mod:`.layers` (the chapter network's layer passes, by rows and
by feature pieces), :mod:`.blas` (BLAS ``gemm`` called from the kernels), :mod:`.exp` (a
vectorisable ``exp``), :mod:`.onehot`, :mod:`.loss`, :mod:`.shuffle` (NumPy's legacy shuffle
and the column gather), :mod:`.epoch` (the fused training steps and evaluation, run by a team
of threads), :mod:`.network` (the general network of any depth), :mod:`.sync` (atomics and a
spinning barrier) and :mod:`.validate`. Options shared by every kernel are in :mod:`._config`.
Kernels trust their inputs: :mod:`fastmlp` validates first.
"""
