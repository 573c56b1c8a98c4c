"""The textbook chapter's pure-NumPy multi-layer perceptron, kept exactly as written.

This module is the specification every fast kernel in :mod:`fastmlp` is tested
against (Raschka et al., "Building a Multi-layer Artificial Neural Network from
Scratch"). The arithmetic, the order of the random draws and the printed lines
are the chapter's. Two additions, both spelled out by the chapter itself:

* ``activation="relu"`` on :class:`NeuralNetMLP` -- the chapter's exercise
  (hidden layer ``np.maximum(0, z_h)``, derivative ``np.where(a_h > 0, 1, 0)``);
* ``minibatch_size=100`` on :func:`train`, where the chapter reads a global.

One generalisation: :func:`train` evaluates with ``num_labels=model.num_classes``
(the chapter relies on the default of 10, which is the same for its model).
"""
import numpy as np

ACTIVATIONS = ("sigmoid", "relu")


def sigmoid(z):
    return 1. / (1. + np.exp(-z))


def relu(z):
    return np.maximum(0, z)


def int_to_onehot(y, num_labels):
    ary = np.zeros((y.shape[0], num_labels))  # [n_examples, n_classes]
    for i, val in enumerate(y):
        ary[i, val] = 1
    return ary


class InitializeModel:
    def __init__(self, random_seed=123):
        print("Model initialization")
        self.random_seed = random_seed
        # Set up a common random number generator
        self.rng = np.random.RandomState(random_seed)
        # Common attribute for all models
        self.operation = "Initialization"


class NeuralNetMLP(InitializeModel):
    """The chapter's MLP: one hidden layer (sigmoid or ReLU), sigmoid outputs, MSE loss."""

    def __init__(self, num_features, num_hidden, num_classes, random_seed=123,
                 activation="sigmoid"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        super().__init__(random_seed)
        self.num_classes = num_classes
        self.num_features = num_features
        self.num_hidden = num_hidden
        self.activation = activation
        self._initialize_weights()

    def _initialize_weights(self):
        """Initialize weights and biases with random values."""
        self.weight_h = self.rng.normal(
            loc=0.0, scale=0.1, size=(self.num_hidden, self.num_features))
        self.bias_h = np.zeros(self.num_hidden)
        self.weight_out = self.rng.normal(
            loc=0.0, scale=0.1, size=(self.num_classes, self.num_hidden))
        self.bias_out = np.zeros(self.num_classes)

    def reinitialize(self, random_seed=None):
        """Reinitialize the model weights and biases if you need to."""
        if random_seed is not None:
            self.rng = np.random.RandomState(random_seed)
        self._initialize_weights()

    def forward(self, x):
        # [n_examples, n_features] dot [n_hidden, n_features].T -> [n_examples, n_hidden]
        z_h = np.dot(x, self.weight_h.T) + self.bias_h
        a_h = relu(z_h) if self.activation == "relu" else sigmoid(z_h)
        # [n_examples, n_hidden] dot [n_classes, n_hidden].T -> [n_examples, n_classes]
        z_out = np.dot(a_h, self.weight_out.T) + self.bias_out
        a_out = sigmoid(z_out)
        return a_h, a_out

    def backward(self, x, a_h, a_out, y):
        y_onehot = int_to_onehot(y, self.num_classes)

        # Part 1: dLoss/dOutWeights = dLoss/dOutAct * dOutAct/dOutZ * dOutZ/dOutWeight
        # [n_examples, n_classes]
        d_loss__d_a_out = 2.*(a_out - y_onehot) / y.shape[0]
        d_a_out__d_z_out = a_out * (1. - a_out)  # sigmoid derivative
        delta_out = d_loss__d_a_out * d_a_out__d_z_out
        # [n_examples, n_hidden]
        d_z_out__dw_out = a_h
        # [n_classes, n_examples] dot [n_examples, n_hidden] -> [n_classes, n_hidden]
        d_loss__dw_out = np.dot(delta_out.T, d_z_out__dw_out)
        d_loss__db_out = np.sum(delta_out, axis=0)  # [n_classes]

        # Part 2: dLoss/dHiddenWeights
        #   = DeltaOut * dOutZ/dHiddenAct * dHiddenAct/dHiddenZ * dHiddenZ/dWeight
        d_z_out__a_h = self.weight_out  # [n_classes, n_hidden]
        d_loss__a_h = np.dot(delta_out, d_z_out__a_h)  # [n_examples, n_hidden]
        if self.activation == "relu":
            d_a_h__d_z_h = np.where(a_h > 0, 1, 0)
        else:
            d_a_h__d_z_h = a_h * (1. - a_h)  # sigmoid derivative
        d_z_h__d_w_h = x  # [n_examples, n_features]
        # [n_hidden, n_features]
        d_loss__d_w_h = np.dot((d_loss__a_h * d_a_h__d_z_h).T, d_z_h__d_w_h)
        d_loss__d_b_h = np.sum((d_loss__a_h * d_a_h__d_z_h), axis=0)

        return (d_loss__dw_out, d_loss__db_out,
                d_loss__d_w_h, d_loss__d_b_h)


class NeuralNetMLP_ReLU(NeuralNetMLP):
    """The chapter's exercise model: :class:`NeuralNetMLP` with a ReLU hidden layer."""

    def __init__(self, num_features, num_hidden, num_classes, random_seed=123):
        super().__init__(num_features, num_hidden, num_classes, random_seed, activation="relu")


def minibatch_generator(X, y, minibatch_size):
    indices = np.arange(X.shape[0])
    np.random.shuffle(indices)
    for start_idx in range(0, indices.shape[0] - minibatch_size
                           + 1, minibatch_size):
        batch_idx = indices[start_idx:start_idx + minibatch_size]
        yield X[batch_idx], y[batch_idx]


def mse_loss(targets, probas, num_labels=10):
    onehot_targets = int_to_onehot(targets, num_labels=num_labels)
    return np.mean((onehot_targets - probas)**2)


def accuracy(targets, predicted_labels):
    return np.mean(predicted_labels == targets)


def compute_mse_and_acc(nnet, X, y, num_labels=10, minibatch_size=100):
    mse, correct_pred, num_examples = 0., 0, 0
    minibatch_gen = minibatch_generator(X, y, minibatch_size)
    for i, (features, targets) in enumerate(minibatch_gen):
        _, probas = nnet.forward(features)
        predicted_labels = np.argmax(probas, axis=1)
        onehot_targets = int_to_onehot(targets, num_labels=num_labels)
        loss = np.mean((onehot_targets - probas)**2)
        correct_pred += (predicted_labels == targets).sum()
        num_examples += targets.shape[0]
        mse += loss
    mse = mse/(i+1)
    acc = correct_pred/num_examples
    return mse, acc


def train(model, X_train, y_train, X_valid, y_valid, num_epochs,
          learning_rate=0.1, minibatch_size=100):
    epoch_loss = []
    epoch_train_acc = []
    epoch_valid_acc = []

    for e in range(num_epochs):
        minibatch_gen = minibatch_generator(
            X_train, y_train, minibatch_size)
        for X_train_mini, y_train_mini in minibatch_gen:
            a_h, a_out = model.forward(X_train_mini)
            d_loss__d_w_out, d_loss__d_b_out, d_loss__d_w_h, d_loss__d_b_h = \
                model.backward(X_train_mini, a_h, a_out, y_train_mini)
            model.weight_h -= learning_rate * d_loss__d_w_h
            model.bias_h -= learning_rate * d_loss__d_b_h
            model.weight_out -= learning_rate * d_loss__d_w_out
            model.bias_out -= learning_rate * d_loss__d_b_out

        # Evaluation uses compute_mse_and_acc's own minibatch size (100), as in the chapter.
        num_labels = model.num_classes
        train_mse, train_acc = compute_mse_and_acc(model, X_train, y_train, num_labels)
        valid_mse, valid_acc = compute_mse_and_acc(model, X_valid, y_valid, num_labels)
        train_acc, valid_acc = train_acc*100, valid_acc*100
        epoch_train_acc.append(train_acc)
        epoch_valid_acc.append(valid_acc)
        epoch_loss.append(train_mse)
        print(f'Epoch: {e+1:03d}/{num_epochs:03d} '
              f'| Train MSE: {train_mse:.4f} '
              f'| Train Acc: {train_acc:.2f}% '
              f'| Valid Acc: {valid_acc:.2f}%')

    return epoch_loss, epoch_train_acc, epoch_valid_acc
