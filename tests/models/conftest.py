"""One intra-op thread for the model tests.

The test machines share two cores between workers; with torch's default two OpenMP threads a
busy neighbour made the backbone forward passes here up to 10x slower (threads spin waiting
for each other), while one thread keeps these tiny passes fast and steady.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
