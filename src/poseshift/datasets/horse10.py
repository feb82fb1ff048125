"""Get the real Horse-10 benchmark data and leave a DeepLabCut project that ``load_project`` reads.

The official archive is ``horse10.tar.xz`` of the Hugging Face dataset ``mwmathis/Horse-30``
(licence CC BY-NC-SA 4.0). Its Git LFS pointer (dataset commit 0f27374, unchanged on main
since) gives 806,263,192 bytes and the sha256 below; the download is checked against both.
The archive's top folder is ``horse10/`` with ``labeled-data/<horse>/*.png`` and
``CollectedData_Byron.h5`` per horse (as read by public scripts that use it). Whether it
also holds a ``config.yaml`` is not documented, so one is written from the labels when absent.
The project ends up at ``DEST/Horses-Byron-2019-05-08`` (the DeepLabCut project's name), with
the official split and scale files copied beside its config when they are available.

Downloads resume from ``DEST/horse10.tar.xz.part`` with HTTP Range requests. Extraction
(``poseshift.untar``) writes regular files and folders only: it refuses every link,
device and unsafe name, caps the extracted size (``max_bytes``, 4 GiB by default) and the
member count, and happens in a hidden staging folder that is renamed only when everything is
in place and deleted on any failure, Ctrl-C included.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from poseshift.data.project import load_project, read_labels, write_config
from poseshift.download import Progress, _noop, download, sha256_of
from poseshift.errors import PoseshiftError
from poseshift.locations import in_mirror
from poseshift.untar import MAX_EXTRACT_BYTES, extract_safely

DEFAULT_URL = "https://huggingface.co/datasets/mwmathis/Horse-30/resolve/main/horse10.tar.xz"
OFFICIAL_SIZE = 806_263_192
OFFICIAL_SHA256 = "562c172a608a8459def729e760a40bdd744c2b40e96bfe8b484ac7f4136be068"
ARCHIVE_NAME = "horse10.tar.xz"
PROJECT_NAME = "Horses-Byron-2019-05-08"
LICENCE = (
    "Horse-30 / Horse-10 (Mathis et al., WACV 2021) is licensed CC BY-NC-SA 4.0: "
    "non-commercial use, with attribution, share-alike "
    "(https://creativecommons.org/licenses/by-nc-sa/4.0/)"
)
SPLIT_FILES = (
    "TrainTestInfo_shuffle1.csv",
    "TrainTestInfo_shuffle2.csv",
    "TrainTestInfo_shuffle3.csv",
    "Horsescale.h5",
    "LICENSE-Horse-10-benchmark.txt",
)
PAPER_FRACTIONS = [0.05, 0.1, 0.2, 0.5, 0.9]


def default_split_files() -> Path | None:
    """The official split files' folder in the offline mirror, or None without a mirror."""
    return in_mirror("data", "horse10")


@dataclass
class FetchResult:
    project: Path
    archive: Path | None
    sha256: str | None  # None when the project was already there
    size: int | None
    official: bool  # the archive is byte-identical to the published one
    already: bool = False
    split_files: list[str] = field(default_factory=list)
    n_frames: int = 0
    n_groups: int = 0


# ----------------------------------------------------------------------------- extraction
# extract_safely (links, devices, unsafe names and bombs refused) is poseshift.untar's.


def _project_root(folder: Path, archive: Path) -> Path:
    """The shallowest folder holding labeled-data/ (the archive's DeepLabCut project)."""
    found = sorted(
        (p.parent for p in folder.rglob("labeled-data") if p.is_dir()),
        key=lambda p: len(p.relative_to(folder).parts),
    )
    if not found:
        raise PoseshiftError(
            f"{archive} holds no labeled-data/ folder: it is not a DeepLabCut project archive"
        )
    return found[0]


def _ensure_config(root: Path, final: Path, archive: Path) -> None:
    """Write config.yaml from the label files when the archive has none."""
    if (root / "config.yaml").is_file():
        return
    labels = sorted(root.glob("labeled-data/*/CollectedData_*.h5")) or sorted(
        root.glob("labeled-data/*/CollectedData_*.csv")
    )
    if not labels:
        raise PoseshiftError(
            f"{archive} holds no labeled-data/*/CollectedData_*.h5 or .csv: no labels to use"
        )
    scorer = labels[0].stem.removeprefix("CollectedData_")
    frame = read_labels(labels[0])
    bodyparts = list(dict.fromkeys(frame.columns.get_level_values("bodyparts")))
    extra = {"TrainingFraction": PAPER_FRACTIONS, "project_path": str(final.resolve())}
    write_config(root, scorer, bodyparts, task="Horses", extra=extra)  # Horse-30 has no videos


def _copy_split_files(root: Path, split_files: Path | None) -> list[str]:
    """Copy the official split/scale files into the project (explicit folder must have them).

    Without ``split_files`` they come from the offline mirror (``$POSESHIFT_SHARED/data/horse10``)
    when it has them; with neither, nothing is copied.
    """
    source = split_files if split_files is not None else default_split_files()
    if source is None:
        return []
    present = [name for name in SPLIT_FILES if (source / name).is_file()]
    if split_files is not None and not any(n.startswith("TrainTestInfo") for n in present):
        raise PoseshiftError(
            f"--split-files {split_files} holds no TrainTestInfo_shuffle*.csv: point it at a "
            "copy of github.com/amathislab/Horse-10-benchmark"
        )
    for name in present:
        shutil.copy2(source / name, root / name)
    return present


# ----------------------------------------------------------------------------- install


def _expected_sha(sha256: str | None, use_official: bool) -> str | None:
    if sha256 is None:
        return OFFICIAL_SHA256 if use_official else None
    value = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise PoseshiftError(f"--sha256 must be 64 hexadecimal digits, got {sha256!r}")
    return value


def fetch_horse10(
    dest: str | Path,
    *,
    url: str | None = None,
    archive: str | Path | None = None,
    sha256: str | None = None,
    split_files: str | Path | None = None,
    progress: Progress = _noop,
    max_bytes: int = MAX_EXTRACT_BYTES,
) -> FetchResult:
    """Download (or take ``archive``), verify, extract and install the Horse-30 project.

    Leaves ``DEST/Horses-Byron-2019-05-08``; a finished install is not repeated. The default
    URL is checked against the official size and sha256; another URL or a local archive
    against ``sha256`` when given. ``max_bytes`` caps what the archive may expand to.
    """
    dest = Path(dest)
    final = dest / PROJECT_NAME
    if (final / "config.yaml").is_file():
        return FetchResult(final, None, None, None, False, already=True)
    if final.exists():
        raise PoseshiftError(f"{final} exists but holds no config.yaml: move it away first")
    dest.mkdir(parents=True, exist_ok=True)
    official_url = archive is None and (url is None or url == DEFAULT_URL)
    expected = _expected_sha(sha256, official_url)
    if archive is not None:
        source = Path(archive)
        if not source.is_file():
            raise PoseshiftError(f"--archive {source} does not exist")
    else:
        source = dest / ARCHIVE_NAME
        if not source.is_file():
            size = OFFICIAL_SIZE if official_url else None
            download(url or DEFAULT_URL, source, expected_size=size, progress=progress)
    digest = sha256_of(source, progress)
    if expected is not None and digest != expected:
        note = "the file was deleted; run the command again"
        if archive is None:
            source.unlink()
        else:
            note = "use the official horse10.tar.xz or pass the right --sha256"
        raise PoseshiftError(
            f"sha256 of {source} is {digest}, expected {expected}: the archive is corrupt or "
            f"another file; {note}"
        )
    staging = Path(tempfile.mkdtemp(prefix=".horse10-staging-", dir=dest))
    try:  # the finally also runs on Ctrl-C: no hidden staging folder is ever left behind
        extract_safely(source, staging, progress, max_bytes=max_bytes)
        root = _project_root(staging, source)
        _ensure_config(root, final, source)
        copied = _copy_split_files(root, Path(split_files) if split_files else None)
        dataset = load_project(root)
        root.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FetchResult(
        project=final,
        archive=source,
        sha256=digest,
        size=source.stat().st_size,
        official=digest == OFFICIAL_SHA256,
        split_files=copied,
        n_frames=len(dataset),
        n_groups=len(dataset.group_names),
    )
