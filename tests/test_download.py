"""``poseshift.download`` against a real loopback HTTP server: cache, resume, checks, offline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from poseshift.download import RemoteFile, fetch_files, unreachable
from poseshift.errors import PoseshiftError

BODIES = {
    "config.yaml": b"Task: tiny\n" * 7,
    "labeled-data/a/img0.png": bytes(range(256)) * 40,
    "videos/clip.mp4": b"\x00\x01video" * 3000,
}


def remote(server, bodies: dict[str, bytes] = BODIES) -> list[RemoteFile]:
    """Serve ``bodies`` and describe them as a manifest would."""
    files = []
    for name, body in bodies.items():
        server.files[f"/{name}"] = body
        sha = hashlib.sha256(body).hexdigest()
        files.append(RemoteFile(f"{server.base}/{name}", name, len(body), sha))
    return files


def every_file(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_fetch_then_cached(file_server, tmp_path: Path) -> None:
    files = remote(file_server)
    seen: list[tuple[str, int, int | None]] = []
    dest = tmp_path / "dest"
    assert fetch_files(files, dest, progress=lambda *a: seen.append(a)) == dest
    assert every_file(dest) == sorted(BODIES)
    assert all((dest / n).read_bytes() == b for n, b in BODIES.items())
    assert len(file_server.requests) == 3
    total = sum(map(len, BODIES.values()))
    assert seen[-1] == ("download", total, total)  # one bar over all files
    fetch_files(files, dest)
    assert len(file_server.requests) == 3  # everything verified locally, nothing fetched


def test_only_wrong_or_missing_files_are_fetched(file_server, tmp_path: Path) -> None:
    files = remote(file_server)
    fetch_files(files, tmp_path)
    (tmp_path / "config.yaml").write_bytes(b"X" * len(BODIES["config.yaml"]))  # same size
    (tmp_path / "videos" / "clip.mp4").unlink()
    file_server.requests.clear()
    fetch_files(files, tmp_path)
    assert sorted(p for p, _ in file_server.requests) == ["/config.yaml", "/videos/clip.mp4"]
    assert (tmp_path / "config.yaml").read_bytes() == BODIES["config.yaml"]


def test_interrupted_download_resumes(file_server, tmp_path: Path) -> None:
    [video] = remote(file_server, {"videos/clip.mp4": BODIES["videos/clip.mp4"]})
    file_server.cut_next = True
    fetch_files([video], tmp_path)
    half = video.size // 2
    assert file_server.ranges == [None, f"bytes={half}-"]
    assert (tmp_path / video.name).read_bytes() == BODIES[video.name]
    assert every_file(tmp_path) == [video.name]  # no .part left behind


def test_partial_file_from_an_earlier_run_is_continued(file_server, tmp_path: Path) -> None:
    [video] = remote(file_server, {"clip.mp4": BODIES["videos/clip.mp4"]})
    (tmp_path / "clip.mp4.part").write_bytes(BODIES["videos/clip.mp4"][:1000])
    fetch_files([video], tmp_path)
    assert file_server.ranges == ["bytes=1000-"]
    assert (tmp_path / "clip.mp4").read_bytes() == BODIES["videos/clip.mp4"]


def test_wrong_sha256_is_one_line_and_keeps_nothing(file_server, tmp_path: Path) -> None:
    [good] = remote(file_server, {"labeled-data/a/img0.png": BODIES["labeled-data/a/img0.png"]})
    bad = RemoteFile(good.url, good.name, good.size, "0" * 64)
    with pytest.raises(PoseshiftError) as caught:
        fetch_files([bad], tmp_path)
    message = str(caught.value)
    assert "\n" not in message and good.url in message
    assert "0" * 64 in message and good.sha256 in message
    assert every_file(tmp_path) == []


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../../b", "a\\b", "C:/x", "", "a//b"])
def test_unsafe_names_are_refused_before_any_request(file_server, tmp_path, name) -> None:
    files = [*remote(file_server), RemoteFile(f"{file_server.base}/x", name, 1, "0" * 64)]
    with pytest.raises(PoseshiftError, match="refusing file name"):
        fetch_files(files, tmp_path / "dest")
    assert file_server.requests == []
    assert not (tmp_path / "dest").exists() and not (tmp_path / "x").exists()


def test_unreachable_host_is_one_line_and_makes_no_files(closed_url: str, tmp_path) -> None:
    files = [RemoteFile(f"{closed_url}/{n}", n, len(b), "0" * 64) for n, b in BODIES.items()]
    dest = tmp_path / "dest"
    with pytest.raises(PoseshiftError) as caught:
        fetch_files(files, dest, what="the tiny project")
    message = str(caught.value)
    port = closed_url.rsplit(":", 1)[1]
    assert message.startswith(f"the tiny project: 3 file(s) missing from {dest} and ")
    assert f"127.0.0.1:{port} is unreachable (ConnectionRefusedError)" in message
    assert "config.yaml" in message and "\n" not in message
    assert not dest.exists()


def test_unreachable_checks_the_proxy_when_one_is_set(
    file_server, closed_url: str, monkeypatch
) -> None:
    assert unreachable(file_server.base) == ""
    assert "is unreachable (ConnectionRefusedError)" in unreachable(closed_url)
    monkeypatch.setenv("HTTPS_PROXY", closed_url)
    assert unreachable(file_server.base).startswith(closed_url.removeprefix("http://"))
    monkeypatch.setenv("HTTPS_PROXY", file_server.base.removeprefix("http://"))  # no scheme
    assert unreachable(closed_url) == ""


def test_nothing_to_do_needs_no_network(closed_url: str, tmp_path: Path) -> None:
    body = BODIES["config.yaml"]
    (tmp_path / "config.yaml").write_bytes(body)
    sha = hashlib.sha256(body).hexdigest()
    files = [RemoteFile(f"{closed_url}/config.yaml", "config.yaml", len(body), sha)]
    assert fetch_files(files, tmp_path) == tmp_path
