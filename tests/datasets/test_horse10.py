"""``data fetch horse10`` against a local HTTP server: resume, checksums, unsafe archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.data.project import labels_frame, load_project, write_labels
from poseshift.datasets import horse10
from poseshift.datasets.horse10 import PROJECT_NAME, fetch_horse10
from poseshift.errors import PoseshiftError
from poseshift.study.plan import expand, load_plan

BODYPARTS = [
    "Nose",
    "Eye",
    "Nearknee",
    "Nearfrontfetlock",
    "Nearfrontfoot",
    "Offknee",
    "Offfrontfetlock",
    "Offfrontfoot",
    "Shoulder",
    "Midshoulder",
    "Elbow",
    "Girth",
    "Wither",
    "Nearhindhock",
    "Nearhindfetlock",
    "Nearhindfoot",
    "Hip",
    "Stifle",
    "Offhindhock",
    "Offhindfetlock",
    "Offhindfoot",
    "Ischium",
]
HORSES = ("BrownHorseinShadow", "Sample1", "Sample17")


def horse10_archive(path: Path, work: Path, config: dict | None = None) -> bytes:
    """The official layout in miniature: horse10/labeled-data/<horse>/NNNN.png + labels."""
    rng = np.random.default_rng(0)
    root = work / "horse10"
    for horse in HORSES:
        images = [f"labeled-data/{horse}/{n:04d}.png" for n in (144, 357)]
        for name in images:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / name), rng.integers(0, 255, (32, 48, 3), np.uint8))
        points = rng.uniform([1, 1], [46, 30], (len(images), len(BODYPARTS), 2))
        frame = labels_frame("Byron", BODYPARTS, images, points, index_style="path")
        write_labels(root / "labeled-data" / horse, frame)
    if config is not None:
        (root / "config.yaml").write_text(yaml.safe_dump(config))
    with tarfile.open(path, "w:xz") as tar:
        tar.add(root, arcname="horse10")
    return path.read_bytes()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("archive")
    horse10_archive(work / "horse10.tar.xz", work)
    return work / "horse10.tar.xz"


@pytest.fixture(scope="module")
def split_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("splits")
    for name in horse10.SPLIT_FILES:
        (folder / name).write_text(f"stand-in for {name}\n")
    return folder


@pytest.fixture
def server(file_server, archive: Path):
    """The shared loopback server (tests/conftest.py) serving the miniature archive."""
    file_server.body = file_server.files["/horse10.tar.xz"] = archive.read_bytes()
    file_server.url = f"{file_server.base}/horse10.tar.xz"
    return file_server


def test_interrupted_download_resumes_and_installs(server, tmp_path: Path, split_files) -> None:
    server.cut_next = True
    result = fetch_horse10(tmp_path, url=server.url, split_files=split_files)
    half = len(server.body) // 2
    assert server.ranges == [None, f"bytes={half}-"]
    assert result.sha256 == hashlib.sha256(server.body).hexdigest()
    assert result.size == len(server.body) and not result.official
    assert result.project == tmp_path / PROJECT_NAME
    dataset = load_project(result.project)
    assert dataset.scorer == "Byron" and dataset.bodyparts == BODYPARTS
    assert len(dataset) == 6 and dataset.group_names == sorted(HORSES)
    assert dataset.config["TrainingFraction"] == [0.05, 0.1, 0.2, 0.5, 0.9]
    assert result.split_files == list(horse10.SPLIT_FILES)
    assert (result.project / "Horsescale.h5").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [PROJECT_NAME, "horse10.tar.xz"]
    again = fetch_horse10(tmp_path, url=server.url)
    assert again.already and len(server.ranges) == 2


def test_server_ignoring_range_restarts_cleanly(server, tmp_path: Path) -> None:
    (tmp_path / "horse10.tar.xz.part").write_bytes(b"stale bytes " * 50)
    server.ignore_range = True
    result = fetch_horse10(tmp_path, url=server.url, sha256=hashlib.sha256(server.body).hexdigest())
    assert server.ranges == ["bytes=600-"]
    assert (tmp_path / "horse10.tar.xz").read_bytes() == server.body
    assert len(load_project(result.project)) == 6


def test_wrong_checksum_keeps_nothing(server, tmp_path: Path) -> None:
    with pytest.raises(PoseshiftError, match=r"sha256 of .* expected 0{64}.*deleted"):
        fetch_horse10(tmp_path, url=server.url, sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_default_url_must_serve_the_official_size(server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(horse10, "DEFAULT_URL", server.url)
    with pytest.raises(PoseshiftError, match=r"official archive has 806,263,192"):
        fetch_horse10(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_are_one_line(server, tmp_path: Path) -> None:
    with pytest.raises(PoseshiftError, match=r"answered HTTP 404.*--url"):
        fetch_horse10(tmp_path, url=server.url.replace("horse10", "nothing"))


def test_damaged_archive_is_refused(archive: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar.xz"
    broken.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    dest = tmp_path / "dest"
    with pytest.raises(PoseshiftError, match=r"cannot be extracted .* damaged"):
        fetch_horse10(dest, archive=broken)
    assert list(dest.iterdir()) == []


def _unsafe_member(kind: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo("horse10/labeled-data/x")
    if kind == "dotdot":
        member.name = "horse10/../../evil.txt"
    elif kind == "absolute":
        member.name = "/tmp/evil.txt"
    elif kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
    elif kind == "hardlink":
        member.type, member.linkname = tarfile.LNKTYPE, "../outside.txt"
    else:
        member.type = tarfile.CHRTYPE
    return member


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_unsafe_archives_are_refused(kind: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.xz"
    with tarfile.open(bad, "w:xz") as tar:
        tar.addfile(tarfile.TarInfo("horse10/labeled-data"), None)
        member = _unsafe_member(kind)
        payload = b"pwned" if member.isfile() else None
        member.size = len(payload or b"")
        tar.addfile(member, io.BytesIO(payload) if payload else None)
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(PoseshiftError, match="is refused: member"):
        fetch_horse10(dest, archive=bad)
    assert list(dest.iterdir()) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_cli_installs_from_a_local_archive(archive: Path, tmp_path: Path, split_files) -> None:
    args = ["data", "fetch", "horse10", "--archive", str(archive), "--dest", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--split-files", str(split_files)])
    assert result.exit_code == 0, result.output
    assert "CC BY-NC-SA 4.0" in result.output.splitlines()[0]
    assert hashlib.sha256(archive.read_bytes()).hexdigest() in result.output
    assert "6 frames of 3 groups" in result.output
    assert "already installed" in CliRunner().invoke(app, args).output
    wrong = CliRunner().invoke(app, ["data", "fetch", "coco", "--dest", str(tmp_path)])
    assert wrong.exit_code == 2 and "only 'horse10'" in wrong.output


def test_config_in_the_archive_is_kept(tmp_path: Path) -> None:
    config = {"Task": "Horses", "scorer": "Byron", "bodyparts": BODYPARTS, "date": "May8"}
    horse10_archive(tmp_path / "with-config.tar.xz", tmp_path / "work", config)
    result = fetch_horse10(tmp_path / "dest", archive=tmp_path / "with-config.tar.xz")
    assert yaml.safe_load((result.project / "config.yaml").read_text())["date"] == "May8"


def test_shipped_plans_run_unchanged_after_fetch(
    archive: Path, tmp_path: Path, split_files, monkeypatch
) -> None:
    fetch_horse10(tmp_path / "data" / "horse10", archive=archive, split_files=split_files)
    monkeypatch.chdir(tmp_path)
    for name, runs in (("paper", 184), ("wacv", 394)):
        plan = load_plan(name)
        assert (Path(plan.project) / "config.yaml").is_file()
        assert (Path(plan.split.from_files) / "TrainTestInfo_shuffle1.csv").is_file()
        assert len(expand(plan)) == runs
    shown = CliRunner().invoke(app, ["study", "plan", "paper", "--no-measure"])
    assert shown.exit_code == 0, shown.output
    assert "184 runs" in " ".join(shown.output.split())
