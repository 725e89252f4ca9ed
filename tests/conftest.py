import os
import sys
from pathlib import Path

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # shared helpers: `from tiny import ...` works from every test folder
# The repository's packages next: otherwise tests/app/ and tests/steering/ (test folders without
# __init__.py) would be found as namespace packages `app` / `steering` when the checkout itself
# is not on sys.path (plain `pytest` with an editable install).
sys.path.insert(1, str(TESTS.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402  (after the environment it reads)


@pytest.fixture(scope="session")
def tiny_llama_folder(tmp_path_factory):
    """`tiny_model("llama")` saved once per session as a folder that `interp.load` and the CLI read
    (tests only read it)."""
    from tiny import save_tiny, tiny_model

    return save_tiny(tiny_model("llama"), tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def one_thread():
    """Tiny models on a shared CPU: thread hand-offs cost more than the matmuls (10x here).
    Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
