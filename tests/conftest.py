import pytest
import torch

from kdlib.data import registry


@pytest.fixture(autouse=True)
def _one_thread_and_fresh_loads():
    """Tiny tensors: one thread is faster and bit-stable; forget in-process dataset loads between tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    registry._load_once.cache_clear()
    yield
    torch.set_num_threads(threads)
    registry._load_once.cache_clear()
