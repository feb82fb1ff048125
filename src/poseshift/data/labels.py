"""DeepLabCut label files ``labeled-data/<video>/CollectedData_<scorer>.h5`` / ``.csv``.

Reading checks everything a crashed or hand-edited file gets wrong (empty or garbage bytes,
a header without rows, ragged or non-numeric rows, wrong column levels, duplicate images,
infinite coordinates) and refuses it in one line naming the file, row and column. Writing
produces exactly DeepLabCut's layout, so DeepLabCut reads it back.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from poseshift.data.hdf import read_hdf_safely
from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child, write_atomic

HDF_KEY = "df_with_missing"
COLUMN_LEVELS = ["scorer", "bodyparts", "coords"]
# What pandas writes for NaN (DeepLabCut: an empty cell) and spellings it reads back as NaN.
NAN_CELLS = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "n/a", "null", "NULL", "None"})
FIX = "fix it in DeepLabCut (or a text editor) and save again"


def read_labels(path: Path) -> pd.DataFrame:
    """One CollectedData file (.h5 or .csv) as a float64 DataFrame indexed by image path."""
    if path.suffix == ".h5":
        # Never pd.read_hdf directly: a crafted file would unpickle (run code) on reading.
        frame = read_hdf_safely(
            path,
            what="DeepLabCut label file",
            fix="re-export it from DeepLabCut or delete it to use the .csv",
        )
        _check_columns(frame, path)
        # The levels are scorer/bodyparts/coords by position; a script may leave them unnamed.
        frame.columns = frame.columns.set_names(COLUMN_LEVELS)
        frame = _numeric_h5(frame, path)
    else:
        frame = _read_labels_csv(path)
        _check_columns(frame, path)
    style = "tuple" if frame.index.nlevels > 1 else "path"
    frame.index = _index_as_paths(frame.index, path)
    frame.attrs["index_style"] = style  # the row index DeepLabCut wrote: row_index restores it
    if not len(frame):
        raise PoseshiftError(
            f"{path} has a header but no rows (no labeled frame): label frames in DeepLabCut "
            "or delete the file"
        )
    duplicated = frame.index[frame.index.duplicated()]
    if len(duplicated):
        raise PoseshiftError(
            f"{path}: image {duplicated[0]!r} appears in more than one row; keep one row per image"
        )
    infinite = np.isinf(frame.to_numpy())
    if infinite.any():
        row, column = np.argwhere(infinite)[0]
        raise PoseshiftError(
            f"{path}: row {frame.index[row]!r} column {'/'.join(frame.columns[column][1:])} is "
            f"infinite; refused (an unlabeled point is an empty cell / NaN): {FIX}"
        )
    return frame


def _number(cell: str, path: Path, line: int, column: tuple[str, ...]) -> float:
    text = cell.strip()
    if text in NAN_CELLS:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise PoseshiftError(
            f"{path}: line {line} column {'/'.join(column[1:])} is {text[:40]!r}, not a "
            f"number; coordinates are numbers or empty (unlabeled): {FIX}"
        ) from None


def _read_labels_csv(path: Path) -> pd.DataFrame:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:  # Excel adds a BOM
            reader = csv.reader(handle)
            # Blank lines are skipped (as pandas does) but keep their numbers in errors.
            numbered = [(reader.line_num, row) for row in reader if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PoseshiftError(f"{path}: not a readable CSV ({exc})") from None
    rows = [row for _, row in numbered]
    if not rows:
        raise PoseshiftError(f"{path} is empty: re-export it from DeepLabCut or delete it")
    labels = [row[0] for row in rows[:4]]
    if labels[:2] == ["scorer", "individuals"]:
        raise PoseshiftError(
            f"{path}: multi-animal label files (with 'individuals') are not supported yet"
        )
    if labels[:3] != COLUMN_LEVELS:
        raise PoseshiftError(
            f"{path}: wrong header; a DeepLabCut label CSV starts with three header rows "
            f"named scorer, bodyparts, coords (found {labels[:3]}): re-export it from DeepLabCut"
        )
    width = len(rows[0])
    for number, row in numbered:
        if len(row) != width:
            raise PoseshiftError(
                f"{path}: line {number} has {len(row)} cells, the header {width}; every row "
                f"needs an image and x, y for each bodypart (empty if unlabeled): {FIX}"
            )
    # DeepLabCut >= 2.2 writes the index as three columns (labeled-data, video, image).
    n_index = next((i for i, cell in enumerate(rows[0][1:], 1) if cell), width)
    columns = [tuple(rows[level][i] for level in range(3)) for i in range(n_index, width)]
    body = rows[3:]
    values = [
        [
            _number(cell, path, line, column)
            for cell, column in zip(row[n_index:], columns, strict=True)
        ]
        for line, row in numbered[3:]
    ]
    index_rows = [tuple(row[:n_index]) for row in body]
    if n_index > 1 and index_rows:
        index = pd.MultiIndex.from_tuples(index_rows)
    else:  # one path column, or no rows (read_labels refuses a header-only file)
        index = pd.Index([row[0] for row in index_rows])
    return pd.DataFrame(
        np.array(values, dtype=np.float64).reshape(len(body), len(columns)),
        index=index,
        columns=pd.MultiIndex.from_tuples(columns, names=COLUMN_LEVELS),
    )


def _numeric_h5(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].dtype == bool:
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna() & frame[column].notna()
            row = frame.index[int(np.argmax(bad.to_numpy()))] if bad.any() else frame.index[0]
            raise PoseshiftError(
                f"{path}: column {'/'.join(map(str, column[1:]))} holds "
                f"{frame[column].dtype} values (e.g. in row {row!r}), not numbers: "
                "re-export it from DeepLabCut"
            )
    return frame.astype("float64")


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    columns = frame.columns
    if columns.nlevels != 3:
        raise PoseshiftError(
            f"{path}: expected 3 column levels (scorer, bodyparts, coords), found "
            f"{columns.nlevels}; multi-animal files (with 'individuals') are not supported yet"
        )
    scorers = columns.get_level_values(0).nunique()
    if scorers != 1:
        raise PoseshiftError(f"{path}: expected one scorer in the columns, found {scorers}")
    if columns.duplicated().any():
        raise PoseshiftError(
            f"{path}: column {'/'.join(map(str, columns[columns.duplicated()][0][1:]))} "
            "appears twice; keep one x and one y column per bodypart"
        )
    for part in dict.fromkeys(columns.get_level_values(1)):
        coords = set(frame[columns[0][0]][part].columns)
        if not {"x", "y"} <= coords or not coords <= {"x", "y", "likelihood"}:
            raise PoseshiftError(
                f"{path}: bodypart {part!r} has coords {sorted(map(str, coords))}; each "
                "bodypart needs exactly an x and a y column"
            )


def _index_as_paths(index: pd.Index, path: Path) -> pd.Index:
    if index.nlevels > 1:  # DeepLabCut >= 2.2: ("labeled-data", video, image)
        names = ["/".join(str(part) for part in row) for row in index]
    else:
        names = [str(name).replace("\\", "/") for name in index]
    for name in names:
        parts = name.split("/")
        # A row names a file inside the project (labeled-data/<video>/<image>), nothing else.
        if name.startswith("/") or ":" in parts[0] or ".." in parts or "\0" in name:
            raise PoseshiftError(
                f"{path}: row {name[:80]!r} is not a path inside the project "
                "(absolute or with '..'); rows name labeled-data/<video>/<image>"
            )
    return pd.Index(names)


def labels_to_array(frame: pd.DataFrame, bodyparts: Sequence[str], path: Path) -> np.ndarray:
    """(N, K, 2) float32 keypoints in config order; bodyparts must match the config."""
    found = list(dict.fromkeys(frame.columns.get_level_values("bodyparts")))
    if set(found) != set(bodyparts):
        extra = sorted(set(found) - set(bodyparts))
        missing = sorted(set(bodyparts) - set(found))
        raise PoseshiftError(
            f"{path}: bodyparts differ from config.yaml (only in labels: {extra}, only in "
            f"config: {missing}); make config.yaml's bodyparts match the labeled data"
        )
    scorer = frame.columns.get_level_values(0)[0]
    values = [frame[(scorer, part, coord)].to_numpy() for part in bodyparts for coord in "xy"]
    points = np.stack(values, axis=1).reshape(len(frame), len(bodyparts), 2).astype(np.float32)
    _unlabel_half_labeled(points, frame.index, bodyparts, path)
    return points


def _unlabel_half_labeled(
    points: np.ndarray, rows: pd.Index, bodyparts: Sequence[str], path: Path
) -> None:
    """x without y (or y without x) is a half-deleted label: unlabeled, as DeepLabCut does."""
    missing = np.isnan(points)
    half = missing[..., 0] != missing[..., 1]
    if half.any():
        row, part = np.argwhere(half)[0]
        warnings.warn(
            f"{path}: {int(half.sum())} keypoint(s) have only one of x and y, e.g. "
            f"{bodyparts[part]} in row {rows[row]!r}; they are treated as unlabeled: {FIX}",
            stacklevel=3,
        )
        points[half] = np.nan


def find_label_files(project: Path, scorer: str) -> list[Path]:
    """One CollectedData file per video folder, preferring .h5 (DeepLabCut's own choice).

    A folder labeled under another scorer's name is skipped with a warning; a ``*_labeled``
    folder without the scorer's file (DeepLabCut's check_labels output) silently.
    """
    labeled = project / "labeled-data"
    files = []
    others = []  # folders labeled under another scorer's name
    for folder in sorted(p for p in labeled.glob("*") if p.is_dir()):
        h5 = folder / f"CollectedData_{scorer}.h5"
        csv_file = h5.with_suffix(".csv")
        if h5.is_file() or csv_file.is_file():
            files.append(h5 if h5.is_file() else csv_file)
        elif not folder.name.endswith("_labeled"):  # DeepLabCut's check_labels output
            found = [
                *sorted(folder.glob("CollectedData_*.h5")),
                *folder.glob("CollectedData_*.csv"),
            ]
            if found:
                others.append(f"{folder.name}/{found[0].name}")
    shown = f"{', '.join(others[:5])}{' ...' if len(others) > 5 else ''}"
    if not files:
        raise PoseshiftError(
            f"no labeled-data/*/CollectedData_{scorer}.h5 or .csv in {project}: "
            "label frames in DeepLabCut first, or check 'scorer' in config.yaml"
            + (f" (found {shown})" if others else "")
        )
    if others:
        warnings.warn(
            f"{labeled}: {len(others)} video folder(s) have labels of another scorer, not "
            f"CollectedData_{scorer} (config.yaml's scorer), and are skipped: {shown}; rename "
            f"such a file to CollectedData_{scorer}.h5 / .csv to include its frames",
            stacklevel=3,
        )
    return files


def labels_frame(
    scorer: str,
    bodyparts: Sequence[str],
    images: Sequence[str],
    keypoints: np.ndarray,
    index_style: str = "tuple",
) -> pd.DataFrame:
    """The DataFrame DeepLabCut stores: columns scorer/bodyparts/coords, one row per image.

    ``index_style="tuple"`` is DeepLabCut >= 2.2's 3-level row index; ``"path"`` the older
    single path string. DeepLabCut reads both.
    """
    columns = pd.MultiIndex.from_product(
        [[scorer], list(bodyparts), ["x", "y"]], names=COLUMN_LEVELS
    )
    values = np.asarray(keypoints, dtype=np.float64).reshape(len(images), -1)
    return pd.DataFrame(values, index=row_index(images, index_style), columns=columns)


def row_index(images: Sequence[str], index_style: str = "tuple") -> pd.Index:
    """DeepLabCut's row index of image paths ``labeled-data/<video>/<image>``.

    ``"tuple"``: DeepLabCut >= 2.2's three levels (``labeled-data``, video, image), which its
    evaluation merges on; ``"path"``: the older single path string.
    """
    if index_style == "tuple":
        return pd.MultiIndex.from_tuples([tuple(name.split("/", 2)) for name in images])
    if index_style == "path":
        return pd.Index(list(images))
    raise PoseshiftError(f"index_style must be 'tuple' or 'path', got {index_style!r}")


def write_labels(folder: Path, frame: pd.DataFrame) -> tuple[Path, Path]:
    """Write CollectedData_<scorer>.h5 and .csv atomically, as DeepLabCut does."""
    scorer = frame.columns.get_level_values(0)[0]
    # The scorer comes from config.yaml or a COCO file: it must not lead out of the folder.
    h5 = safe_child(folder, f"CollectedData_{scorer}", "scorer name", suffix=".h5")
    csv_file = h5.with_suffix(".csv")
    write_atomic(h5, lambda tmp: frame.to_hdf(tmp, key=HDF_KEY, mode="w"))
    write_atomic(csv_file, lambda tmp: frame.to_csv(tmp))
    return h5, csv_file
