"""The README's Python examples run as written."""
import contextlib
import io
import re

import pytest

from tests.conftest import REPO, mnist_dir

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


def _examples():
    """One parameter per block; the MNIST example needs the IDX files."""
    needs_mnist = pytest.mark.skipif(
        mnist_dir() is None,
        reason="MNIST IDX files not found: set FASTMLP_MNIST_DIR to run this example")
    return [pytest.param(i, marks=[needs_mnist] if "load_mnist()" in code else [])
            for i, code in enumerate(BLOCKS)]


@pytest.mark.parametrize("index", _examples())
def test_readme_example_runs(index, monkeypatch, tmp_path):
    code = BLOCKS[index]
    if "load_mnist()" in code:
        monkeypatch.setenv("FASTMLP_MNIST_DIR", str(mnist_dir()))
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md block {index}", "exec"), {})
    if "load_mnist()" in code:
        assert "Test accuracy: 94.13%" in out.getvalue()
