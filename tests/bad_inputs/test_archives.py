"""Hostile tar archives (issue #18): tricks and bombs are refused and leave nothing behind.

Every archive is generated here and harmless: its "payload" is plain text, and the tests
assert that it never lands outside the destination and that no staging folder is left.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from refusals import one_line_error

from poseshift.datasets import horse10
from poseshift.errors import PoseshiftError
from poseshift.untar import extract_safely, member_refusal


def add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, **fields) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    data = fields.pop("data", b"pwned" if kind == tarfile.REGTYPE else None)
    for key, value in fields.items():
        setattr(member, key, value)
    member.size = len(data or b"")
    tar.addfile(member, io.BytesIO(data) if data is not None else None)


def symlink_chain_archive(path: Path) -> None:
    """CVE-2025-4517's pattern: 247-char folders, one-letter links, escape -> <link>/../../."""
    folder, steps, current = "d" * 247, "abcdefghijklmnop", ""
    with tarfile.open(path, "w") as tar:
        for step in steps:
            add(tar, os.path.join(current, folder), tarfile.DIRTYPE)
            add(tar, os.path.join(current, step), tarfile.SYMTYPE, linkname=folder)
            current = os.path.join(current, folder)
        link = os.path.join("/".join(steps), "l" * 254)
        add(tar, link, tarfile.SYMTYPE, linkname="../" * len(steps))
        add(tar, "escape", tarfile.SYMTYPE, linkname=link + "/../../")
        add(tar, "escape/FILE")


def assert_nothing_left(tmp_path: Path, dest: Path) -> None:
    assert list(dest.iterdir()) == []  # no project, no hidden staging folder
    assert not list(tmp_path.rglob("FILE")) and not list(tmp_path.rglob("evil*"))


def test_symlink_chain_cannot_write_outside_dest(tmp_path: Path) -> None:
    symlink_chain_archive(tmp_path / "cve.tar")
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(PoseshiftError, match=r"is refused: member 'a' is a symbolic link") as exc:
        horse10.fetch_horse10(dest, archive=tmp_path / "cve.tar")
    assert "cve.tar" in one_line_error(exc)
    assert_nothing_left(tmp_path, dest)


HOSTILE_MEMBERS = {
    "harmless-looking symlink": (dict(kind=tarfile.SYMTYPE, linkname="x.png"), "symbolic link"),
    "hardlink": (dict(kind=tarfile.LNKTYPE, linkname="horse10/labeled-data"), "hard link"),
    "fifo": (dict(kind=tarfile.FIFOTYPE), "device or FIFO"),
    "block device": (dict(kind=tarfile.BLKTYPE), "device or FIFO"),
    "GNU volume label": (dict(kind=b"V"), "not a regular file or folder"),
}


@pytest.mark.parametrize("case", list(HOSTILE_MEMBERS))
def test_every_link_and_special_member_is_refused(case: str, tmp_path: Path) -> None:
    fields, why = HOSTILE_MEMBERS[case]
    with tarfile.open(tmp_path / "bad.tar.gz", "w:gz") as tar:
        add(tar, "horse10/labeled-data", tarfile.DIRTYPE)
        add(tar, "horse10/labeled-data/evil", fields.pop("kind"), **fields)
    dest = tmp_path / "dest"
    with pytest.raises(PoseshiftError, match=f"member 'horse10/labeled-data/evil' is (an? )?{why}"):
        horse10.fetch_horse10(dest, archive=tmp_path / "bad.tar.gz")
    assert_nothing_left(tmp_path, dest)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("horse10/../../evil.txt", "contains '..'"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        ("horse10\\..\\..\\evil.txt", "backslash"),
        ("horse10/evil\0.txt", "NUL"),
        ("horse10/" + "e" * 300, "too long"),
        ("horse10/" + "/".join(["evil"] * 300), "too long"),
    ],
)
def test_unsafe_names_are_refused(name: str, why: str, tmp_path: Path) -> None:
    assert why in (member_refusal(tarfile.TarInfo(name)) or "")
    if "\0" in name:
        return  # a tar header cannot carry NUL; the check above is the whole story
    with tarfile.open(tmp_path / "bad.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, name)
    dest = tmp_path / "dest"
    with pytest.raises(PoseshiftError, match="is refused: member") as exc:
        horse10.fetch_horse10(dest, archive=tmp_path / "bad.tar")
    assert why in one_line_error(exc) and len(str(exc.value)) < 600
    assert_nothing_left(tmp_path, dest)


def test_decompression_bomb_stops_early_and_leaves_nothing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tar.xz"
    with tarfile.open(bomb, "w:xz") as tar:
        add(tar, "horse10/labeled-data/a.png", data=bytes(600_000))
        add(tar, "horse10/labeled-data/b.png", data=bytes(8 * 1024 * 1024))
    assert bomb.stat().st_size < 10_000  # small on disk, large once expanded
    dest = tmp_path / "dest"
    with pytest.raises(PoseshiftError, match=r"'horse10/labeled-data/b.png' takes .* 1,000,000"):
        horse10.fetch_horse10(dest, archive=bomb, max_bytes=1_000_000)
    assert_nothing_left(tmp_path, dest)


def test_huge_tar_headers_are_capped_too(tmp_path: Path) -> None:
    bomb = tmp_path / "pax.tar.xz"
    with tarfile.open(bomb, "w:xz", format=tarfile.PAX_FORMAT) as tar:
        member = tarfile.TarInfo("horse10/x.png")
        member.pax_headers = {"comment": "x" * (20 * 1024 * 1024)}  # read into memory by tarfile
        tar.addfile(member, io.BytesIO(b""))
    with pytest.raises(PoseshiftError, match=r"expands to more than [\d,]+ bytes of tar data"):
        extract_safely(bomb, tmp_path / "out", max_bytes=1000)


def test_member_count_is_capped(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "many.tar", "w") as tar:
        for i in range(12):
            add(tar, f"horse10/f{i}", tarfile.DIRTYPE)
    (tmp_path / "out").mkdir()
    with pytest.raises(PoseshiftError, match="more than 10 members"):
        extract_safely(tmp_path / "many.tar", tmp_path / "out", max_members=10)


def test_ctrl_c_during_extraction_leaves_no_staging_folder(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "ok.tar", "w") as tar:
        for i in range(3):
            add(tar, f"horse10/labeled-data/v/{i}.png")

    def interrupt(stage: str, done: int, total: int | None) -> None:
        if stage == "extract":
            raise KeyboardInterrupt

    dest = tmp_path / "dest"
    with pytest.raises(KeyboardInterrupt):
        horse10.fetch_horse10(dest, archive=tmp_path / "ok.tar", progress=interrupt)
    assert list(dest.iterdir()) == []


def test_regular_files_keep_safe_modes(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "modes.tar", "w") as tar:
        add(tar, "./horse10/run.sh", mode=0o4777)
    out = tmp_path / "out"
    out.mkdir()
    assert extract_safely(tmp_path / "modes.tar", out) == 1
    assert (out / "horse10" / "run.sh").read_bytes() == b"pwned"
    assert (out / "horse10" / "run.sh").stat().st_mode & 0o7111 == 0  # no setuid, no exec
