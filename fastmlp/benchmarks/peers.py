"""Other libraries on the chapter epoch: scikit-learn, PyTorch eager, JAX in a worker process."""
import contextlib
import importlib.util
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import weakref

import numpy as np

from .cases import LEARNING_RATE, NUM_CLASSES, NUM_FEATURES, dataset, validation_rows

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
    X, y = dataset(case.rows, dtype, 0)
    X_valid, y_valid = dataset(validation_rows(case.rows), dtype, 1)
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
    X, y = (torch.from_numpy(a) for a in dataset(case.rows, dtype, 0))
    X_valid, y_valid = (torch.from_numpy(a) for a in dataset(validation_rows(case.rows), dtype, 1))
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
client from running a matrix product on every core (see docs/bench.md); the worker's CPU
affinity (``threads`` CPUs) is what holds it to its thread count."""
JAX_WORKER_TIMEOUT = 600.0
"""Seconds the parent waits for the JAX worker (its start and compilation, or one epoch) before
it kills it and raises, so that a stuck worker cannot hang the benchmark."""
_JAX_WORKER_CODE = ("import sys; from fastmlp.benchmarks.peers import jax_worker_main; "
                    "jax_worker_main(sys.argv[1])")


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
    the minibatches' row indices (each step gathers its rows): faster than a
    Python loop over a jitted step, which pays a dispatch per step (measured
    in docs/bench.md). ``epoch()`` runs one epoch and blocks until its results
    are ready.
    """
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", dtype == np.float64)  # else float64 arrays become float32
    steps = rows // batch
    rng = np.random.RandomState(123)
    params = tuple(jnp.asarray(a, dtype) for a in (
        rng.normal(0.0, 0.1, (hidden, NUM_FEATURES)), np.zeros(hidden),
        rng.normal(0.0, 0.1, (NUM_CLASSES, hidden)), np.zeros(NUM_CLASSES)))
    X, y = (jnp.asarray(a) for a in dataset(rows, dtype, 0))
    X_valid, y_valid = (jnp.asarray(a) for a in dataset(validation_rows(rows), dtype, 1))
    dataset.cache_clear()  # the worker's NumPy copies
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


def jax_worker_main(spec):
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


PEER_WORKLOADS = {"sklearn": _sklearn_epoch_workload, "torch": _torch_epoch_workload,
                   "jax": _jax_epoch_workload}
