"""Horse-C: corrupted copies of a split's test images, one DeepLabCut project per corruption.

``make_corruptions`` writes ``OUT/<corruption>/<severity>/`` as complete projects (same image
paths, same labels, the source's config.yaml), so ``load_project``, evaluation and every other
tool work on a corrupted copy unchanged; ``OUT/manifest.json`` records what was made from
what. Each copy is written to a staging folder and renamed when complete, so an interrupted
run leaves no half-written copy and a re-run only makes the missing ones. One image's noise
depends on (seed, corruption, severity, image path) alone: the same seed gives the same bytes,
whatever the order or number of workers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from poseshift.data.project import (
    PoseDataset,
    labels_frame,
    load_project,
    read_image,
    write_labels,
)
from poseshift.data.splits import load_split
from poseshift.datasets.horse_c.corruptions import CORRUPTIONS, SEVERITIES, corrupt_image
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_json_atomic, write_text_atomic

MANIFEST = "manifest.json"
TEST_PARTITIONS = ("within", "ood")
# Recorded in every manifest and compared on re-runs: kept word for word (it names the module
# as it was called when the first copies were made) so existing copies stay reusable.
IMPLEMENTATION = (
    "poseshift.data.corruptions: ImageNet-C parameters (Hendrycks & Dietterich 2019) for "
    "any image size as in bethgelab/imagecorruptions; glass_blur vectorized, frost texture "
    "generated"
)


def parse_corruptions(text: str) -> list[str]:
    """``all`` or names separated by commas, in ImageNet-C order."""
    if text.strip() == "all":
        return list(CORRUPTIONS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown or not names:
        raise PoseshiftError(
            f"--corruptions: unknown corruption {unknown[0] if unknown else text!r}; use 'all' "
            f"or names from {', '.join(CORRUPTIONS)}"
        )
    return [n for n in CORRUPTIONS if n in names]


def parse_severities(text: str) -> list[int]:
    """``1-5``, ``3`` or ``1,3,5``."""
    values: set[int] = set()
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            low, _, high = part.partition("-")
            values.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise PoseshiftError(f"--severities takes e.g. 1-5 or 1,3,5, got {text!r}") from None
    if not values or not values <= set(SEVERITIES):
        raise PoseshiftError(f"--severities must lie between 1 and 5, got {text!r}")
    return sorted(values)


def corruption_images(
    dataset: PoseDataset, split: str, shuffle: int, partitions: Sequence[str]
) -> dict[str, list[str]]:
    """Test images of one shuffle, in project order: ``within`` is the union over fractions,
    so one corrupted set serves the runs of every training fraction of that shuffle."""
    bad = [p for p in partitions if p not in TEST_PARTITIONS]
    if bad or not partitions:
        raise PoseshiftError(f"--partitions takes within and/or ood, got {list(partitions)}")
    cell = load_split(dataset.root, split).shuffle(shuffle)
    chosen = {
        "within": {x for images in cell.within.values() for x in images},
        "ood": set(cell.ood),
    }
    return {p: [x for x in dataset.images if x in chosen[p]] for p in partitions}


def _settings(
    dataset: PoseDataset, split: str, shuffle: int, parts: dict[str, list[str]], seed: int
) -> dict:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return {
        "source_project": str(dataset.root.resolve()),
        "split": split,
        "shuffle": shuffle,
        "seed": seed,
        "images_sha256": digest,
        "implementation": IMPLEMENTATION,
    }


def read_manifest(out_dir: str | Path) -> dict:
    """``OUT/manifest.json``; a folder without one is not a set of corruptions."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise PoseshiftError(
            f"{out_dir} holds no {MANIFEST}: make corrupted copies with "
            "'poseshift data corrupt PROJECT --split NAME --out DIR'"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PoseshiftError(f"{path} is damaged ({exc}); make the corruptions again") from None


def _image_seed(seed: int, corruption: str, severity: int, image: str) -> list[int]:
    return [seed, list(CORRUPTIONS).index(corruption), severity, zlib.crc32(image.encode())]


def _corrupt_file(job: tuple[str, str, str, int, list[int]]) -> None:
    """Read, corrupt, write one image (a top-level function so worker processes can run it)."""
    source, target, corruption, severity, seed = job
    image = read_image(Path(source))
    out = corrupt_image(image, corruption, severity, np.random.default_rng(seed))
    Image.fromarray(out).save(target, quality=100)


def _write_copy(
    dataset: PoseDataset,
    rows: np.ndarray,
    folder: Path,
    final: Path,
    corruption: str,
    severity: int,
    seed: int,
    pool: ProcessPoolExecutor | None,
    advance: Callable[[int], None],
) -> None:
    jobs = []
    for i in rows.tolist():
        target = folder / dataset.images[i]
        target.parent.mkdir(parents=True, exist_ok=True)
        key = _image_seed(seed, corruption, severity, dataset.images[i])
        jobs.append((str(dataset.image_path(i)), str(target), corruption, severity, key))
    done = pool.map(_corrupt_file, jobs, chunksize=16) if pool else map(_corrupt_file, jobs)
    for _ in done:
        advance(1)
    videos = dict.fromkeys(dataset.images[i].split("/")[1] for i in rows.tolist())
    for video in videos:
        chosen = [i for i in rows.tolist() if dataset.images[i].split("/")[1] == video]
        frame = labels_frame(
            dataset.scorer,
            dataset.bodyparts,
            [dataset.images[i] for i in chosen],
            dataset.keypoints[chosen],
        )
        write_labels(folder / "labeled-data" / video, frame)
    config = {**dataset.config, "project_path": str(final.resolve())}
    write_text_atomic(folder / "config.yaml", yaml.safe_dump(config, sort_keys=False))


def make_corruptions(
    project: str | Path,
    split: str,
    out_dir: str | Path,
    *,
    shuffle: int = 1,
    partitions: Sequence[str] = TEST_PARTITIONS,
    corruptions: Sequence[str] = tuple(CORRUPTIONS),
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    workers: int = 1,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write the corrupted copies that are missing and return the manifest.

    ``progress(done, total)`` is called per image. An existing OUT made with other settings
    (source, split, shuffle, images, seed) is refused unless ``force`` (then remade).
    """
    corruptions = parse_corruptions(",".join(corruptions))
    severities = parse_severities(",".join(str(s) for s in severities))
    dataset = load_project(project)
    parts = corruption_images(dataset, split, shuffle, list(partitions))
    wanted = set().union(*parts.values())
    rows = dataset.indices_of([x for x in dataset.images if x in wanted])
    if not len(rows):
        raise PoseshiftError(
            f"split {split!r} shuffle {shuffle} has no {'/'.join(partitions)} images to corrupt"
        )
    out_dir = Path(out_dir)
    settings = _settings(dataset, split, shuffle, parts, seed)
    manifest = {"format": 1, **settings, "partitions": parts, "done": {}}
    if (out_dir / MANIFEST).exists():
        old = read_manifest(out_dir)
        if any(old.get(k) != v for k, v in settings.items()):
            if not force:
                raise PoseshiftError(
                    f"{out_dir} holds corruptions made with other settings (see {MANIFEST}): "
                    "choose another --out or pass --force to remake them"
                )
            for stale in set(old.get("done", {})) & set(CORRUPTIONS):
                shutil.rmtree(out_dir / stale, ignore_errors=True)
        elif not force:
            manifest["done"] = old.get("done", {})
    todo = [
        (c, s)
        for c in corruptions
        for s in severities
        if force or s not in manifest["done"].get(c, [])
    ]
    for corruption in corruptions:  # left by a run that was killed mid-copy
        for stale in (out_dir / corruption).glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
    total, count = len(todo) * len(rows), 0

    def advance(n: int) -> None:
        nonlocal count
        count += n
        if progress:
            progress(count, total)

    pool = ProcessPoolExecutor(workers) if workers > 1 and todo else None
    try:
        for corruption, severity in todo:
            final = out_dir / corruption / str(severity)
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".staging-{severity}-", dir=final.parent))
            try:
                _write_copy(
                    dataset, rows, staging, final, corruption, severity, seed, pool, advance
                )
                if final.exists():
                    shutil.rmtree(final)
                staging.rename(final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            done = set(manifest["done"].get(corruption, [])) | {severity}
            manifest["done"][corruption] = sorted(done)
            write_json_atomic(out_dir / MANIFEST, manifest)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    write_json_atomic(out_dir / MANIFEST, manifest)
    return manifest
