"""Extract a downloaded dataset tar without trusting it: regular files and folders only.

``tarfile``'s own ``extract``/``extractall`` (even with ``filter="data"``) has been bypassed
with long symlink chains (CVE-2025-4517 and relatives) and does not bound how much a small
compressed archive expands to. A dataset needs no links, devices or special modes, so this
module reads members one by one and writes each regular file itself:

* every symlink, hard link, device, FIFO and any other non-regular, non-folder member is
  refused, as are names that are absolute, hold ``..``, backslashes or NUL, or are too long;
* each target path is resolved and must lie inside the destination folder; files are created
  with ``O_NOFOLLOW`` and fixed permissions (archive modes are ignored);
* the bytes written, the bytes decompressed (headers included) and the member count are
  capped, so a decompression bomb stops early instead of filling the disk.

The caller owns ``folder`` and removes it on failure (``fetch_horse10`` stages into a temp
folder it deletes in a ``finally``).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from poseshift.download import Progress, _noop
from poseshift.errors import PoseshiftError
from poseshift.fsutil import escape_problem

# The official horse10.tar.xz is 806 MB of mostly PNG images, so it expands to little more;
# 4 GiB leaves ample room for a re-packed copy while stopping a bomb well before the disk fills.
MAX_EXTRACT_BYTES = 4 * 1024**3
MAX_MEMBERS = 100_000  # Horse-30 has about 8,200 images and 30 label pairs
MAX_NAME_CHARS = 1024  # whole member name; Linux paths end at 4096 with the folder prefix
MAX_PART_BYTES = 255  # one path component on common file systems
CHUNK = 1024 * 1024


class _Refused(Exception):
    """The archive is unsafe; the message completes 'member X ...' or the archive line."""


class _CappedReader:
    """The decompressed stream, refusing to yield more than ``limit`` bytes in total.

    This bounds what tarfile itself reads into memory (pax or GNU long-name headers) too.
    """

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self.raw, self.limit, self.read_so_far = raw, limit, 0

    def read(self, size: int = -1) -> bytes:
        want = self.limit + 1 - self.read_so_far if size < 0 else size
        data = self.raw.read(max(0, min(want, self.limit + 1 - self.read_so_far)))
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise _Refused(f"expands to more than {self.limit:,} bytes of tar data")
        return data


def _decompressed(raw: BinaryIO) -> BinaryIO:
    """The tar stream inside gzip, bzip2 or xz (what tarfile's 'r|*' understands)."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    return raw


def shown(name: str) -> str:
    """A member name for a one-line message: quoted, long ones cut in the middle."""
    return repr(name if len(name) <= 120 else f"{name[:60]}...{name[-50:]}")


def member_refusal(member: tarfile.TarInfo) -> str | None:
    """Why a member may not be extracted (completing "member 'x' ..."), or None."""
    if member.issym():
        return f"is a symbolic link (to {shown(member.linkname)}); dataset archives need none"
    if member.islnk():
        return f"is a hard link (to {shown(member.linkname)}); dataset archives need none"
    if member.ischr() or member.isblk() or member.isfifo():
        return "is a device or FIFO"
    if not (member.isreg() or member.isdir()):
        return "is not a regular file or folder"
    name = member.name
    if why := escape_problem(name):
        return why
    parts = name.split("/")
    too_long = any(len(p.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for p in parts)
    if len(name) > MAX_NAME_CHARS or too_long:
        return f"has a name too long (over {MAX_NAME_CHARS} characters or a part over 255 bytes)"
    if member.isreg() and not [p for p in parts if p not in ("", ".")]:
        return "is a file without a name"
    return None


def _target(base: Path, name: str) -> Path:
    """Where a checked member goes: inside ``base`` once resolved, or refused."""
    target = base.joinpath(*[p for p in name.split("/") if p not in ("", ".")])
    # Nothing here creates links, so this holds anyway; it guards against a folder that
    # was tampered with while extracting.
    if not target.resolve().is_relative_to(base):
        raise _Refused(f"member {shown(name)} leads outside {base}")
    return target


def _too_big(name: str, limit: int) -> _Refused:
    return _Refused(f"member {shown(name)} takes the extracted size past the {limit:,}-byte limit")


def _write(source: BinaryIO, target: Path, name: str, total: int, limit: int) -> int:
    """Stream one member into a new file; returns the new running total (at most ``limit``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
        while chunk := source.read(CHUNK):
            total += len(chunk)
            if total > limit:  # counted as written, whatever the header claimed
                raise _too_big(name, limit)
            out.write(chunk)
    return total


def extract_safely(
    archive: Path,
    folder: Path,
    progress: Progress = _noop,
    max_bytes: int = MAX_EXTRACT_BYTES,
    max_members: int = MAX_MEMBERS,
) -> int:
    """Extract ``archive`` (tar, .tar.gz, .tar.bz2, .tar.xz) into ``folder``; the file count.

    Refuses (one-line PoseshiftError naming the member and why) links, devices, unsafe names,
    more than ``max_members`` members and more than ``max_bytes`` of file data. What was
    written before a refusal stays in ``folder`` for the caller to delete.
    """
    base = Path(folder).resolve()
    count = members = total = 0
    try:
        # Headers and padding add to the file data: allow twice the cap before stopping.
        with open(archive, "rb") as raw, _decompressed(raw) as plain:
            stream = _CappedReader(plain, 2 * max_bytes + 16 * 1024 * 1024)
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]  # a duck-typed stream
                for member in tar:
                    members += 1
                    if members > max_members:
                        raise _Refused(f"has more than {max_members:,} members")
                    why = member_refusal(member)
                    if why:
                        raise _Refused(f"member {shown(member.name)} {why}")
                    target = _target(base, member.name)
                    if member.isdir():
                        target.mkdir(mode=0o755, parents=True, exist_ok=True)
                        continue
                    if total + member.size > max_bytes:  # refuse before decompressing it
                        raise _too_big(member.name, max_bytes)
                    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None  # a regular member always has data
                    total = _write(source, target, member.name, total, max_bytes)
                    count += 1
                    progress("extract", count, None)
    except _Refused as exc:
        raise PoseshiftError(
            f"{archive} is refused: {exc}; it is not a safe dataset archive"
        ) from None
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
        raise PoseshiftError(
            f"{archive} cannot be extracted ({type(exc).__name__}: {exc}): it is damaged or "
            "not a tar archive; delete it and fetch again"
        ) from None
    return count
