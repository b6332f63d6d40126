import os
import sys

import pytest

# Make `import deeprl` work from a checkout without installation, and tests' helper envs importable.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


from toy_envs import register_toy_envs  # noqa: E402

register_toy_envs()


def _one_thread_per_worker():
    """Tests run two xdist workers on two cores: keep every algorithm at one torch thread."""
    from deeprl.algos import ALGORITHMS

    for cls in ALGORITHMS.values():
        cls.default_torch_threads = 1


_one_thread_per_worker()


@pytest.fixture(autouse=True)
def _single_thread():
    import torch

    torch.set_num_threads(1)
