"""MLPClassifier as a Dask or joblib worker runs it: ``n_threads`` (the kernel threads of its
fits, set on the calling thread) and inputs as Dask delivers them (read-only, at any address)."""
import numpy as np
import pytest

from fastmlp import MLPClassifier, threads
from fastmlp.network import Network, Trainer


@pytest.fixture
def seen(monkeypatch):
    """The kernel thread count in effect at each training epoch and prediction."""
    counts = []

    def recording(method):
        def wrapper(self, *args, **kwargs):
            counts.append(threads.get_num_threads())
            return method(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(Trainer, "run", recording(Trainer.run))
    monkeypatch.setattr(Network, "forward_output", recording(Network.forward_output))
    return counts


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, size=(120, 8)), np.arange(120) % 3


@pytest.mark.skipif(threads.max_threads() < 2, reason="needs 2 kernel threads to tell 1 apart")
def test_n_threads_applies_to_every_kernel_call_and_is_restored(seen, data):
    X, y = data
    before = threads.get_num_threads()
    assert before > 1
    clf = MLPClassifier(hidden_layer_sizes=4, max_iter=2, random_state=0, n_threads=1)
    clf.fit(X, y)
    clf.partial_fit(X, y)
    clf.predict(X)
    clf.predict_proba(X)
    assert len(seen) == 2 + 1 + 2 and set(seen) == {1}  # 3 epochs, 2 forward passes
    assert threads.get_num_threads() == before


def test_n_threads_none_keeps_the_calling_threads_setting(seen, data):
    X, y = data
    before = threads.get_num_threads()
    MLPClassifier(hidden_layer_sizes=4, max_iter=1, random_state=0).fit(X, y).predict(X)
    assert seen == [before, before]


def test_n_threads_does_not_change_results(data):
    X, y = data
    probas = [MLPClassifier(hidden_layer_sizes=4, max_iter=3, random_state=0, n_threads=n)
              .fit(X, y).predict_proba(X) for n in (None, 1)]
    np.testing.assert_array_equal(*probas)


@pytest.mark.parametrize("n_threads", [0, -1, 1.5, True, "2"])
def test_bad_n_threads_raises_before_any_kernel(seen, data, n_threads):
    X, y = data
    clf = MLPClassifier(hidden_layer_sizes=4, max_iter=1, n_threads=n_threads)
    with pytest.raises(ValueError, match="n_threads"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="n_threads"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(clf, "classes_")  # the first partial_fit left no state behind
    assert seen == []


def odd_copy(A, shift):
    """A read-only copy of `A` at `shift` bytes past a 64-byte boundary (Dask's frames: any)."""
    raw = np.zeros(A.nbytes + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + shift
    B = raw[start:start + A.nbytes].view(A.dtype).reshape(A.shape)
    B[...] = A
    B.flags.writeable = False
    return B


@pytest.mark.parametrize("shift", [8, 1])  # 8: off the cache line; 1: not even float64-aligned
def test_read_only_unaligned_inputs_give_the_same_model(data, shift):
    X, y = data
    X_odd, y_odd = odd_copy(X, shift), odd_copy(y, shift)
    assert X_odd.ctypes.data % 64 == shift and not X_odd.flags.writeable
    expected = MLPClassifier(hidden_layer_sizes=4, max_iter=2, random_state=0).fit(X, y)
    expected.partial_fit(X, y)
    clf = MLPClassifier(hidden_layer_sizes=4, max_iter=2, random_state=0).fit(X_odd, y_odd)
    clf.partial_fit(X_odd, y_odd)
    np.testing.assert_array_equal(clf.predict_proba(X_odd), expected.predict_proba(X))
    np.testing.assert_array_equal(X_odd, X)  # left as it was
