"""DeepLabCut projects: read and write ``config.yaml`` + ``labeled-data/*/CollectedData_*``.

A project becomes a :class:`PoseDataset`: image paths (relative to the project folder, as in
DeepLabCut's index), keypoints ``(N, K, 2)`` float32 with NaN for unlabeled, and the group
(video folder) of each image. Everything else in poseshift works on that table.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from poseshift.data.hdf import read_hdf_safely
from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child, write_atomic, write_text_atomic

HDF_KEY = "df_with_missing"
COLUMN_LEVELS = ["scorer", "bodyparts", "coords"]


@dataclass
class PoseDataset:
    """Labeled frames of one single-animal project."""

    root: Path
    scorer: str
    bodyparts: list[str]
    images: list[str]  # "labeled-data/<video>/<file>", relative to root
    keypoints: np.ndarray  # (N, K, 2) float32, NaN = unlabeled
    groups: list[str]  # group (individual / video) of each image
    image_sizes: np.ndarray  # (N, 2) int: width, height
    skeleton: list[tuple[str, str]] = field(default_factory=list)
    task: str = "poseshift"
    config: dict = field(default_factory=dict, repr=False)  # the project's config.yaml

    def __len__(self) -> int:
        return len(self.images)

    @property
    def group_names(self) -> list[str]:
        """Groups in order of first appearance."""
        return list(dict.fromkeys(self.groups))

    def image_path(self, index: int) -> Path:
        return self.root / self.images[index]

    def load_image(self, index: int) -> np.ndarray:
        """RGB uint8 image (H, W, 3); a missing or corrupt file is a one-line error."""
        return read_image(self.image_path(index))

    def summary(self) -> dict:
        """What ``poseshift data info`` prints: groups, labeled fractions, image sizes."""
        labeled = ~np.isnan(self.keypoints[..., 0])
        groups = pd.Series(self.groups)
        sizes = pd.Series([f"{w}x{h}" for w, h in self.image_sizes])
        return {
            "project": str(self.root),
            "scorer": self.scorer,
            "task": self.task,
            "n_frames": len(self),
            "bodyparts": self.bodyparts,
            "frames_per_group": groups.value_counts(sort=False).to_dict(),
            "labeled_fraction": dict(
                zip(self.bodyparts, labeled.mean(axis=0).tolist(), strict=True)
            ),
            "image_sizes": sizes.value_counts().to_dict(),
        }

    def indices_of(self, images: Sequence[str]) -> np.ndarray:
        """Row numbers of the given image paths; unknown paths are an error naming one."""
        position = {name: i for i, name in enumerate(self.images)}
        missing = [name for name in images if name not in position]
        if missing:
            raise PoseshiftError(
                f"{len(missing)} image(s) are not in project {self.root}, e.g. {missing[0]!r}: "
                "the split or file refers to another project"
            )
        return np.array([position[name] for name in images], dtype=np.int64)


def read_image(path: Path) -> np.ndarray:
    """Decode an image fully (so truncated files fail here, not inside training)."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise PoseshiftError(
            f"image {path} is listed in the labels but missing on disk: restore it or "
            "remove its row from the CollectedData file"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PoseshiftError(
            f"image {path} cannot be decoded ({exc}): it is truncated or not an image; "
            "replace it or remove its row from the CollectedData file"
        ) from None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height), decoding the whole file to catch truncation."""
    image = read_image(path)
    return image.shape[1], image.shape[0]


# ----------------------------------------------------------------------------- config


def read_config(project: Path) -> dict:
    config_path = project / "config.yaml"
    if not project.is_dir():
        raise PoseshiftError(f"project folder {project} does not exist")
    if not config_path.is_file():
        raise PoseshiftError(
            f"no config.yaml in {project}: point to a DeepLabCut project folder "
            "(the one holding config.yaml and labeled-data/)"
        )
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first_line = str(exc).splitlines()[0]
        raise PoseshiftError(f"{config_path} is not valid YAML: {first_line}") from None
    if not isinstance(config, dict):
        raise PoseshiftError(f"{config_path} must be a YAML mapping with keys scorer, bodyparts")
    if config.get("multianimalproject"):
        raise PoseshiftError(
            f"{config_path}: multi-animal projects are not supported yet; "
            "use a single-animal DeepLabCut project"
        )
    for key in ("scorer", "bodyparts"):
        if not config.get(key):
            raise PoseshiftError(f"{config_path}: key {key!r} is missing or empty")
    if not isinstance(config["bodyparts"], list):
        raise PoseshiftError(
            f"{config_path}: 'bodyparts' must be a list of names, got {config['bodyparts']!r}"
        )
    # DeepLabCut's examples ship a placeholder project_path: the folder itself is the truth.
    config["project_path"] = str(project.resolve())
    return config


def _skeleton(config: dict, bodyparts: list[str], config_path: Path) -> list[tuple[str, str]]:
    pairs = []
    for pair in config.get("skeleton") or []:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise PoseshiftError(f"{config_path}: skeleton entry {pair!r} must be a pair of names")
        unknown = [name for name in pair if name not in bodyparts]
        if unknown:
            raise PoseshiftError(
                f"{config_path}: skeleton entry {pair!r} names unknown bodypart {unknown[0]!r}"
            )
        pairs.append((str(pair[0]), str(pair[1])))
    return pairs


# ----------------------------------------------------------------------------- labels


def read_labels(path: Path) -> pd.DataFrame:
    """One CollectedData file (.h5 or .csv) as a DataFrame with string image-path index."""
    if path.suffix == ".h5":
        # Never pd.read_hdf directly: a crafted file would unpickle (run code) on reading.
        frame = read_hdf_safely(
            path,
            what="DeepLabCut label file",
            fix="re-export it from DeepLabCut or delete it to use the .csv",
        )
    else:
        frame = _read_labels_csv(path)
    _check_columns(frame, path)
    frame.index = _index_as_paths(frame.index, path)
    duplicated = frame.index[frame.index.duplicated()]
    if len(duplicated):
        raise PoseshiftError(
            f"{path}: image {duplicated[0]!r} appears in more than one row; keep one row per image"
        )
    return frame.astype("float64")


def _read_labels_csv(path: Path) -> pd.DataFrame:
    try:
        head = pd.read_csv(path, header=None, nrows=3, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PoseshiftError(f"{path}: not a readable CSV ({exc})") from None
    labels = head.iloc[:, 0].fillna("").tolist() if len(head.columns) else []
    if labels[:3] != COLUMN_LEVELS:
        raise PoseshiftError(
            f"{path}: wrong header; a DeepLabCut label CSV starts with three header rows "
            f"named scorer, bodyparts, coords (found {labels[:3]}): re-export it from DeepLabCut"
        )
    # DeepLabCut >= 2.2 writes the index as three columns (labeled-data, video, image).
    n_index = int((head.iloc[0].fillna("") == "").sum() + 1)
    # Read the body on its own: with header=[0, 1, 2], pandas takes an all-empty first data
    # row (a frame with no labels) for a row of index names and drops it.
    frame = pd.read_csv(path, header=None, skiprows=3, index_col=list(range(n_index)))
    frame.index.names = [None] * n_index
    frame.columns = pd.MultiIndex.from_arrays(
        [head.iloc[level, n_index:].tolist() for level in range(3)], names=COLUMN_LEVELS
    )
    return frame


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    columns = frame.columns
    if columns.nlevels != 3:
        raise PoseshiftError(
            f"{path}: expected 3 column levels (scorer, bodyparts, coords), found "
            f"{columns.nlevels}; multi-animal files (with 'individuals') are not supported yet"
        )
    coords = set(columns.get_level_values(-1))
    if not {"x", "y"} <= coords or not coords <= {"x", "y", "likelihood"}:
        raise PoseshiftError(f"{path}: coords must be x and y, found {sorted(coords)}")
    if columns.get_level_values(0).nunique() != 1:
        raise PoseshiftError(f"{path}: more than one scorer in the columns")


def _index_as_paths(index: pd.Index, path: Path) -> pd.Index:
    if index.nlevels > 1:  # DeepLabCut >= 2.2: ("labeled-data", video, image)
        return pd.Index(["/".join(str(part) for part in row) for row in index])
    return pd.Index([str(name).replace("\\", "/") for name in index])


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
    return np.stack(values, axis=1).reshape(len(frame), len(bodyparts), 2).astype(np.float32)


def find_label_files(project: Path, scorer: str) -> list[Path]:
    """One CollectedData file per video folder, preferring .h5 (DeepLabCut's own choice)."""
    labeled = project / "labeled-data"
    files = []
    for folder in sorted(p for p in labeled.glob("*") if p.is_dir()):
        if folder.name.endswith("_labeled"):  # DeepLabCut's check_labels output
            continue
        h5 = folder / f"CollectedData_{scorer}.h5"
        csv = h5.with_suffix(".csv")
        if h5.is_file() or csv.is_file():
            files.append(h5 if h5.is_file() else csv)
    if not files:
        raise PoseshiftError(
            f"no labeled-data/*/CollectedData_{scorer}.h5 or .csv in {project}: "
            "label frames in DeepLabCut first, or check 'scorer' in config.yaml"
        )
    return files


# ----------------------------------------------------------------------------- project


def load_project(project: str | Path, group_map: dict[str, str] | None = None) -> PoseDataset:
    """Read a single-animal DeepLabCut project; every image is checked on disk.

    ``group_map`` maps a video folder name (or an image path) to a group; by default the
    group of an image is its video folder, which for Horse-30 is one horse.
    """
    root = Path(project)
    config = read_config(root)
    bodyparts = [str(b) for b in config["bodyparts"]]
    images, arrays = [], []
    for path in find_label_files(root, str(config["scorer"])):
        frame = read_labels(path)
        images.extend(frame.index)
        arrays.append(labels_to_array(frame, bodyparts, path))
    if not images:
        raise PoseshiftError(f"{root}: the CollectedData files hold no rows; label some frames")
    keypoints = np.concatenate(arrays)
    sizes = np.array([image_size(root / name) for name in images], dtype=np.int64)
    _unlabel_outside(keypoints, sizes, images, bodyparts, root)
    _warn_unlabeled_frames(keypoints, images, root)
    groups = [group_of(name, group_map) for name in images]
    return PoseDataset(
        root=root,
        scorer=str(config["scorer"]),
        bodyparts=bodyparts,
        images=list(images),
        keypoints=keypoints,
        groups=groups,
        image_sizes=sizes,
        skeleton=_skeleton(config, bodyparts, root / "config.yaml"),
        task=str(config.get("Task") or root.name),
        config=config,
    )


def group_of(image: str, group_map: dict[str, str] | None = None) -> str:
    parts = image.split("/")
    video = parts[1] if len(parts) > 2 else parts[0]
    if group_map is None:
        return video
    return group_map.get(image, group_map.get(video, video))


def read_group_map(path: str | Path) -> dict[str, str]:
    """A CSV with columns ``video,group`` or ``image,group`` (e.g. several videos per animal)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PoseshiftError(f"group map {path} cannot be read: {exc}") from None
    key = next((c for c in ("video", "image") if c in table.columns), None)
    if key is None or "group" not in table.columns:
        raise PoseshiftError(
            f"group map {path}: needs a 'group' column and a 'video' or 'image' column, "
            f"found {list(table.columns)}"
        )
    empty = table[table[[key, "group"]].isna().any(axis=1)]
    if len(empty):
        raise PoseshiftError(f"group map {path}: row {empty.index[0] + 2} has an empty cell")
    return dict(zip(table[key], table["group"], strict=True))


def _unlabel_outside(
    keypoints: np.ndarray, sizes: np.ndarray, images: list[str], bodyparts: list[str], root: Path
) -> None:
    """Labels outside the image are typos or off-screen marks: warn and treat as unlabeled."""
    x, y = keypoints[..., 0], keypoints[..., 1]
    width, height = sizes[:, :1], sizes[:, 1:]
    with np.errstate(invalid="ignore"):
        outside = (x < 0) | (y < 0) | (x > width - 1) | (y > height - 1)
    if outside.any():
        row, part = np.argwhere(outside)[0]
        warnings.warn(
            f"{root}: {int(outside.sum())} label(s) lie outside their image, e.g. "
            f"{bodyparts[part]} in {images[row]} at ({x[row, part]:.1f}, {y[row, part]:.1f}); "
            "they are treated as unlabeled; fix them in DeepLabCut to use them",
            stacklevel=3,
        )
        keypoints[outside] = np.nan


def _warn_unlabeled_frames(keypoints: np.ndarray, images: list[str], root: Path) -> None:
    empty = np.isnan(keypoints).all(axis=(1, 2))
    if empty.any():
        warnings.warn(
            f"{root}: {int(empty.sum())} frame(s) have no labels, e.g. "
            f"{images[int(np.argmax(empty))]}; they are kept as frames without the animal "
            "(negatives in training, ignored by metrics)",
            stacklevel=3,
        )


# ----------------------------------------------------------------------------- writing


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
    if index_style == "tuple":
        index = pd.MultiIndex.from_tuples([tuple(name.split("/", 2)) for name in images])
    elif index_style == "path":
        index = pd.Index(list(images))
    else:
        raise PoseshiftError(f"index_style must be 'tuple' or 'path', got {index_style!r}")
    return pd.DataFrame(values, index=index, columns=columns)


def write_labels(folder: Path, frame: pd.DataFrame) -> tuple[Path, Path]:
    """Write CollectedData_<scorer>.h5 and .csv atomically, as DeepLabCut does."""
    scorer = frame.columns.get_level_values(0)[0]
    # The scorer comes from config.yaml or a COCO file: it must not lead out of the folder.
    h5 = safe_child(folder, f"CollectedData_{scorer}", "scorer name", suffix=".h5")
    csv = h5.with_suffix(".csv")
    write_atomic(h5, lambda tmp: frame.to_hdf(tmp, key=HDF_KEY, mode="w"))
    write_atomic(csv, lambda tmp: frame.to_csv(tmp))
    return h5, csv


def write_config(
    root: Path,
    scorer: str,
    bodyparts: Sequence[str],
    videos: Sequence[str],
    skeleton: Sequence[tuple[str, str]] = (),
    task: str = "poseshift",
    extra: dict | None = None,
) -> Path:
    """A config.yaml with the keys DeepLabCut needs for a single-animal project."""
    config = {
        "Task": task,
        "scorer": scorer,
        "date": "poseshift",
        "multianimalproject": False,
        "identity": None,
        "project_path": str(Path(root).resolve()),
        "video_sets": {f"videos/{v}.mp4": {"crop": "0, 0, 0, 0"} for v in videos},
        "bodyparts": list(bodyparts),
        "start": 0,
        "stop": 1,
        "numframes2pick": 20,
        "skeleton": [list(pair) for pair in skeleton],
        "skeleton_color": "black",
        "pcutoff": 0.6,
        "dotsize": 8,
        "alphavalue": 0.7,
        "colormap": "rainbow",
        "TrainingFraction": [0.95],
        "iteration": 0,
        "default_net_type": "resnet_50",
        "snapshotindex": -1,
        "batch_size": 8,
        **(extra or {}),
    }
    return write_text_atomic(Path(root) / "config.yaml", yaml.safe_dump(config, sort_keys=False))


def write_project(
    dataset: PoseDataset, index_style: str = "tuple", project_path: Path | None = None
) -> None:
    """Write config.yaml and one CollectedData pair per video folder of ``dataset.root``.

    Images must already be in place under ``dataset.root``; groups come from the folders.
    ``project_path`` is the folder's final location when it is staged elsewhere first.
    """
    videos = list(dict.fromkeys(name.split("/")[1] for name in dataset.images))
    final = {"project_path": str(Path(project_path).resolve())} if project_path else None
    write_config(
        dataset.root,
        dataset.scorer,
        dataset.bodyparts,
        videos,
        dataset.skeleton,
        dataset.task,
        extra=final,
    )
    for video in videos:
        rows = [i for i, name in enumerate(dataset.images) if name.split("/")[1] == video]
        frame = labels_frame(
            dataset.scorer,
            dataset.bodyparts,
            [dataset.images[i] for i in rows],
            dataset.keypoints[rows],
            index_style,
        )
        write_labels(dataset.root / "labeled-data" / video, frame)
