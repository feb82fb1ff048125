"""Where the offline mirror of shared data lives: ``$POSESHIFT_SHARED``, or nowhere.

The mirror is a folder laid out like the downloads it stands in for (``weights/``,
``data/openfield/``, ``data/horse10/``). There is no default: without the variable every
lookup falls through to the download caches, as on a fresh machine.
"""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENT_VARIABLE = "POSESHIFT_SHARED"


def mirror_dir() -> Path | None:
    """The mirror folder named by ``$POSESHIFT_SHARED`` (which may not exist), or None if unset."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    return Path(configured).expanduser() if configured else None


def in_mirror(*parts: str) -> Path | None:
    """``mirror_dir() / parts`` when a mirror is configured (the path may not exist), else None."""
    mirror = mirror_dir()
    return None if mirror is None else mirror.joinpath(*parts)
