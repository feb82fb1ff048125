"""The DeepLabCut venv builder behind the interop tier fails loudly, it never skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from poseshift.bench.dlc3 import DeepLabCutUnavailable, ensure_dlc_venv


def test_a_venv_that_cannot_be_built_raises_with_the_failing_step(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DeepLabCutUnavailable, match=r"-m venv .*a-file/venv failed"):
        ensure_dlc_venv(blocker / "venv", log=False)
