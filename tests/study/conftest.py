"""The fake study shared by the analysis, figure and report tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_study import make_study


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full fake study: 6 backbones x 2 inits x 3 shuffles x 5 fractions + long runs."""
    return make_study(tmp_path_factory.mktemp("study"), spread=0.08)
