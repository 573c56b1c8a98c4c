"""Benchmarks of fastmlp against the chapter's NumPy code, and the machine they ran on.

Shared by the pytest-benchmark suite in ``bench/`` and by two commands:

* ``fastmlp bench``: the headline cases (the chapter epoch and a few others),
  reference and fastmlp interleaved round by round, printed as a table and
  saved as JSON in pytest-benchmark's format;
* ``fastmlp compare A.json B.json ...``: the speedups of several such files
  (one per machine, say) side by side, as a table and optionally a chart.

A *case* is one kernel at one shape, run by one implementation (``reference``,
the chapter's code, always float64; ``fastmlp``, float64 or float32) on a set
number of threads. Its group, ``kernel|shape|dtype|tN``, puts the reference and
fastmlp side by side; fastmlp float32 is compared with the float64 reference.

``python -m fastmlp.benchmark --slug`` prints this machine's CPU slug (to name
saved results); ``python -m fastmlp.benchmark bench|compare ...`` runs the commands.
"""
import argparse
import collections
import contextlib
import datetime
import functools
import importlib.util
import io
import json
import math
import os
import platform
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
import numba
import numpy as np
import threadpoolctl
from threadpoolctl import threadpool_info, threadpool_limits

from . import __version__, reference
from .cli import int_in
from .kernels import dense, onehot, shuffle
from .kernels._config import jit
from .model import EpochTrainer, NeuralNetMLP, _permutation, compute_mse_and_acc
from .threads import set_num_threads

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
BLAS_ENV = {
    "OPENBLAS_CORETYPE": "forces that OpenBLAS kernel instead of the one for this CPU",
    "OPENBLAS_L2_SIZE": "overrides the cache size OpenBLAS blocks its products for",
}
"""Variables that slow the reference's BLAS, with what they do."""
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER")


class BenchmarkFileError(ValueError):
    """A file that is not a benchmark result (not JSON, or no ``benchmarks`` / ``machine_info``)."""


# --- cases and workloads ---------------------------------------------------------------

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


@dataclass(frozen=True)
class Workload:
    """A case ready to time: ``run()`` does the work once; inputs and workspaces are allocated."""

    run: Callable[[], object]
    case: Case


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
def _dataset(rows, dtype, seed):
    """Random normalised features in [-1, 1) (as the chapter scales MNIST) and labels 0..9."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(rows, NUM_FEATURES)).astype(dtype)
    return X, rng.integers(0, NUM_CLASSES, size=rows)


def _model(case):
    """The case's model (the chapter's seed), with the chapter's "Model initialization" silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        if case.impl == "reference":
            return reference.NeuralNetMLP(NUM_FEATURES, case.hidden, NUM_CLASSES)
        return NeuralNetMLP(NUM_FEATURES, case.hidden, NUM_CLASSES, dtype=np.dtype(case.dtype).type)


def _reference_shuffle(X, y, minibatch_size):
    """Draw the chapter's minibatches of one epoch (shuffle and gathers), discarding them."""
    collections.deque(reference.minibatch_generator(X, y, minibatch_size), maxlen=0)


@jit(parallel=True)
def _gather_epoch(X, y, order, minibatch_size, xb, yb, num_chunks):
    """The minibatch gathers of one epoch (``shuffle.gather_rows``, rows split between threads)."""
    for step in range(order.shape[0] // minibatch_size):
        rows = order[step * minibatch_size:(step + 1) * minibatch_size]
        for c in numba.prange(num_chunks):
            n0, n1 = dense.chunk(minibatch_size, num_chunks, c)
            shuffle.gather_rows(X, y, rows, xb, yb, n0, n1)


def _fastmlp_shuffle(X, y, minibatch_size, xb, yb, num_chunks):
    _gather_epoch(X, y, _permutation(X.shape[0]), minibatch_size, xb, yb, num_chunks)


def _reference_step(model, X, y):
    """One SGD step: the body of the chapter's training loop."""
    a_h, a_out = model.forward(X)
    d_loss__d_w_out, d_loss__d_b_out, d_loss__d_w_h, d_loss__d_b_h = \
        model.backward(X, a_h, a_out, y)
    model.weight_h -= LEARNING_RATE * d_loss__d_w_h
    model.bias_h -= LEARNING_RATE * d_loss__d_b_h
    model.weight_out -= LEARNING_RATE * d_loss__d_w_out
    model.bias_out -= LEARNING_RATE * d_loss__d_b_out


def _reference_epoch(model, X, y, X_valid, y_valid, minibatch_size):
    """One epoch of the chapter's ``train`` (its steps, then both evaluations), not printing."""
    with contextlib.redirect_stdout(io.StringIO()):
        reference.train(model, X, y, X_valid, y_valid, 1, LEARNING_RATE, minibatch_size)


def _fastmlp_epoch(trainer, X_valid, y_valid):
    """One epoch as :func:`fastmlp.train` runs it (without its print)."""
    trainer.run(_permutation(trainer.num_examples))
    trainer.evaluate(trainer.X, trainer.y)
    trainer.evaluate(X_valid, y_valid)


def peer_missing(impl):
    """Why peer ``impl`` cannot run here (its library is not installed), or None."""
    modules, install = {"sklearn": (("sklearn",), "scikit-learn"), "torch": (("torch",), "torch"),
                        "jax": (("jax", "jaxlib"), '"jax[cpu]"')}[impl]
    for module in modules:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install {install} to add its row)"
    return None


def _sklearn_epoch_workload(case, dtype):
    """scikit-learn's MLPClassifier, configured as the chapter's network allows.

    Same sizes, logistic hidden layer, plain SGD (no momentum, no L2 penalty),
    constant learning rate 0.1, the same batch size; its own loss (log-loss on
    softmax outputs: scikit-learn has no MSE classifier). One epoch is one
    ``partial_fit`` over the rows, then the accuracy on both data sets.
    """
    from sklearn.neural_network import MLPClassifier
    X, y = _dataset(case.rows, dtype, 0)
    X_valid, y_valid = _dataset(validation_rows(case.rows), dtype, 1)
    model = MLPClassifier(hidden_layer_sizes=(case.hidden,), activation="logistic",
                          solver="sgd", learning_rate_init=LEARNING_RATE, batch_size=case.batch,
                          momentum=0.0, nesterovs_momentum=False, alpha=0.0, random_state=0)

    def epoch():
        model.partial_fit(X, y, classes=np.arange(NUM_CLASSES))
        model.score(X, y)
        model.score(X_valid, y_valid)
    return epoch


def _torch_epoch_workload(case, dtype):
    """The chapter's network in PyTorch eager mode: sigmoid layers, MSE on one-hot targets, SGD."""
    import torch
    torch.set_num_threads(case.threads)
    torch_dtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype.type]
    X, y = (torch.from_numpy(a) for a in _dataset(case.rows, dtype, 0))
    X_valid, y_valid = (torch.from_numpy(a) for a in _dataset(validation_rows(case.rows), dtype, 1))
    onehot_y = torch.nn.functional.one_hot(y, NUM_CLASSES).to(torch_dtype)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(NUM_FEATURES, case.hidden), torch.nn.Sigmoid(),
                                torch.nn.Linear(case.hidden, NUM_CLASSES), torch.nn.Sigmoid())
    model.to(torch_dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    def evaluate(features, labels):
        with torch.no_grad():
            return (model(features).argmax(dim=1) == labels).double().mean().item()

    def epoch():
        order = torch.randperm(case.rows)
        for step in range(case.rows // case.batch):
            rows = order[step * case.batch:(step + 1) * case.batch]
            loss = ((model(X[rows]) - onehot_y[rows]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        evaluate(X, y)
        evaluate(X_valid, y_valid)
    return epoch


JAX_ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"""Added to ``XLA_FLAGS`` of a 1-thread JAX worker. With jax 0.10 they do not stop XLA's CPU
client from running a matrix product on every core (measured: CPU time = 2 x wall time on 2
cores); the worker's CPU affinity (``threads`` CPUs) is what holds it to its thread count."""
JAX_WORKER_TIMEOUT = 600.0
"""Seconds the parent waits for the JAX worker (its start and compilation, or one epoch) before
it kills it and raises, so that a stuck worker cannot hang the benchmark."""
_JAX_WORKER_CODE = ("import sys; from fastmlp.benchmark import _jax_worker_main; "
                    "_jax_worker_main(sys.argv[1])")


def _jax_epoch(rows, batch, hidden, dtype):
    """The chapter epoch in JAX (in the worker process): ``(epoch, describe)``.

    The chapter's network and initialisation (weights normal(0, 0.1) from
    ``RandomState(123)``, zero biases): 784 -> ``hidden`` sigmoid -> 10
    sigmoid, the MSE against one-hot targets as a mean over all entries (as
    torch's ``.mean()``; the chapter's hand-written backward scales by
    1/batch, 10 times larger, at the same cost), ``jax.grad``, plain SGD at
    :data:`LEARNING_RATE`, a fresh ``jax.random.permutation`` each epoch, then
    the accuracy of the training and validation sets.

    The whole epoch is one jitted function, its steps a ``jax.lax.scan`` over
    the minibatches' row indices (each step gathers its rows). Measured on 2
    cores at the chapter's shape, it is 1.3-1.7x faster than a Python loop
    over a jitted step (float64 t1: 539 vs 722 ms; float32 t1: 274 vs 405 ms;
    float64 t2: 382 vs 570; float32 t2: 256 vs 449), which pays a dispatch per
    step. ``epoch()`` runs one epoch and blocks until its results are ready.
    """
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", dtype == np.float64)  # else float64 arrays become float32
    steps = rows // batch
    rng = np.random.RandomState(123)
    params = tuple(jnp.asarray(a, dtype) for a in (
        rng.normal(0.0, 0.1, (hidden, NUM_FEATURES)), np.zeros(hidden),
        rng.normal(0.0, 0.1, (NUM_CLASSES, hidden)), np.zeros(NUM_CLASSES)))
    X, y = (jnp.asarray(a) for a in _dataset(rows, dtype, 0))
    X_valid, y_valid = (jnp.asarray(a) for a in _dataset(validation_rows(rows), dtype, 1))
    _dataset.cache_clear()  # the worker's NumPy copies
    targets = jax.nn.one_hot(y, NUM_CLASSES, dtype=dtype)

    def forward(params, features):
        weight_h, bias_h, weight_out, bias_out = params
        hidden_out = jax.nn.sigmoid(features @ weight_h.T + bias_h)
        return jax.nn.sigmoid(hidden_out @ weight_out.T + bias_out)

    def loss(params, features, onehot_targets):
        return jnp.mean((forward(params, features) - onehot_targets) ** 2)

    def accuracy(params, features, labels):
        return jnp.mean(jnp.argmax(forward(params, features), axis=1) == labels)

    @jax.jit  # the data are arguments, not constants folded into the program
    def train_epoch(params, key, X, targets, y, X_valid, y_valid):
        key, draw = jax.random.split(key)
        order = jax.random.permutation(draw, X.shape[0])[:steps * batch].reshape(steps, batch)

        def step(params, minibatch):
            grads = jax.grad(loss)(params, X[minibatch], targets[minibatch])
            return tuple(p - LEARNING_RATE * g for p, g in zip(params, grads)), None

        params, _ = jax.lax.scan(step, params, order)
        return params, key, accuracy(params, X, y), accuracy(params, X_valid, y_valid)

    state = {"params": params, "key": jax.random.key(0)}

    def epoch():
        params, key, train_acc, valid_acc = train_epoch(state["params"], state["key"], X, targets,
                                                        y, X_valid, y_valid)
        jax.block_until_ready((params, train_acc, valid_acc))
        state.update(params=params, key=key)

    def describe():
        return {"jax": jax.__version__, "backend": jax.default_backend(),
                "dtype": str(state["params"][0].dtype), "epoch": "jit(lax.scan over minibatches)"}
    return epoch, describe


def _jax_worker_main(spec):
    """The JAX worker process (started by :class:`_JaxWorker`); ``spec`` is the case as JSON.

    It restricts itself to the case's CPUs before importing JAX, builds and
    compiles the epoch (running it once), answers ``ready <json>``, then
    reads one command a line on stdin: ``run`` runs one epoch and answers
    ``done``; ``info`` answers a JSON line (affinity, ``XLA_FLAGS``, CPU and
    wall seconds of the epochs run so far, ...); ``quit`` or the end of stdin
    ends it. Answers go to the original stdout; anything else printed goes to
    stderr. Any error ends the process with its traceback on stderr.
    """
    spec = json.loads(spec)
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    if spec["cpus"] and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, spec["cpus"])
    epoch, describe = _jax_epoch(spec["rows"], spec["batch"], spec["hidden"],
                                 np.dtype(spec["dtype"]).type)
    epoch()  # compiles: setup, untimed
    runs, cpu, wall = 0, 0.0, 0.0

    def info():
        return json.dumps({**describe(), "pid": os.getpid(), "xla_flags": os.environ.get("XLA_FLAGS"),
                           "affinity": sorted(os.sched_getaffinity(0))
                           if hasattr(os, "sched_getaffinity") else None,
                           "os_threads": len(os.listdir("/proc/self/task"))
                           if os.path.isdir("/proc/self/task") else None,
                           "runs": runs, "cpu_seconds": cpu, "wall_seconds": wall})

    protocol.write(f"ready {info()}\n")
    while command := sys.stdin.readline().strip():
        if command == "run":
            cpu0, wall0 = time.process_time(), time.perf_counter()
            epoch()
            runs, cpu, wall = (runs + 1, cpu + time.process_time() - cpu0,
                               wall + time.perf_counter() - wall0)
            protocol.write("done\n")
        elif command == "info":
            protocol.write(f"info {info()}\n")
        elif command == "quit":
            break
        else:
            raise ValueError(f"JAX worker: unknown command {command!r}")


def _stop_jax_worker(process, stderr):
    """End a JAX worker: ``quit``, then a kill if it has not exited within 5 s."""
    if process.poll() is None:
        with contextlib.suppress(OSError):
            process.stdin.write("quit\n")
            process.stdin.flush()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout, stderr):
        with contextlib.suppress(OSError):
            stream.close()


class _JaxWorker:
    """The chapter epoch of one JAX case, in a worker process of its own.

    XLA sizes its CPU thread pool once, when its backend starts, and cannot
    resize it, so each (dtype, threads) case runs in a persistent worker
    started here with its own environment (``XLA_FLAGS``, plus
    :data:`JAX_ONE_THREAD_FLAGS` at 1 thread; ``JAX_PLATFORMS=cpu``) and its
    CPU affinity cut to ``threads`` CPUs; the parent never imports JAX.
    Starting waits until the worker has compiled and run the epoch once.

    :meth:`run` sends ``run`` on the worker's stdin and waits for ``done``:
    the parent times that call like the others. The pipe round trip (about
    0.1 ms) is negligible against an epoch of hundreds of milliseconds.

    A worker that exits (or does not answer within :data:`JAX_WORKER_TIMEOUT`)
    makes :meth:`run` raise ``RuntimeError`` with the end of its stderr. The
    worker is ended by :meth:`close`, when this object is collected, or at
    interpreter exit (and by itself when its stdin closes).
    """

    def __init__(self, case):
        self.case = case
        cpus = sorted(os.sched_getaffinity(0))[:case.threads] \
            if hasattr(os, "sched_getaffinity") else []
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        if case.threads == 1:
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {JAX_ONE_THREAD_FLAGS}".strip()
        spec = {"rows": case.rows, "batch": case.batch, "hidden": case.hidden,
                "dtype": case.dtype, "cpus": cpus}
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-c", _JAX_WORKER_CODE, json.dumps(spec)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        self._close = weakref.finalize(self, _stop_jax_worker, self._process, self._stderr)
        self.info = json.loads(self._request(None, "ready"))

    @property
    def pid(self):
        return self._process.pid

    def run(self):
        """One epoch in the worker; returns when it is done."""
        self._request("run", "done")

    def describe(self):
        """The worker's ``info``: affinity, ``XLA_FLAGS``, CPU and wall seconds of its epochs..."""
        return json.loads(self._request("info", "info"))

    def close(self):
        """End the worker (idempotent)."""
        self._close()

    def _request(self, command, answer):
        """Send ``command`` (None: nothing), return the rest of the answer line ``answer ...``."""
        if command is not None:
            try:
                self._process.stdin.write(f"{command}\n")
                self._process.stdin.flush()
            except (OSError, ValueError):  # a broken pipe, or closed
                raise self._failure(f"could not be sent {command!r}") from None
        ready, _, _ = select.select([self._process.stdout], [], [], JAX_WORKER_TIMEOUT)
        line = self._process.stdout.readline() if ready else ""
        if line.split(" ", 1)[0].strip() != answer:
            doing = repr(command) if command else "its setup"
            if not ready:
                why = f"did not finish {doing} within {JAX_WORKER_TIMEOUT:g} s"
            elif line:
                why = f"answered {line.strip()!r} to {doing} instead of {answer!r}"
            else:
                why = f"exited during {doing}"
            raise self._failure(why)
        return line[len(answer):].strip()

    def _failure(self, why):
        if self._process.poll() is None:
            self._process.kill()
        code = self._process.wait()
        tail = ""
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace")[-3000:]
        self.close()
        return RuntimeError(f"the JAX worker of {self.case.id} (pid {self._process.pid}) {why} "
                            f"(exit status {code}); its stderr ends with:\n{tail or '(nothing)'}")


def _jax_epoch_workload(case, dtype):
    """The chapter epoch in JAX, in a worker process of the case's own (see :class:`_JaxWorker`)."""
    return _JaxWorker(case).run


_PEER_WORKLOADS = {"sklearn": _sklearn_epoch_workload, "torch": _torch_epoch_workload,
                   "jax": _jax_epoch_workload}


def _onehot_workload(case, dtype):
    _, y = _dataset(case.batch, dtype, 0)
    if case.impl == "reference":
        return functools.partial(reference.int_to_onehot, y, NUM_CLASSES)
    return functools.partial(onehot.onehot, y, np.empty((case.batch, NUM_CLASSES), dtype))


def _shuffle_workload(case, dtype):
    X, y = _dataset(case.rows, dtype, 0)
    if case.impl == "reference":
        return functools.partial(_reference_shuffle, X, y, case.batch)
    return functools.partial(_fastmlp_shuffle, X, y, case.batch,
                             np.empty((case.batch, NUM_FEATURES), dtype),
                             np.empty(case.batch, np.int64), numba.get_num_threads())


def _forward_workload(case, dtype):
    X, _ = _dataset(case.batch, dtype, 0)
    return functools.partial(_model(case).forward, X)


def _backward_workload(case, dtype):
    X, y = _dataset(case.batch, dtype, 0)
    model = _model(case)
    return functools.partial(model.backward, X, *model.forward(X), y)


def _step_workload(case, dtype):
    X, y = _dataset(case.batch, dtype, 0)
    model = _model(case)
    if case.impl == "reference":
        return functools.partial(_reference_step, model, X, y)
    trainer = EpochTrainer(model, X, y, LEARNING_RATE, case.batch)
    return functools.partial(trainer.run, np.arange(case.batch))


def _evaluate_workload(case, dtype):
    X, y = _dataset(case.rows, dtype, 0)
    function = reference.compute_mse_and_acc if case.impl == "reference" else compute_mse_and_acc
    return functools.partial(function, _model(case), X, y)


def _epoch_workload(case, dtype):
    X, y = _dataset(case.rows, dtype, 0)
    X_valid, y_valid = _dataset(validation_rows(case.rows), dtype, 1)
    model = _model(case)
    if case.impl == "reference":
        return functools.partial(_reference_epoch, model, X, y, X_valid, y_valid, case.batch)
    trainer = EpochTrainer(model, X, y, LEARNING_RATE, case.batch)
    return functools.partial(_fastmlp_epoch, trainer, *trainer.check_data(X_valid, y_valid))


_WORKLOADS = {"onehot": _onehot_workload, "shuffle": _shuffle_workload,
              "forward": _forward_workload, "backward": _backward_workload,
              "step": _step_workload, "evaluate": _evaluate_workload, "epoch": _epoch_workload}


def build_workload(case):
    """Allocate the inputs and workspaces of ``case``; call inside :func:`thread_limit`.

    Both implementations run through the same interface: the model's
    ``forward`` and ``backward``, ``compute_mse_and_acc``, one epoch of
    ``train``; fastmlp's SGD step is one compiled step of
    :class:`~fastmlp.model.EpochTrainer` (the reference's, the chapter's loop
    body). fastmlp's one-hot encoding and shuffle run their kernels on
    preallocated arrays (the shuffle followed by an epoch's minibatch gathers,
    as the fused epoch does them).
    """
    if case.impl in PEERS:
        return Workload(_PEER_WORKLOADS[case.impl](case, np.dtype(case.dtype)), case)
    return Workload(_WORKLOADS[case.kernel](case, np.dtype(case.dtype)), case)


SETTLE_SECONDS = 0.2
"""Idle time before each interleaved pair of runs: OpenBLAS's worker threads spin for about
0.1 s after a call, and would otherwise take the cores from whichever implementation runs next.

Idle time has a cost of its own: the cores' caches are flushed or taken by other processes
(on the 2-core development VM ``X.sum()`` over 34 MB took 1.3 ms back to back, 4.5 ms after
0.2 s idle). So each round times two calls: the first, after the idle time, and the second,
at once after it, as the epochs of a training run follow each other. The second is the
headline (``stats``); the first is kept as ``extra_info["after_idle_median"]``."""


def seconds(function, settle=0.0):
    """Wall time of one call of ``function()``, timed after ``settle`` seconds of idle time."""
    time.sleep(settle)
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# --- threads -----------------------------------------------------------------------------

def thread_counts():
    """The thread counts benchmarked by default: 1 and all cores (Numba's maximum)."""
    return tuple(sorted({1, numba.config.NUMBA_NUM_THREADS}))


@contextlib.contextmanager
def thread_limit(n):
    """Run the block with ``fastmlp.set_num_threads(n)`` (Numba and BLAS); restore both after."""
    numba_threads = numba.get_num_threads()
    with threadpool_limits(limits=None):  # puts every BLAS pool back as it was on exit
        set_num_threads(n)
        try:
            yield
        finally:
            numba.set_num_threads(numba_threads)


# --- machine fingerprint -----------------------------------------------------------------

@functools.cache
def _cpuinfo():
    """py-cpuinfo's description of the CPU (a pytest-benchmark dependency), or {} without it."""
    try:
        import cpuinfo
    except ImportError:
        return {}
    return cpuinfo.get_cpu_info() or {}


def _proc_cpuinfo(field):
    """The first ``field`` of /proc/cpuinfo, or None."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == field:
                return value.strip()
    return None


def cpu_description():
    """Brand, vendor, family/model/stepping and core counts of this machine's CPU."""
    info = _cpuinfo()
    return {
        "brand": (info.get("brand_raw") or _proc_cpuinfo("model name") or platform.processor()
                  or platform.machine()),
        "vendor": info.get("vendor_id_raw") or _proc_cpuinfo("vendor_id"),
        "family": info.get("family"),
        "model": info.get("model"),
        "stepping": info.get("stepping"),
        "hz_advertised": info.get("hz_advertised_friendly"),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }


def cache_sizes():
    """Per-core cache sizes (``{"L1d": "48K", ...}``) from sysfs, else from py-cpuinfo."""
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        with contextlib.suppress(OSError):
            kind = (index / "type").read_text().strip()
            name = f"L{(index / 'level').read_text().strip()}"
            name += {"Data": "d", "Instruction": "i"}.get(kind, "")
            caches[name] = (index / "size").read_text().strip()
    if not caches:
        info = _cpuinfo()
        caches = {name: info[key] for name, key in (("L1d", "l1_data_cache_size"),
                                                    ("L1i", "l1_instruction_cache_size"),
                                                    ("L2", "l2_cache_size"),
                                                    ("L3", "l3_cache_size")) if key in info}
    return caches


def cpu_slug():
    """A file-name-safe name of this machine: the CPU brand, the LLVM CPU name, the core count.

    For example ``intel-xeon-rocketlake-2c`` for an ``Intel(R) Xeon(R) Processor``
    that LLVM takes for a Rocket Lake (the LLVM name tells apart CPUs that
    virtual machines give the same generic brand).
    """
    brand = re.sub(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$", " ",
                   cpu_description()["brand"].lower())
    parts = re.findall(r"[a-z0-9]+", brand)
    host = llvm.get_host_cpu_name()
    if host not in parts and host != "generic":
        parts.append(host)
    return "-".join([*parts, f"{os.cpu_count()}c"])


def peak_gflops(dtype, threads, size=1000, repeats=10):
    """Measured peak: the best GFLOP/s of ``np.dot`` on ``size`` x ``size`` matrices.

    Parameters
    ----------
    dtype : {"float64", "float32"}
    threads : int
        BLAS (and Numba) threads during the probe.
    size : int, default 1000
    repeats : int, default 10
        Timed products; the best one counts (after one untimed warm-up).

    Returns
    -------
    float
    """
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    out = np.empty_like(a)
    product = functools.partial(np.dot, a, b, out)
    with thread_limit(threads):
        product()
        best = min(seconds(product) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


@functools.cache
def fingerprint(threads=None, probe_size=1000):
    """What the timings depend on: CPU, caches, compiler target, libraries, threads, peak GFLOP/s.

    Cached: the peak probe (about a second) runs once per process and argument set.

    Parameters
    ----------
    threads : tuple of int, optional
        Thread counts to probe the peak at (default :func:`thread_counts`).
    probe_size : int, default 1000
        Matrix size of the peak probe (see :func:`peak_gflops`).

    Returns
    -------
    dict
        ``cpu``, ``caches``, ``llvm`` (the CPU name and features Numba compiles
        for), ``versions``, ``blas`` (threadpoolctl's view of each BLAS loaded),
        ``threads``, ``env`` (BLAS and thread variables), ``peak_gflops``
        (``{dtype: {str(threads): GFLOP/s}}``) and ``slug`` (:func:`cpu_slug`).
    """
    threads = tuple(threads or thread_counts())
    features = llvm.get_host_cpu_features()
    blas_keys = ("user_api", "internal_api", "prefix", "version", "architecture",
                 "threading_layer", "num_threads", "filepath")
    return {
        "cpu": cpu_description(),
        "caches": cache_sizes(),
        "llvm": {"host_cpu": llvm.get_host_cpu_name(),
                 "host_features": ",".join(sorted(name for name, on in features.items() if on)),
                 "numba_cpu_name": numba.config.CPU_NAME or "host",
                 "numba_cpu_features": numba.config.CPU_FEATURES or "host"},
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "numba": numba.__version__, "llvmlite": llvmlite.__version__,
                     "threadpoolctl": threadpoolctl.__version__, "fastmlp": __version__},
        "blas": [{key: lib.get(key) for key in blas_keys} for lib in threadpool_info()
                 if lib["user_api"] == "blas"],
        "threads": {"numba_max": numba.config.NUMBA_NUM_THREADS,
                    "numba_current": numba.get_num_threads(), "benchmarked": list(threads)},
        "env": {name: os.environ.get(name) for name in (*BLAS_ENV, *THREAD_ENV)},
        "peak_gflops": {dtype: {str(n): peak_gflops(dtype, n, probe_size) for n in threads}
                        for dtype in ("float64", "float32")},
        "slug": cpu_slug(),
    }


def machine_info(threads=None):
    """pytest-benchmark's ``machine_info`` plus ``fastmlp``: :func:`fingerprint`."""
    return {
        "node": platform.node(), "processor": platform.processor(), "machine": platform.machine(),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(), "release": platform.release(),
        "system": platform.system(), "cpu": _cpuinfo(),
        "fastmlp": fingerprint(tuple(threads) if threads else None),
    }


def commit_info(root=Path(__file__).resolve().parents[1]):
    """The checkout's commit read from ``.git`` (no git command runs), or ``unversioned``."""
    git = root / ".git"
    commit = "unversioned"
    with contextlib.suppress(OSError):
        head = (git / "HEAD").read_text().strip()
        ref = head.removeprefix("ref: ")
        commit = head if ref == head else _git_ref(git, ref)
    return {"id": commit, "project": "fastmlp", "version": __version__}


def _git_ref(git, ref):
    path = git / ref
    if path.is_file():
        return path.read_text().strip()
    for line in (git / "packed-refs").read_text().splitlines():
        if line.endswith(f" {ref}"):
            return line.split()[0]
    return "unknown"


# --- results -----------------------------------------------------------------------------

def stats(times):
    """pytest-benchmark's ``stats`` of per-call times (seconds), one call per round."""
    data = sorted(times)
    q1, _, q3 = statistics.quantiles(data, n=4) if len(data) > 1 else (data[0],) * 3
    return {"min": data[0], "max": data[-1], "mean": statistics.fmean(data),
            "stddev": statistics.stdev(data) if len(data) > 1 else 0.0,
            "rounds": len(data), "median": statistics.median(data), "iqr": q3 - q1,
            "q1": q1, "q3": q3, "ops": len(data) / sum(data), "total": sum(data),
            "data": list(times), "iterations": 1}


def _impl(bench):
    return (bench.get("extra_info") or {}).get("impl") or (bench.get("params") or {}).get("impl")


def _float64_group(group):
    """The group of the reference a benchmark is compared with: its own, with dtype float64."""
    parts = group.split("|")
    return "|".join(parts[:2] + ["float64"] + parts[3:]) if len(parts) == 4 else group


def speedups(benchmarks):
    """``{group: speedup}`` of each fastmlp benchmark over its float64 reference twin.

    Takes ``extra_info["speedup"]`` where present, else the ratio of the medians
    of the reference in the benchmark's float64 group and of the benchmark.
    """
    reference_medians = {b.get("group"): b["stats"]["median"] for b in benchmarks
                         if _impl(b) == "reference"}
    result = {}
    for bench in benchmarks:
        if _impl(bench) != "fastmlp" or not bench.get("group"):
            continue
        speedup = (bench.get("extra_info") or {}).get("speedup")
        if speedup is None and _float64_group(bench["group"]) in reference_medians:
            speedup = reference_medians[_float64_group(bench["group"])] / bench["stats"]["median"]
        if speedup is not None:
            result[bench["group"]] = speedup
    return result


def annotate(benchmarks, machine):
    """Add ``gflops``, ``peak_fraction`` and (fastmlp only) ``speedup`` to each ``extra_info``.

    Parameters
    ----------
    benchmarks : list of dict
        pytest-benchmark's ``benchmarks`` entries of this suite (others are left alone).
    machine : dict
        ``machine_info`` with this module's ``fastmlp`` fingerprint (for the peaks).
    """
    peaks = machine["fastmlp"]["peak_gflops"]
    ours = [b for b in benchmarks if "flops" in (b.get("extra_info") or {})]
    found = speedups(ours)
    after_idle = {b["group"]: b["extra_info"]["after_idle_median"] for b in ours
                  if _impl(b) == "reference" and "after_idle_median" in b["extra_info"]}
    for bench in ours:
        info = bench["extra_info"]
        if info["impl"] == "fastmlp" and bench["group"] in found:
            info["speedup"] = found[bench["group"]]
        reference_after_idle = after_idle.get(_float64_group(bench["group"]))
        if info["impl"] == "fastmlp" and reference_after_idle and "after_idle_median" in info:
            info["speedup_after_idle"] = reference_after_idle / info["after_idle_median"]
        if info["flops"]:
            info["gflops"] = info["flops"] / bench["stats"]["median"] / 1e9
            peak = peaks.get(info["dtype"], {}).get(str(info["threads"]))
            if peak:
                info["peak_fraction"] = info["gflops"] / peak


def summary_rows(benchmarks):
    """The rows of :data:`SUMMARY_HEADERS` for annotated results, one per fastmlp benchmark."""
    medians = {(b["group"], _impl(b)): b["stats"]["median"] for b in benchmarks}
    rows = []
    for bench in benchmarks:
        info = bench["extra_info"]
        if info["impl"] != "fastmlp":
            continue
        ref = medians.get((_float64_group(bench["group"]), "reference"))
        shape = ",".join(f"{axis}={info[axis]}" for axis in SHAPE_AXES if axis in info)
        rows.append([info["kernel"], shape, info["dtype"], info["threads"],
                     _number(ref and ref * 1e3, ".3g"),
                     _number(bench["stats"]["median"] * 1e3, ".3g"),
                     _number(info.get("speedup"), ".2f", "x"),
                     _number(info.get("speedup_after_idle"), ".2f", "x"),
                     _number(info.get("gflops"), ".1f"),
                     _number(info.get("peak_fraction") and 100 * info["peak_fraction"], ".0f",
                             "%")])
    return rows


SUMMARY_HEADERS = ("kernel", "shape", "dtype", "threads", "reference ms", "fastmlp ms", "speedup",
                   "after idle", "GFLOP/s", "% of peak")
PEER_HEADERS = ("peer", "shape", "dtype", "threads", "peer ms", "fastmlp ms", "fastmlp faster by")


def peer_rows(benchmarks):
    """The rows of :data:`PEER_HEADERS`: each peer against fastmlp in its group (same dtype, threads)."""
    medians = {(b["group"], _impl(b)): b["stats"]["median"] for b in benchmarks}
    rows = []
    for bench in benchmarks:
        info = bench["extra_info"]
        if info["impl"] in PEERS:
            ours = medians.get((bench["group"], "fastmlp"))
            shape = ",".join(f"{axis}={info[axis]}" for axis in SHAPE_AXES if axis in info)
            rows.append([info["impl"], shape, info["dtype"], info["threads"],
                         _number(bench["stats"]["median"] * 1e3, ".3g"),
                         _number(ours and ours * 1e3, ".3g"),
                         _number(ours and bench["stats"]["median"] / ours, ".2f", "x")])
    return rows


def _number(value, spec, suffix=""):
    return "-" if value is None else f"{value:{spec}}{suffix}"


def format_table(headers, rows):
    """A plain-text table; columns of numbers (``-`` for none) are right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    columns = list(zip(*cells)) or [()] * len(headers)
    numeric = [bool(column) and all(re.match(r"^-$|^-?[\d.]", cell) for cell in column)
               for column in columns]
    widths = [max(map(len, (header, *column))) for header, column in zip(headers, columns)]

    def line(row):
        return "  ".join(cell.rjust(w) if right else cell.ljust(w)
                         for cell, w, right in zip(row, widths, numeric)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, cells)])


# --- fastmlp bench -----------------------------------------------------------------------

def headline_cases(threads, quick=False, max_rows=None):
    """The cases of ``fastmlp bench``, each shape and thread count's variants together.

    Returns
    -------
    list of tuple of Case
        One tuple per (shape, thread count): the :data:`VARIANTS` to interleave.
    """
    caps = [cap for cap in (QUICK_ROWS if quick else None, max_rows) if cap]
    batches = []
    for kernel, shape in HEADLINE:
        if caps and "rows" in shape:
            shape = {**shape, "rows": min(shape["rows"], *caps)}
        peers = [impl for impl in PEERS if not peer_missing(impl)] \
            if kernel == "epoch" and shape == PEER_SHAPE else []
        for n in threads:
            variants = [*VARIANTS, *((impl, dtype) for impl in peers
                                     for dtype in ("float64", "float32"))]
            batches.append(tuple(Case(kernel, impl, dtype, n, **shape) for impl, dtype in variants))
    return batches


def run_interleaved(cases, rounds):
    """Time ``cases`` (same shape and threads) round by round, alternating their order.

    Returns
    -------
    list of dict
        pytest-benchmark ``benchmarks`` entries, one per case.
    """
    with thread_limit(cases[0].threads):
        workloads = [build_workload(case) for case in cases]
        for workload in workloads:
            workload.run()  # JIT compilation and first touch, untimed
        times = {workload.case: ([], []) for workload in workloads}
        for r in range(rounds):
            for workload in workloads[::-1] if r % 2 else workloads:
                after_idle, steady = times[workload.case]
                after_idle.append(seconds(workload.run, SETTLE_SECONDS))
                steady.append(seconds(workload.run))
    return [_benchmark_entry(case, *times[case]) for case in cases]


def _benchmark_entry(case, after_idle, steady):
    name = f"bench_{case.kernel}[{case.id}]"
    extra_info = {**case.extra_info, "after_idle_median": statistics.median(after_idle)}
    return {"group": case.group, "name": name, "fullname": f"fastmlp.benchmark::{name}",
            "params": {key: value for key, value in asdict(case).items() if value is not None},
            "param": case.id, "extra_info": extra_info,
            "options": {"timer": "perf_counter", "interleaved": True,
                        "settle_seconds": SETTLE_SECONDS}, "stats": stats(steady)}


def run_bench(args):
    """``fastmlp bench``: time the headline cases, print the table, save the JSON. Returns 0."""
    for name, effect in BLAS_ENV.items():
        if os.environ.get(name):
            print(f"warning: {name}={os.environ[name]} {effect}, which can slow the reference; "
                  f"for a fair comparison unset it for this command only: "
                  f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE fastmlp bench ...",
                  file=sys.stderr)
    threads = tuple(sorted(set(args.threads or thread_counts())))
    rounds = args.rounds or (3 if args.quick else 5)
    benchmarks = []
    for cases in headline_cases(threads, args.quick, args.rows):
        print(f"{cases[0].kernel} {cases[0].shape_label} t{cases[0].threads} ...", file=sys.stderr)
        benchmarks += run_interleaved(cases, rounds)
    machine = machine_info(threads)
    annotate(benchmarks, machine)
    print(format_table(SUMMARY_HEADERS, summary_rows(benchmarks)))
    if any(_impl(b) in PEERS for b in benchmarks):
        print("\nThe chapter epoch in other libraries (same job; scikit-learn with its own log-loss):")
        print(format_table(PEER_HEADERS, peer_rows(benchmarks)))
    for impl in PEERS:
        if peer_missing(impl):
            print(f"peer {impl} skipped: {peer_missing(impl)}")
    stamp = datetime.datetime.now(datetime.timezone.utc)
    output = Path(args.output or f"bench-{machine['fastmlp']['slug']}-{stamp:%Y%m%d-%H%M%S}.json")
    output.write_text(json.dumps({"machine_info": machine, "commit_info": commit_info(),
                                  "benchmarks": benchmarks, "datetime": stamp.isoformat(),
                                  "version": __version__}, indent=2))
    print(f"saved {output}")
    return 0


# --- fastmlp compare ---------------------------------------------------------------------

def load_results(path):
    """Read a result file of ``pytest --benchmark-json``/``--benchmark-save`` or ``fastmlp bench``.

    Raises
    ------
    BenchmarkFileError
        If the file cannot be read, is not JSON, or lacks a ``benchmarks`` list
        or a ``machine_info`` object.
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BenchmarkFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkFileError(f"{path} is not a JSON file ({exc})") from exc
    if not (isinstance(data, dict) and isinstance(data.get("machine_info"), dict)
            and isinstance(data.get("benchmarks"), list)
            and all(isinstance(b, dict) and isinstance(b.get("group"), (str, type(None)))
                    and isinstance((b.get("stats") or {}).get("median"), (int, float))
                    for b in data["benchmarks"])):
        raise BenchmarkFileError(f"{path} is not a benchmark result: it needs a 'machine_info' "
                                 f"object and a 'benchmarks' list of results with stats (as "
                                 f"pytest --benchmark-json and fastmlp bench write)")
    return data


def _cpu_name(machine):
    """The machine's slug (see :func:`cpu_slug`), else its CPU brand, else ``unknown CPU``."""
    brand = (machine.get("cpu") or {}).get("brand_raw") or machine.get("processor")
    return (machine.get("fastmlp") or {}).get("slug") or brand or "unknown CPU"


def file_labels(paths, results):
    """A label per file: the CPU, then its threads and dtypes, then its name, until they differ."""
    labels = [_cpu_name(data["machine_info"]) for data in results]
    if len(set(labels)) < len(labels):
        labels = [f"{label} [t{','.join(map(str, sorted(set(_field(data, 'threads')))))} "
                  f"{','.join(sorted(set(_field(data, 'dtype'))))}]"
                  for label, data in zip(labels, results)]
    if len(set(labels)) < len(labels):
        labels = [f"{label} {Path(path).name}" for label, path in zip(labels, paths)]
    return labels


def _field(data, key):
    return [b["extra_info"][key] for b in data["benchmarks"]
            if _impl(b) == "fastmlp" and key in (b.get("extra_info") or {})]


def _group_order(group):
    kernel, shape, dtype, threads = (group.split("|") + ["", "", ""])[:4]
    numbers = tuple(int(n) for n in re.findall(r"\d+", shape))
    return (KERNEL_ORDER.get(kernel, len(KERNEL_ORDER)), kernel, numbers, dtype,
            int(threads.lstrip("t") or 0))


def compare_table(paths):
    """``(labels, groups, table)``: per-file speedups, ``table[group][i]`` for file ``i`` (or None).

    Raises
    ------
    BenchmarkFileError
        If a file is not a benchmark result or holds no reference/fastmlp pair.
    """
    results = [load_results(path) for path in paths]
    per_file = []
    for path, data in zip(paths, results):
        found = speedups(data["benchmarks"])
        if not found:
            raise BenchmarkFileError(f"{path} holds no fastmlp/reference pair to compare")
        per_file.append(found)
    groups = sorted(set().union(*per_file), key=_group_order)
    table = {group: [found.get(group) for found in per_file] for group in groups}
    return file_labels(paths, results), groups, table


def plot_speedups(labels, groups, table, path):
    """Save a bar chart of the speedups to ``path``: one panel per kernel, one bar per file.

    Bars start at 1x (log scale): up where fastmlp is faster, down where it is slower.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    kernels = list(dict.fromkeys(group.split("|")[0] for group in groups))
    most = max(sum(group.split("|")[0] == kernel for group in groups) for kernel in kernels)
    figure = Figure(figsize=(max(6.0, 1.0 + 0.3 * most * len(labels)), 1.0 + 2.6 * len(kernels)),
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(kernels), 1, squeeze=False)[:, 0]
    width = 0.8 / len(labels)
    times = FuncFormatter(lambda value, _: f"{value:g}x")
    for ax, kernel in zip(axes, kernels):
        rows = [group for group in groups if group.split("|")[0] == kernel]
        for i, label in enumerate(labels):
            values = [table[group][i] or math.nan for group in rows]
            ax.bar([x + (i - (len(labels) - 1) / 2) * width for x in range(len(rows))],
                   [value - 1 for value in values], width, bottom=1, label=label)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(times)
        ax.yaxis.set_minor_formatter(times)
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_title(kernel)
        ax.set_ylabel("speedup")
        ax.set_xticks(range(len(rows)), [group.split("|", 1)[1] for group in rows],
                      rotation=30, ha="right", fontsize=7)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center",
                  ncols=min(2, len(labels)), fontsize=8)
    figure.savefig(path, dpi=120)


def run_compare(args):
    """``fastmlp compare``: print (and plot) the speedups of each file; 0, or 2 on a bad file."""
    try:
        labels, groups, table = compare_table(args.files)
    except BenchmarkFileError as exc:
        print(f"fastmlp compare: error: {exc}", file=sys.stderr)
        return 2
    rows = [[group, *(_number(value, ".2f", "x") for value in table[group])] for group in groups]
    print("speedup of fastmlp over the reference (float64), median times")
    print(format_table(("kernel|shape|dtype|threads", *labels), rows))
    if args.plot:
        plot_speedups(labels, groups, table, args.plot)
        print(f"saved {args.plot}")
    return 0


# --- command line ------------------------------------------------------------------------

def add_commands(subparsers):
    """Register ``bench`` and ``compare`` on an ``argparse`` subparsers object.

    Each sets ``func``: ``args.func(args)`` runs the command and returns its exit code.
    """
    bench = subparsers.add_parser(
        "bench", help="time fastmlp against the chapter's NumPy code on this machine",
        description="Time the headline cases (the chapter epoch: 55,000 rows at batch 100, "
                    "hidden 50; epochs at batch 10 and 1 on 5,500 rows; an SGD step at batch "
                    "1000, hidden 1024; the fused evaluation of 55,000 rows) for the reference "
                    "(float64) and fastmlp (float64, float32), interleaved round by round. "
                    "Prints median times and speedups; saves pytest-benchmark JSON.")
    bench.add_argument("--quick", action="store_true",
                       help=f"at most {QUICK_ROWS:,} rows per case and 3 rounds")
    bench.add_argument("--threads", type=int_in(1, numba.config.NUMBA_NUM_THREADS), nargs="+",
                       metavar="N", help="thread counts (default: 1 and all cores)")
    bench.add_argument("--output", metavar="JSON",
                       help="result file (default: bench-<cpu-slug>-<UTC time>.json here)")
    bench.add_argument("--rounds", type=int_in(1), metavar="R",
                       help="timed rounds per case (default 5; 3 with --quick)")
    # tests: tiny data (100 rows: one minibatch of the evaluation and of the chapter's training)
    bench.add_argument("--rows", type=int_in(EVAL_MINIBATCH), help=argparse.SUPPRESS)
    bench.set_defaults(func=run_bench)

    compare = subparsers.add_parser(
        "compare", help="compare the speedups of saved benchmark results (one per machine)",
        description="Table the speedup of fastmlp over the reference for each "
                    "kernel|shape|dtype|threads, one column per file (files from fastmlp "
                    "bench or pytest bench --benchmark-json/--benchmark-save).")
    compare.add_argument("files", nargs="+", metavar="JSON")
    compare.add_argument("--plot", metavar="PNG", help="also save a bar chart of the speedups")
    compare.set_defaults(func=run_compare)


def main(argv=None):
    """``python -m fastmlp.benchmark [--slug | bench ... | compare ...]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fastmlp.benchmark",
                                     description="fastmlp's benchmark commands")
    parser.add_argument("--slug", action="store_true",
                        help="print this machine's CPU slug (for --benchmark-save) and exit")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if args.slug:
        print(cpu_slug())
        return 0
    if args.command is None:
        parser.error("give --slug or a command")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
