"""DeepLabCut's "openfield" example project: find it locally, or download it checked.

The project (mouse in an open field, scorer Pranav: 116 labeled frames, 4 bodyparts and one
2,330-frame video; LGPL-3.0 like DeepLabCut) is published in GitHub ``DeepLabCut/DeepLabCut``,
folder ``examples/openfield-Pranav-2018-10-30/``. Files are fetched at a fixed commit and
checked against the shipped manifest (``openfield-manifest.json``: name, size, sha256 of all
120 files, 29,300,163 bytes), so a moving upstream can never change the demo's data.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from poseshift.download import (
    Progress,
    RemoteFile,
    _noop,
    fetch_files,
    is_cached,
    unreachable,
)
from poseshift.errors import PoseshiftError
from poseshift.locations import in_mirror

OPENFIELD_NAME = "openfield-Pranav-2018-10-30"
OPENFIELD_COMMIT = "2df0f46c8c8c56c8238b46b3d58384163bafb2f0"
OPENFIELD_URL = (
    "https://raw.githubusercontent.com/DeepLabCut/DeepLabCut/"
    f"{OPENFIELD_COMMIT}/examples/{OPENFIELD_NAME}"
)
OPENFIELD_WHAT = "DeepLabCut's openfield example project"
LICENCE = (
    "DeepLabCut's openfield example (Mathis et al. 2018, doi 10.1038/s41593-018-0209-y) is "
    "distributed with DeepLabCut under the LGPL-3.0; keep this attribution"
)
MANIFEST = "openfield-manifest.json"


def openfield_files(base_url: str | None = None) -> list[RemoteFile]:
    """The project's 120 files, with URLs under ``base_url`` (default: the pinned commit).

    ``$POSESHIFT_OPENFIELD_URL`` overrides the default base (a mirror, or a test server).
    """
    base = (base_url or os.environ.get("POSESHIFT_OPENFIELD_URL") or OPENFIELD_URL).rstrip("/")
    text = (resources.files("poseshift.datasets") / MANIFEST).read_text(encoding="utf-8")
    return [
        RemoteFile(f"{base}/{quote(e['name'])}", e["name"], int(e["size"]), e["sha256"])
        for e in json.loads(text)
    ]


def examples_dir() -> Path:
    """Where downloaded example projects live: ``$POSESHIFT_EXAMPLES_DIR`` or the user cache."""
    configured = os.environ.get("POSESHIFT_EXAMPLES_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "poseshift" / "examples"


def shared_openfield() -> Path | None:
    """The project in the offline mirror (``$POSESHIFT_SHARED/data/openfield``), if it is there."""
    folder = in_mirror("data", "openfield", OPENFIELD_NAME)
    return folder.resolve() if folder is not None and folder.is_dir() else None


def _complete(folder: Path) -> bool:
    """Every manifest file present with its size (no hashing: this runs before every demo)."""
    return folder.is_dir() and all(is_cached(f, folder, check_sha=False) for f in openfield_files())


def locate_openfield(explicit: Path | None = None) -> Path | None:
    """Where the project already is, without network: explicit folder, cache, shared mirror."""
    if explicit is not None:
        explicit = Path(explicit)
        if not (explicit / "config.yaml").is_file():
            raise PoseshiftError(
                f"--openfield {explicit} holds no config.yaml: point it at the "
                f"{OPENFIELD_NAME} folder, or leave it out to use a downloaded copy"
            )
        return explicit
    cached = examples_dir() / OPENFIELD_NAME
    if _complete(cached):
        return cached
    return shared_openfield()


def _hint(dest: Path) -> str:
    return (
        f"pass --openfield PATH to an existing copy of {OPENFIELD_NAME}, or connect to the "
        f"internet so it can be downloaded (29 MB) into {dest}"
    )


def fetch_openfield(dest: Path | None = None, progress: Progress = _noop) -> Path:
    """Download (or complete) the project into ``dest`` (default: the examples cache), checked."""
    folder = Path(dest) if dest is not None else examples_dir() / OPENFIELD_NAME
    return fetch_files(openfield_files(), folder, progress, OPENFIELD_WHAT, hint=_hint(folder))


def openfield_project(
    explicit: Path | None = None, download: bool = True, progress: Progress = _noop
) -> Path:
    """The project's folder: found locally, else downloaded (unless ``download`` is False)."""
    found = locate_openfield(explicit)
    if found is not None:
        return found
    if not download:
        dest = examples_dir() / OPENFIELD_NAME
        raise PoseshiftError(
            f"{OPENFIELD_WHAT} is not in {dest} nor in the shared mirror, and downloads are "
            f"off; run `poseshift data fetch-example openfield` or pass --openfield PATH"
        )
    return fetch_openfield(progress=progress)


def openfield_problem(explicit: Path | None = None) -> str | None:
    """Why the project cannot be had, in one line, or None (fast: no download, one TCP try)."""
    try:
        if locate_openfield(explicit) is not None:
            return None
    except PoseshiftError as exc:
        return str(exc)
    files = openfield_files()
    dest = examples_dir() / OPENFIELD_NAME
    reason = unreachable(files[0].url)
    if not reason:
        return None
    missing = sum(not is_cached(f, dest, check_sha=False) for f in files)
    return f"{OPENFIELD_WHAT}: {missing} file(s) missing from {dest} and {reason}; {_hint(dest)}"
