"""DeepLabCut-compatible prediction files: columns scorer/bodyparts/coords (x, y, likelihood).

The one owner of their names: ``<video stem><scorer>.h5`` (and ``.csv``,
``_meta.pickle``), as DeepLabCut's ``find_analyzed_data`` looks them up, of the record of
what they were computed from (``.json``) and of the files made from them (``--export``,
reliability). The default scorer is the one DeepLabCut derives
(``predict.dlc_shuffle.dlc_scorer``); ``check_scorer`` vets a name given with ``--scorer``.
Poses are float32, as DeepLabCut 3 writes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from poseshift.data.project import COLUMN_LEVELS, HDF_KEY
from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child, write_atomic, write_json_atomic

# DeepLabCut's find_analyzed_data skips names containing these (its derived outputs).
RESERVED_IN_SCORER = ("filtered", "skeleton")


def check_scorer(name: str) -> str:
    """A ``--scorer`` name DeepLabCut can find: starts with ``DLC_``, a plain file-name part."""
    problem = None
    if not name.startswith("DLC_") or name == "DLC_":
        problem = "must start with 'DLC_' (DeepLabCut looks files up as <video>DLC_<...>.h5)"
    elif "." in name or "/" in name or "\\" in name:
        problem = "may not contain '.', '/' or '\\' (it is part of a file name)"
    elif any(word in name for word in RESERVED_IN_SCORER):
        problem = f"may not contain {' / '.join(RESERVED_IN_SCORER)} (DeepLabCut skips such files)"
    if problem:
        raise PoseshiftError(f"--scorer {name!r} {problem}")
    return name


def output_path(video: str | Path, scorer: str, dest: str | Path | None = None) -> Path:
    """Where a video's poses go: ``<dest or video folder>/<video stem><scorer>.h5``."""
    video = Path(video)
    return safe_child(Path(dest or video.parent), f"{video.stem}{scorer}", "output", suffix=".h5")


def meta_path(h5: str | Path) -> Path:
    """``<video><scorer>_meta.pickle`` next to ``<video><scorer>.h5``."""
    h5 = Path(h5)
    return h5.with_name(f"{h5.stem}_meta.pickle")


def poses_frame(
    scorer: str, bodyparts: Sequence[str], poses: np.ndarray, index: Sequence | None = None
) -> pd.DataFrame:
    """(N, K, 3) poses as the float32 DataFrame DeepLabCut 3's analyze_videos writes."""
    columns = pd.MultiIndex.from_product(
        [[scorer], list(bodyparts), ["x", "y", "likelihood"]], names=COLUMN_LEVELS
    )
    values = np.asarray(poses, dtype=np.float32).reshape(len(poses), -1)
    return pd.DataFrame(values, columns=columns, index=index)


def write_poses(path: str | Path, frame: pd.DataFrame, csv: bool = True) -> Path:
    """Write poses as DeepLabCut reads them: ``path`` (.h5) and, with ``csv``, the .csv.

    The .h5 uses pandas' fixed format: a table-format file written by pandas 3 cannot be
    read by pandas 2 (which DeepLabCut 3.0 installs), a fixed-format one reads in both, and
    DeepLabCut's readers call ``pd.read_hdf(path)``, which takes either.
    """
    path = Path(path)
    if csv:
        write_atomic(path.with_suffix(".csv"), lambda tmp: frame.to_csv(tmp))
    return write_atomic(path, lambda tmp: frame.to_hdf(tmp, key=HDF_KEY, mode="w"))


def export_paths(h5: str | Path) -> dict[str, Path]:
    """The ``analyze --export`` files of ``h5``: ``.predictions.slp`` and ``.nwb``."""
    h5 = Path(h5)
    return {"slp": h5.with_suffix(".predictions.slp"), "nwb": h5.with_suffix(".nwb")}


def reliability_path(h5: str | Path) -> Path:
    """``<video><scorer>_reliability.csv`` next to ``<video><scorer>.h5``."""
    h5 = Path(h5)
    return h5.with_name(f"{h5.stem}_reliability.csv")


def derived_paths(h5: str | Path) -> list[Path]:
    """Every file poseshift makes from the poses in ``h5`` (never DeepLabCut's own files)."""
    return [*export_paths(h5).values(), reliability_path(h5)]


# Record keys naming what was made from the poses (``exports``: the --export formats,
# ``reliability``: what its table was computed with), not what the poses came from.
DERIVED = ("exports", "reliability")


def source_path(h5: str | Path) -> Path:
    """``<video><scorer>.json``: what the poses in ``<video><scorer>.h5`` were computed from."""
    return Path(h5).with_suffix(".json")


def read_source(h5: str | Path) -> dict | None:
    """The recorded source of an output, or None (none recorded, or unreadable)."""
    try:
        source = json.loads(source_path(h5).read_text())
    except (OSError, ValueError):
        return None
    return source if isinstance(source, dict) else None


def is_reusable(h5: str | Path, source: dict) -> bool:
    """``h5`` exists and was computed from exactly ``source`` (video, snapshot, options)."""
    record = read_source(h5)
    if record is None or not Path(h5).is_file():
        return False
    # Through JSON, so that tuples compare equal to the lists the file holds.
    origin = {key: value for key, value in record.items() if key not in DERIVED}
    return origin == json.loads(json.dumps(source))


def has_exports(h5: str | Path, names: Sequence[str]) -> bool:
    """The record of ``h5`` lists these exports as made from its poses, and they exist."""
    made = (read_source(h5) or {}).get("exports") or []
    return all(name in made and export_paths(h5)[name].is_file() for name in names)


def forget_source(h5: str | Path) -> None:
    """Drop the record, and the files made from the poses, before rewriting outputs.

    A crash midway must not leave the record matching, and no export or reliability table
    may outlive the poses it was made from.
    """
    source_path(h5).unlink(missing_ok=True)
    for path in derived_paths(h5):
        path.unlink(missing_ok=True)


def record_source(h5: str | Path, source: dict) -> Path:
    """Written after the .h5 (and its exports): a matching record means complete outputs."""
    return write_json_atomic(source_path(h5), source)


def note_derived(h5: str | Path, key: str, value: object) -> None:
    """Add ``key`` (one of ``DERIVED``) to the record of the poses in ``h5``, if it has one."""
    record = read_source(h5)
    if record is not None:
        record_source(h5, {**record, key: value})


def check_outputs(
    videos: Sequence[Path], outputs: Sequence[Path], overwrite: bool, run: str | None = None
) -> None:
    """Refuse two videos writing one output (same stem, one --dest), and replacing another
    video's or another run's (``run``: its hash) poses without ``overwrite``: DeepLabCut's
    names leave no room for folders, and two runs of one backbone, shuffle and iteration get
    the same DeepLabCut name."""
    first: dict[Path, Path] = {}
    for video, out in zip(videos, outputs, strict=True):
        video = video.resolve()
        other = first.setdefault(out, video)
        if other != video:
            raise PoseshiftError(
                f"{other} and {video} would both write {out}; analyze videos of the same "
                "name into different --dest folders"
            )
        record = read_source(out) or {}
        stored = record.get("video", {}).get("path")
        if out.is_file() and stored and stored != str(video) and not overwrite:
            raise PoseshiftError(
                f"{out} holds the poses of {stored}, not of {video}; use another --dest, "
                "or --overwrite to replace them"
            )
        other_run = record.get("run")
        if out.is_file() and run and other_run and other_run != run and not overwrite:
            raise PoseshiftError(
                f"{out} holds the poses of another run (recipe {other_run}, this one {run}) "
                "under the same DeepLabCut name; use another --dest or --scorer, or "
                "--overwrite to replace them"
            )
