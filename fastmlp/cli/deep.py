"""``fastmlp train`` beyond the chapter's network: its options, their checks, its backends.

When the options leave the chapter's configuration (:func:`is_chapter`: more
than one hidden layer, tanh or identity, log-loss, Adam, momentum, an L2
penalty), ``fastmlp train`` trains a :class:`fastmlp.network.Network` instead
of ``NeuralNetMLP``, through the same loop (:func:`fastmlp.training.train_epochs`:
a shuffle per epoch from ``np.random``, the chapter's minibatches, the last
incomplete one dropped, and its per-epoch evaluation, here of the whole set at
once, drawing nothing), and saves it with
:func:`fastmlp.persistence.save_network`. Its initial weights are scikit-learn's
Glorot-uniform draws from ``np.random.RandomState(123)`` (the chapter model's
seed). ``--backend numpy`` trains the same network with its NumPy twin,
:mod:`fastmlp.reference_deep`.
"""
import numpy as np

from .. import model, reference_deep, training
from ..network import Network, Trainer, make_optimizer
from ..persistence import save_network
from .arguments import EXIT_USAGE, CLIError, float_in, positive_float
from .backends import CHAPTER_ACTIVATIONS, Backend

INIT_SEED = 123
"""The seed of the network's initial weights (the chapter model's ``random_seed``)."""
ADAM_BETAS = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
"""Adam's settings when not given (scikit-learn's ``beta_1``, ``beta_2``, ``epsilon``)."""
LOSS_NAMES = {"mse": "MSE", "log_loss": "log-loss"}
"""The loss as the epoch lines name it (``Train MSE: ...``, ``Train log-loss: ...``)."""


def add_options(p):
    """Register the general network's options of ``fastmlp train`` on the parser `p`."""
    p.add_argument("--loss", choices=("mse", "log_loss"), default="mse",
                   help="mse: the chapter's sigmoid outputs and mean squared error; log_loss: "
                        "softmax outputs and cross-entropy (scikit-learn's)")
    p.add_argument("--solver", choices=("sgd", "adam"), default="sgd",
                   help="sgd: minibatch SGD (the chapter's, with --momentum 0); adam: Adam "
                        "(scikit-learn's names and updates)")
    p.add_argument("--momentum", type=float_in(0, 1), default=0.0, metavar="M",
                   help="SGD momentum in [0, 1] (0: the chapter's plain SGD)")
    p.add_argument("--nesterov", action="store_true",
                   help="Nesterov's momentum (needs --momentum > 0)")
    p.add_argument("--alpha", type=float_in(0), default=0.0, metavar="A",
                   help="L2 penalty, scikit-learn's alpha / 2 * sum ||W||^2 / batch size")
    for name, meaning in (("beta1", "first"), ("beta2", "second")):
        p.add_argument(f"--{name}", type=float_in(0, 1, high_open=True), metavar="B",
                       help=f"Adam's decay rate of the {meaning}-moment estimates, in [0, 1) "
                            f"(default: {ADAM_BETAS[name]}; --solver adam only)")
    p.add_argument("--epsilon", type=positive_float, metavar="E",
                   help=f"Adam's epsilon (default: {ADAM_BETAS['epsilon']:g}; --solver adam "
                        f"only)")


def is_chapter(args):
    """Whether the options of `args` are the chapter's network and optimiser (its fast path)."""
    return (len(args.hidden) == 1 and args.activation in CHAPTER_ACTIVATIONS
            and args.loss == "mse" and args.solver == "sgd" and args.momentum == 0
            and args.alpha == 0)


def check_options(args):
    """A usage error (:class:`CLIError`, exit status 2) for settings that do not go together."""
    adam_only = [f"--{name}" for name in ADAM_BETAS if getattr(args, name) is not None]
    if args.solver != "adam" and adam_only:
        raise CLIError(f"{', '.join(adam_only)} {'is' if len(adam_only) == 1 else 'are'} "
                       f"Adam's: add --solver adam", EXIT_USAGE)
    if args.solver == "adam" and (args.momentum != 0 or args.nesterov):
        raise CLIError("--momentum and --nesterov are for --solver sgd (Adam's momentum is "
                       "--beta1)", EXIT_USAGE)
    if args.nesterov and args.momentum == 0:
        raise CLIError("--nesterov needs --momentum > 0", EXIT_USAGE)


def describe(net, args):
    """The line a general network's run prints where the chapter's prints "Model initialization"."""
    if args.solver == "adam":
        solver = "Adam"
    elif args.momentum:
        solver = f"SGD with {'Nesterov ' if args.nesterov else ''}momentum {args.momentum:g}"
    else:
        solver = "SGD"
    alpha = f", L2 alpha {args.alpha:g}" if args.alpha else ""
    return (f"Network: {'-'.join(str(u) for u in net.units)}, {net.activation} hidden "
            f"layer{'s' if len(net.units) > 3 else ''}, {net.loss}{alpha}, {solver}, "
            f"learning rate {args.lr:g}")


def evaluate_outputs(out, y, loss):
    """``(loss, accuracy)`` of the output activations `out` (n, n_outputs) against labels `y`.

    The loss is the network's own (MSE or log-loss, without the L2 term), over all `y`.
    """
    t = reference_deep.targets(y, out.shape[1])
    value = reference_deep.loss_value([], out, t, 0.0, loss)
    predicted = (out[:, 0] > 0.5) if out.shape[1] == 1 else np.argmax(out, axis=1)
    return float(value), float(np.mean(predicted == y))


def evaluate(net, X, y, num_labels=None):
    """``(loss, accuracy)`` of `net` on `X`, `y` (see :func:`evaluate_outputs`)."""
    return evaluate_outputs(net.forward_output(X), np.asarray(y), net.loss)


def _num_steps(num_examples, minibatch_size):
    """The chapter's steps an epoch: full minibatches only (a ValueError if there are none)."""
    if num_examples < minibatch_size:
        raise ValueError(f"X_train has {num_examples} examples, fewer than one minibatch of "
                         f"{minibatch_size}: the chapter's loop would visit none")
    return num_examples // minibatch_size


class NetworkTrainer:
    """:class:`fastmlp.model.EpochTrainer`'s interface over a :class:`fastmlp.network.Network`.

    The steps are the chapter's: ``num_examples // minibatch_size`` full
    minibatches of ``order`` an epoch, run by :class:`fastmlp.network.Trainer`.
    The optimiser's state (`settings`: :func:`fastmlp.network.make_optimizer`'s
    arguments but the learning rate) is made here and kept across epochs.
    """

    def __init__(self, network, X, y, learning_rate, minibatch_size, settings):
        self.num_steps = _num_steps(len(X), minibatch_size)
        self.network, self.minibatch_size, self.num_examples = network, minibatch_size, len(X)
        self.trainer = Trainer(network, X, y, minibatch_size,
                               make_optimizer(network, learning_rate_init=learning_rate,
                                              **settings))
        self.X, self.y = self.trainer.X, self.trainer.y

    def check_data(self, X, y, x_name="X", y_name="y"):
        """``(X, y)`` checked and converted for the network."""
        return self.network.check_data(X, y)

    def run(self, order, first_step=0, last_step=None):
        """Steps ``first_step:last_step`` (default: all) over the minibatches of ``order``."""
        last_step = self.num_steps if last_step is None else last_step
        b = self.minibatch_size
        if last_step > first_step:
            self.trainer.run(order[first_step * b:last_step * b])

    def evaluate(self, X, y):
        """:func:`evaluate`."""
        return evaluate(self.network, X, y)


class NetworkReferenceTrainer:
    """:class:`NetworkTrainer`'s steps and evaluation in the NumPy twin (float64).

    :mod:`fastmlp.reference_deep`'s gradients and optimiser, on the network's
    ``coefs`` and ``intercepts`` (updated in place).
    """

    def __init__(self, network, X, y, learning_rate, minibatch_size, settings):
        self.num_steps = _num_steps(len(X), minibatch_size)
        self.network, self.minibatch_size, self.num_examples = network, minibatch_size, len(X)
        self.X, self.y = np.asarray(X), np.asarray(y)
        self.optimizer = reference_deep.Optimizer(
            network.coefs + network.intercepts, settings["solver"], learning_rate,
            settings["momentum"], settings["nesterovs_momentum"], settings["beta_1"],
            settings["beta_2"], settings["epsilon"])

    def check_data(self, X, y, x_name="X", y_name="y"):
        """``(X, y)`` unchanged, as the chapter's reference takes them."""
        return X, y

    def run(self, order, first_step=0, last_step=None):
        """Steps ``first_step:last_step`` (default: all) over the minibatches of ``order``."""
        net, b = self.network, self.minibatch_size
        for step in range(first_step, self.num_steps if last_step is None else last_step):
            idx = order[step * b:(step + 1) * b]
            _, coef_grads, intercept_grads = reference_deep.gradients(
                net.coefs, net.intercepts, self.X[idx], self.y[idx], reference_activation(net),
                net.loss, net.alpha)
            self.optimizer.update(net.coefs + net.intercepts, coef_grads + intercept_grads)

    def evaluate(self, X, y):
        """:func:`reference_evaluate`."""
        return reference_evaluate(self.network, X, y)


def reference_activation(net):
    """The network's hidden activation as :mod:`fastmlp.reference_deep` names it."""
    return "logistic" if net.activation == "sigmoid" else net.activation


def reference_evaluate(net, X, y, num_labels=None):
    """:func:`evaluate` with the NumPy twin's forward pass."""
    out = reference_deep.forward(net.coefs, net.intercepts, X, reference_activation(net),
                                 net.loss)[-1]
    return evaluate_outputs(out, np.asarray(y), net.loss)


class Forward:
    """A network as the figures call it: ``forward(X) -> (None, outputs)``, as the chapter's."""

    def __init__(self, network):
        self.network = network

    def forward(self, X):
        return None, self.network.forward_output(X)


def backend(name, args):
    """The general network's backend ``name`` ("numba" or "numpy") for the options `args`."""
    settings = dict(solver=args.solver, momentum=args.momentum,
                    nesterovs_momentum=args.nesterov,
                    beta_1=ADAM_BETAS["beta1"] if args.beta1 is None else args.beta1,
                    beta_2=ADAM_BETAS["beta2"] if args.beta2 is None else args.beta2,
                    epsilon=ADAM_BETAS["epsilon"] if args.epsilon is None else args.epsilon)

    def make_model(num_features, hidden, num_classes, activation, dtype):
        net = Network([num_features, *hidden, num_classes], activation, args.loss, args.alpha,
                      dtype)
        net.initialize(np.random.RandomState(INIT_SEED))
        print(describe(net, args))
        return net

    numba = name == "numba"
    cls = NetworkTrainer if numba else NetworkReferenceTrainer
    return Backend(
        name, "fastmlp's network kernels" if numba else "the network's NumPy twin",
        make_model, lambda net, X, y, lr, size: cls(net, X, y, lr, size, settings),
        model.permutation if numba else training.reference_permutation,
        evaluate if numba else reference_evaluate,
        loss_name=LOSS_NAMES[args.loss], save=save_network, plot_model=Forward)
