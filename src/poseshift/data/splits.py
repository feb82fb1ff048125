"""Group-aware splits: train / test within domain / test out of domain (Horse-10 style).

Per shuffle, some groups (individuals) are chosen for training; their frames are split into
``train`` and ``within`` by a training fraction; every frame of the other groups is ``ood``.
For one shuffle, smaller fractions are subsets of larger ones, so curves over fractions
compare like with like. Splits are JSON files in ``PROJECT/splits/<name>.json`` that runs
refer to by name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poseshift.data.project import PoseDataset
from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child, write_json_atomic

SCHEMES = ("horse10", "random")
PARTITIONS = ("train", "within", "ood")
OFFICIAL_COLUMNS = ("trainIndices", "testIndices_withinDomain", "testIndices_acrossDomain")
OFFICIAL_FILE = re.compile(r"TrainTestInfo_shuffle(\d+)\.csv")


@dataclass
class Shuffle:
    """One shuffle: which groups train, and the images of each fraction's partitions."""

    index: int  # 1-based, as DeepLabCut numbers shuffles
    train_groups: list[str]
    ood_groups: list[str]
    ood: list[str]
    train: dict[str, list[str]]  # fraction key ("0.5") -> training images
    within: dict[str, list[str]]  # fraction key -> test-within images

    def partitions(self, fraction: float) -> dict[str, list[str]]:
        key = fraction_key(fraction)
        if key not in self.train:
            raise PoseshiftError(
                f"shuffle {self.index} has no fraction {key}; available: {sorted(self.train)}"
            )
        return {"train": self.train[key], "within": self.within[key], "ood": self.ood}


@dataclass
class Split:
    name: str
    scheme: str
    seed: int
    fractions: list[float]
    shuffles: list[Shuffle]
    source: str = "generated"  # or the official files it was read from

    def shuffle(self, index: int) -> Shuffle:
        for shuffle in self.shuffles:
            if shuffle.index == index:
                return shuffle
        raise PoseshiftError(
            f"split {self.name!r} has no shuffle {index}; it has {[s.index for s in self.shuffles]}"
        )

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Split:
        shuffles = [Shuffle(**s) for s in data["shuffles"]]
        return cls(**{**data, "shuffles": shuffles})


def fraction_key(fraction: float) -> str:
    return f"{float(fraction):g}"


def _take(n: int, fraction: float, keep_one_out: bool) -> int:
    """How many of n items a fraction takes: rounded half up, at least one."""
    k = math.floor(fraction * n + 0.5)
    upper = n - 1 if keep_one_out and n > 1 else n
    return max(1, min(k, upper))


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    values = sorted({float(f) for f in fractions})
    if not values or any(not 0 < f < 1 for f in values):
        raise PoseshiftError(f"fractions must lie strictly between 0 and 1, got {list(fractions)}")
    return values


def group_split(
    dataset: PoseDataset,
    train_groups: int,
    shuffles: int = 3,
    fractions: Sequence[float] = (0.05, 0.1, 0.2, 0.5, 0.9),
    seed: int = 0,
    name: str | None = None,
) -> Split:
    """Horse-10 scheme: ``train_groups`` groups train, the rest are out of domain.

    Within each training group the frames are permuted once per shuffle and each fraction
    takes a prefix, so every training group contributes and fractions are nested.
    """
    fractions = _check_fractions(fractions)
    names = sorted(set(dataset.groups))
    if not 0 < train_groups < len(names):
        raise PoseshiftError(
            f"--train-groups must be between 1 and {len(names) - 1} (the project has "
            f"{len(names)} groups); with one group use --scheme random"
        )
    by_group = {g: [i for i, x in enumerate(dataset.groups) if x == g] for g in names}
    result = []
    for index in range(1, shuffles + 1):
        rng = np.random.default_rng([seed, index])
        chosen = sorted(rng.choice(names, size=train_groups, replace=False).tolist())
        order = {g: rng.permutation(by_group[g]).tolist() for g in chosen}
        train, within = {}, {}
        for f in fractions:
            cut = {g: _take(len(order[g]), f, keep_one_out=False) for g in chosen}
            train[fraction_key(f)] = _names(
                dataset, [i for g in chosen for i in order[g][: cut[g]]]
            )
            within[fraction_key(f)] = _names(
                dataset, [i for g in chosen for i in order[g][cut[g] :]]
            )
        ood_groups = [g for g in names if g not in chosen]
        ood = _names(dataset, [i for g in ood_groups for i in by_group[g]])
        result.append(Shuffle(index, chosen, ood_groups, ood, train, within))
    return Split(name or f"horse10-g{train_groups}-s{seed}", "horse10", seed, fractions, result)


def random_split(
    dataset: PoseDataset,
    shuffles: int = 1,
    fractions: Sequence[float] = (0.95,),
    seed: int = 0,
    name: str | None = None,
) -> Split:
    """DeepLabCut's own scheme: frames of all groups pooled, no out-of-domain set."""
    fractions = _check_fractions(fractions)
    result = []
    for index in range(1, shuffles + 1):
        order = np.random.default_rng([seed, index]).permutation(len(dataset)).tolist()
        train, within = {}, {}
        for f in fractions:
            cut = _take(len(order), f, keep_one_out=True)
            train[fraction_key(f)] = _names(dataset, order[:cut])
            within[fraction_key(f)] = _names(dataset, order[cut:])
        result.append(Shuffle(index, sorted(set(dataset.groups)), [], [], train, within))
    return Split(name or f"random-s{seed}", "random", seed, fractions, result)


def default_split(dataset: PoseDataset, seed: int = 0) -> Split:
    """What ``poseshift train PROJECT`` uses without --split: config.yaml's TrainingFraction."""
    fractions = dataset.config.get("TrainingFraction") or [0.95]
    return random_split(dataset, 1, fractions, seed, name=f"default-s{seed}")


def _names(dataset: PoseDataset, indices: Sequence[int]) -> list[str]:
    """Image names in project order (stable files, easy diffs)."""
    return [dataset.images[i] for i in sorted(indices)]


# ----------------------------------------------------------------------------- official files


def shuffle_number(path: str | Path) -> int:
    """K of ``TrainTestInfo_shuffleK.csv``: the paper's shuffle number, kept as the index."""
    match = OFFICIAL_FILE.fullmatch(Path(path).name)
    if match is None:
        raise PoseshiftError(
            f"split file {path}: official split files are named TrainTestInfo_shuffle<K>.csv "
            "(K: the shuffle number); rename it"
        )
    return int(match.group(1))


def official_files(folder: str | Path, shuffles: int) -> list[Path]:
    """The official split files of ``folder`` with the ``shuffles`` lowest numbers, in order
    of number (shuffle 2 before 10, whichever files are there)."""
    found = [
        p
        for p in Path(folder).glob("TrainTestInfo_shuffle*.csv")
        if OFFICIAL_FILE.fullmatch(p.name)
    ]
    return sorted(found, key=shuffle_number)[:shuffles]


def read_official_shuffle(path: Path) -> dict[str, list[str]]:
    """One ``TrainTestInfo_shuffleK.csv``: image paths per column, padding dropped.

    An image listed twice (in one column, or in two) is refused: it would be trained on and
    tested, or weigh double in a metric.
    """
    try:
        table = pd.read_csv(path, index_col=0)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PoseshiftError(f"split file {path} cannot be read: {exc}") from None
    missing = [c for c in OFFICIAL_COLUMNS if c not in table.columns]
    if missing:
        raise PoseshiftError(
            f"split file {path} lacks column {missing[0]!r}; expected {list(OFFICIAL_COLUMNS)}"
        )
    columns = {column: table[column].dropna().astype(str).tolist() for column in OFFICIAL_COLUMNS}
    seen: dict[str, str] = {}  # image -> the column it was first listed in
    for column, images in columns.items():
        for image in images:
            if image in seen:
                where = "twice in" if seen[image] == column else f"in {seen[image]} and in"
                raise PoseshiftError(
                    f"split file {path}: image {image!r} is listed {where} {column}; list each "
                    "image once"
                )
            seen[image] = column
    return {
        part: columns[column] for part, column in zip(PARTITIONS, OFFICIAL_COLUMNS, strict=True)
    }


def official_split(
    dataset: PoseDataset,
    files: Sequence[Path],
    fractions: Sequence[float] = (0.05, 0.1, 0.2, 0.5, 0.9),
    seed: int = 0,
    name: str = "horse10-official",
) -> Split:
    """The paper's shuffles from the Horse-10 files; other fractions are drawn nested.

    The files hold one condition (about half of each training horse's frames); the fraction
    nearest to it is that exact split. Smaller fractions are seeded subsets of its training
    images; larger ones add seeded test-within images, so all fractions stay nested.
    """
    fractions = _check_fractions(fractions)
    known = set(dataset.images)
    shuffles = []
    numbered: dict[int, Path] = {}
    for path in files:
        index = shuffle_number(path)
        if index in numbered:
            raise PoseshiftError(
                f"split files {numbered[index]} and {path} are both shuffle {index}; keep one"
            )
        numbered[index] = Path(path)
        parts = read_official_shuffle(Path(path))
        for part, images in parts.items():
            unknown = [x for x in images if x not in known]
            if unknown:
                raise PoseshiftError(
                    f"{path}: {len(unknown)} {part} image(s) are not in project "
                    f"{dataset.root}, e.g. {unknown[0]!r}; is this the Horse-30 project?"
                )
        rng = np.random.default_rng([seed, index])
        official_train, official_within = parts["train"], parts["within"]
        pool = list(rng.permutation(official_train)) + list(rng.permutation(official_within))
        total = len(pool)
        official_ratio = len(official_train) / total
        anchor = min(fractions, key=lambda f: abs(f - official_ratio))
        train, within = {}, {}
        for f in fractions:
            cut = len(official_train) if f == anchor else _take(total, f, keep_one_out=True)
            if f < anchor:
                cut = min(cut, len(official_train))
            elif f > anchor:
                cut = max(cut, len(official_train))
            chosen, rest = set(pool[:cut]), set(pool[cut:])
            train[fraction_key(f)] = [x for x in dataset.images if x in chosen]
            within[fraction_key(f)] = [x for x in dataset.images if x in rest]
        group_of = dict(zip(dataset.images, dataset.groups, strict=True))
        train_groups = sorted({group_of[x] for x in official_train})
        ood_groups = sorted({group_of[x] for x in parts["ood"]})
        shuffles.append(Shuffle(index, train_groups, ood_groups, parts["ood"], train, within))
    source = ", ".join(Path(p).name for p in files)
    return Split(name, "horse10", seed, fractions, shuffles, source=f"official files: {source}")


# ----------------------------------------------------------------------------- storage


def splits_dir(project: str | Path) -> Path:
    return Path(project) / "splits"


def split_path(project: str | Path, name: str) -> Path:
    """``PROJECT/splits/<name>.json``; a name that would lead elsewhere is refused."""
    # Names come from --name / --split and from plan files: never let one leave splits/.
    return safe_child(splits_dir(project), name, "split name", suffix=".json")


def save_split(project: str | Path, split: Split, force: bool = False) -> Path:
    """Store a split; an existing different split of that name is kept unless forced."""
    path = split_path(project, split.name)
    data = split.to_json()
    if path.exists() and not force:
        if _read_split_file(path) == json.loads(json.dumps(data)):
            return path
        raise PoseshiftError(
            f"split {path} exists with different content and runs may refer to it; "
            "choose another --name or pass --force"
        )
    return write_json_atomic(path, data)


def list_splits(project: str | Path) -> list[str]:
    return sorted(p.stem for p in splits_dir(project).glob("[!.]*.json"))  # not a temp file


def load_split(project: str | Path, name: str) -> Split:
    path = split_path(project, name)
    if not path.is_file():
        raise PoseshiftError(
            f"no split {name!r} in {splits_dir(project)} (available: {list_splits(project)}); "
            "create it with 'poseshift split PROJECT'"
        )
    try:
        return Split.from_json(_read_split_file(path))
    except (TypeError, KeyError) as exc:
        raise PoseshiftError(f"split file {path} is damaged ({exc}); create it again") from None


def _read_split_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoseshiftError(
            f"split file {path} is damaged ({exc}); create it again (split create --force)"
        ) from None
