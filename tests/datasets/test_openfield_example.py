"""DeepLabCut's openfield example: shipped manifest, local lookup, loopback download, CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import OPENFIELD, SHARED
from poseshift.cli import app
from poseshift.datasets import openfield as openfield_example
from poseshift.datasets.openfield import (
    OPENFIELD_COMMIT,
    OPENFIELD_NAME,
    examples_dir,
    fetch_openfield,
    locate_openfield,
    openfield_files,
    openfield_problem,
    openfield_project,
    shared_openfield,
)
from poseshift.download import RemoteFile
from poseshift.errors import PoseshiftError

FAKE = {"config.yaml": b"Task: openfield\n", "videos/m3v1mp4.mp4": b"\x00mp4" * 5000}


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private examples cache, the real shared mirror, no proxy, the default URL."""
    monkeypatch.setenv("POSESHIFT_EXAMPLES_DIR", str(tmp_path / "examples"))
    monkeypatch.setenv("POSESHIFT_SHARED", str(SHARED.parent))
    for name in ("POSESHIFT_OPENFIELD_URL", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "examples"


@pytest.fixture
def no_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSESHIFT_SHARED", str(tmp_path / "no-shared"))


@pytest.fixture
def fake_manifest(file_server, monkeypatch: pytest.MonkeyPatch):
    """Two small files served on loopback in place of the 120 real ones."""
    for name, body in FAKE.items():
        file_server.files[f"/of/{name}"] = body
    monkeypatch.setenv("POSESHIFT_OPENFIELD_URL", f"{file_server.base}/of")

    def fake(base_url: str | None = None) -> list[RemoteFile]:
        base = base_url or f"{file_server.base}/of"
        return [
            RemoteFile(f"{base}/{n}", n, len(b), hashlib.sha256(b).hexdigest())
            for n, b in FAKE.items()
        ]

    monkeypatch.setattr(openfield_example, "openfield_files", fake)
    return file_server


def test_real_manifest_describes_the_published_folder(openfield: Path) -> None:
    files = openfield_files()
    assert len(files) == 120 and len({f.name for f in files}) == 120
    assert sum(f.size for f in files) == 29_300_163
    assert sum(f.name.endswith(".png") for f in files) == 116
    by_name = {f.name: f for f in files}
    for name in ("config.yaml", "labeled-data/m4s1/CollectedData_Pranav.h5"):
        data = (openfield / name).read_bytes()
        assert by_name[name].size == len(data)
        assert by_name[name].sha256 == hashlib.sha256(data).hexdigest()
    url = by_name["videos/m3v1mp4.mp4"].url
    assert url == (
        f"https://raw.githubusercontent.com/DeepLabCut/DeepLabCut/{OPENFIELD_COMMIT}"
        f"/examples/{OPENFIELD_NAME}/videos/m3v1mp4.mp4"
    )


def test_base_url_comes_from_argument_or_environment(monkeypatch) -> None:
    assert openfield_files("http://mirror/x/")[0].url == "http://mirror/x/config.yaml"
    monkeypatch.setenv("POSESHIFT_OPENFIELD_URL", "http://127.0.0.1:9/of")
    assert openfield_files()[0].url == "http://127.0.0.1:9/of/config.yaml"


def test_examples_dir_defaults_to_the_user_cache(monkeypatch, environment: Path) -> None:
    assert examples_dir() == environment
    monkeypatch.delenv("POSESHIFT_EXAMPLES_DIR")
    assert examples_dir() == Path.home() / ".cache" / "poseshift" / "examples"


def test_locate_finds_the_shared_copy(openfield: Path) -> None:
    assert shared_openfield() == OPENFIELD.resolve()
    assert locate_openfield() == OPENFIELD.resolve()
    assert openfield_project(download=False) == OPENFIELD.resolve()
    assert openfield_problem() is None


def test_locate_prefers_a_complete_cached_copy(openfield: Path, environment: Path) -> None:
    cached = environment / OPENFIELD_NAME
    for file in openfield_files():  # links: sizes are what the quick check looks at
        (cached / file.name).parent.mkdir(parents=True, exist_ok=True)
        (cached / file.name).symlink_to(openfield / file.name)
    assert locate_openfield() == cached
    (cached / "videos" / "m3v1mp4.mp4").unlink()
    assert locate_openfield() == OPENFIELD.resolve()  # incomplete: the shared mirror wins


def test_explicit_folder_is_used_or_refused(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    with pytest.raises(PoseshiftError, match=r"--openfield .*mine holds no config.yaml"):
        locate_openfield(tmp_path / "mine")
    assert "no config.yaml" in openfield_problem(tmp_path / "mine")
    (tmp_path / "mine" / "config.yaml").write_text("Task: x\n")
    assert locate_openfield(tmp_path / "mine") == tmp_path / "mine"


def test_fetch_from_loopback_then_cached(fake_manifest, environment: Path, no_shared) -> None:
    assert locate_openfield() is None
    path = openfield_project()
    assert path == environment / OPENFIELD_NAME
    assert (path / "videos" / "m3v1mp4.mp4").read_bytes() == FAKE["videos/m3v1mp4.mp4"]
    assert len(fake_manifest.requests) == 2
    assert locate_openfield() == path
    assert fetch_openfield() == path and len(fake_manifest.requests) == 2


def test_offline_is_one_line_and_makes_nothing(
    closed_url: str, environment: Path, no_shared, monkeypatch
) -> None:
    monkeypatch.setenv("POSESHIFT_OPENFIELD_URL", closed_url)
    problem = openfield_problem()
    assert problem is not None and "\n" not in problem
    assert problem.startswith("DeepLabCut's openfield example project: 120 file(s) missing")
    assert "is unreachable (ConnectionRefusedError)" in problem and "--openfield PATH" in problem
    with pytest.raises(PoseshiftError) as caught:
        openfield_project()
    assert str(caught.value) == problem  # the preflight says what the fetch would say
    assert not environment.exists()
    with pytest.raises(PoseshiftError, match="downloads are off"):
        openfield_project(download=False)


def test_reachable_host_is_no_problem_and_fetches_nothing(fake_manifest, no_shared) -> None:
    assert openfield_problem() is None
    assert fake_manifest.requests == []  # only a TCP connection was opened


def test_cli_fetch_example(fake_manifest, tmp_path: Path) -> None:
    dest = tmp_path / "here"
    result = CliRunner().invoke(app, ["data", "fetch-example", "openfield", "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert "LGPL-3.0" in result.output and str(dest) in result.output
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == ["config.yaml", "m3v1mp4.mp4"]
    wrong = CliRunner().invoke(app, ["data", "fetch-example", "horse10"])
    assert wrong.exit_code == 2 and "only 'openfield'" in wrong.output


def test_cli_offline_error(closed_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POSESHIFT_OPENFIELD_URL", closed_url)
    result = CliRunner().invoke(app, ["data", "fetch-example", "openfield"])
    assert result.exit_code == 2
    [line] = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert "--openfield PATH" in line and "unreachable" in line


def test_real_manifest_fetches_from_a_mirror(
    file_server, openfield: Path, environment: Path, no_shared, monkeypatch
) -> None:
    """All 120 real files through loopback: names, URLs and hashes fit together."""
    for file in openfield_files():
        file_server.files[f"/of/{file.name}"] = (openfield / file.name).read_bytes()
    monkeypatch.setenv("POSESHIFT_OPENFIELD_URL", f"{file_server.base}/of")
    path = openfield_project()
    assert path == environment / OPENFIELD_NAME
    assert len(file_server.requests) == 120
    assert (path / "config.yaml").read_bytes() == (openfield / "config.yaml").read_bytes()
    assert locate_openfield() == path and openfield_problem() is None
