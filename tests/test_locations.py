"""The offline mirror is named by POSESHIFT_SHARED alone: no library default."""

from __future__ import annotations

from pathlib import Path

import pytest

from poseshift.locations import in_mirror, mirror_dir


def test_no_mirror_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSESHIFT_SHARED", raising=False)
    assert mirror_dir() is None and in_mirror("weights") is None
    monkeypatch.setenv("POSESHIFT_SHARED", "")
    assert mirror_dir() is None


def test_mirror_is_the_named_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSESHIFT_SHARED", str(tmp_path / "mirror"))
    assert mirror_dir() == tmp_path / "mirror"
    assert in_mirror("data", "horse10") == tmp_path / "mirror" / "data" / "horse10"
