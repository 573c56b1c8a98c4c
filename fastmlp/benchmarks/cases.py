"""The benchmark cases: what is timed (a kernel at a shape, by an implementation), and its cost.

A *case* is one kernel at one shape, run by one implementation (``reference``,
the chapter's code, always float64; ``fastmlp``, float64 or float32; or a
peer library, the chapter epoch only) on a set number of threads. Its group,
``kernel|shape|dtype|tN``, puts the reference and fastmlp side by side;
fastmlp float32 is compared with the float64 reference.
"""
import functools
from dataclasses import dataclass

import numpy as np

NUM_FEATURES = 784
NUM_CLASSES = 10
LEARNING_RATE = 0.1
EVAL_MINIBATCH = 100  # the chapter's compute_mse_and_acc default, also inside train
SHAPE_AXES = ("rows", "batch", "hidden")
VARIANTS = (("reference", "float64"), ("fastmlp", "float64"), ("fastmlp", "float32"))
"""The (impl, dtype) pairs run for each kernel, shape and thread count."""

PEERS = ("sklearn", "torch", "jax")
"""Other libraries timed on the chapter epoch (same shapes, sigmoid layers, SGD, same batch size)."""
PEER_SHAPE = {"rows": 55_000, "batch": 100, "hidden": 50}
"""The epoch shape the peers run at: the chapter's."""

HEADLINE = (
    ("epoch", {"rows": 55_000, "batch": 100, "hidden": 50}),  # the chapter epoch
    # a tenth of the rows at batch 10 and 1: the reference's 5,500 Python-level steps take seconds
    ("epoch", {"rows": 5_500, "batch": 10, "hidden": 50}),
    ("epoch", {"rows": 5_500, "batch": 1, "hidden": 50}),
    ("step", {"batch": 1000, "hidden": 1024}),
    ("evaluate", {"rows": 55_000, "hidden": 50}),
)
"""The cases of ``fastmlp bench``."""
QUICK_ROWS = 5_500  # rows cap of ``fastmlp bench --quick``


@dataclass(frozen=True)
class Case:
    """One benchmark: a kernel at a shape, run by one implementation, dtype and thread count.

    Parameters
    ----------
    kernel : {"onehot", "shuffle", "forward", "backward", "step", "evaluate", "epoch"}
    impl : {"reference", "fastmlp", "sklearn", "torch", "jax"}
        The implementation; the peers (:data:`PEERS`) run only the chapter epoch.
    dtype : {"float64", "float32"}
    threads : int
    rows, batch, hidden : int or None
        The shape; each kernel uses some of them (see :data:`KERNEL_AXES`).
    """

    kernel: str
    impl: str
    dtype: str
    threads: int
    rows: int | None = None
    batch: int | None = None
    hidden: int | None = None

    @property
    def shape(self):
        """The shape axes the kernel uses, in :data:`SHAPE_AXES` order."""
        return {axis: getattr(self, axis) for axis in SHAPE_AXES if getattr(self, axis) is not None}

    @property
    def shape_label(self):
        return ",".join(f"{axis}={value}" for axis, value in self.shape.items())

    @property
    def group(self):
        return f"{self.kernel}|{self.shape_label}|{self.dtype}|t{self.threads}"

    @property
    def id(self):
        """A pytest-style id, e.g. ``epoch-fastmlp-float32-t2-rows55000-batch100-hidden50``."""
        shape = [f"{axis}{value}" for axis, value in self.shape.items()]
        return "-".join([self.kernel, self.impl, self.dtype, f"t{self.threads}", *shape])

    @property
    def extra_info(self):
        """``extra_info`` of the case's benchmark before timing: the case and its cost."""
        flops, moved = cost(self)
        return {"kernel": self.kernel, "impl": self.impl, **self.shape, "dtype": self.dtype,
                "threads": self.threads, "flops": flops, "bytes": moved}


KERNEL_AXES = {"onehot": ("batch",), "shuffle": ("rows", "batch"), "forward": ("batch", "hidden"),
               "backward": ("batch", "hidden"), "step": ("batch", "hidden"),
               "evaluate": ("rows", "hidden"), "epoch": ("rows", "batch", "hidden")}
"""The shape axes of each kernel, in the order tables list the kernels."""
KERNEL_ORDER = {kernel: i for i, kernel in enumerate(KERNEL_AXES)}


def validation_rows(rows):
    """Rows of the validation set beside ``rows`` training rows (5,000 for the chapter's 55,000)."""
    return max(EVAL_MINIBATCH, rows // 11)


def cost(case):
    """``(flops, bytes)`` of one run of ``case``: an estimate of the work, the same for every impl.

    Flops count the multiply-adds of the matrix products and of the SGD update
    (activations and the loss are left out). Bytes count each array a pass
    reads or writes once (compulsory traffic); a step is forward + backward +
    update, an epoch its steps plus the evaluation of both data sets.
    """
    s = np.dtype(case.dtype).itemsize
    F, C, H, B, n = NUM_FEATURES, NUM_CLASSES, case.hidden, case.batch, case.rows
    if case.kernel == "onehot":
        return 0, 8 * B + s * B * C
    if case.kernel == "shuffle":
        return 0, 16 * n + n // B * B * (2 * s * F + 16)
    params = H * (F + 1) + C * (H + 1)

    def evaluation(rows):
        used = rows // EVAL_MINIBATCH * EVAL_MINIBATCH
        return np.array([2 * used * H * (F + C), s * (rows * F + params) + 8 * rows])

    if case.kernel == "evaluate":
        return tuple(evaluation(n).tolist())
    forward = np.array([2 * B * H * (F + C), s * (B * F + params + B * (H + C))])
    backward = np.array([2 * B * H * (F + 2 * C),
                         s * (B * F + B * (H + C) + C * H + params) + 8 * B])
    step = forward + backward + [2 * params, 3 * s * params]  # + the update
    if case.kernel == "epoch":
        return tuple((n // B * step + evaluation(n) + evaluation(validation_rows(n))).tolist())
    return tuple({"forward": forward, "backward": backward, "step": step}[case.kernel].tolist())


@functools.lru_cache(maxsize=8)
def dataset(rows, dtype, seed):
    """Random normalised features in [-1, 1) (as the chapter scales MNIST) and labels 0..9."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(rows, NUM_FEATURES)).astype(dtype)
    return X, rng.integers(0, NUM_CLASSES, size=rows)
