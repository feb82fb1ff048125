"""Fetch published files: resumable HTTP downloads, checked by size and sha256.

The one owner of "get a file from the internet" in poseshift: ``download`` streams one URL
through ``<target>.part`` with HTTP Range resumption; ``fetch_files`` makes a folder hold a
list of ``RemoteFile`` entries, keeping verified copies and checking the network first so
an offline machine gets one clear line instead of a minute of retries.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from poseshift import __version__
from poseshift.errors import PoseshiftError

CHUNK = 1 << 20
RETRYABLE_HTTP = (408, 425, 429, 500, 502, 503, 504)

# progress(stage, done, total): stage is "download", "verify" or "extract"
Progress = Callable[[str, int, int | None], None]


def _noop(stage: str, done: int, total: int | None) -> None:
    return None


@dataclass(frozen=True)
class RemoteFile:
    """One published file: where it is, where it goes (posix path inside dest), its checks."""

    url: str
    name: str
    size: int
    sha256: str


# ----------------------------------------------------------------------------- download


def download(
    url: str,
    target: Path,
    *,
    expected_size: int | None = None,
    progress: Progress = _noop,
    retries: int = 5,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``target`` through ``target.part``, resuming after interruptions.

    A server that ignores Range (answers 200) restarts the file from zero; a size that differs
    from ``expected_size`` is an error before anything is written.
    """
    part = target.with_name(target.name + ".part")
    _download_into(url, part, expected_size, progress, retries, timeout)
    part.replace(target)
    return target


def _download_into(
    url: str,
    part: Path,
    expected_size: int | None,
    progress: Progress,
    retries: int,
    timeout: float,
) -> None:
    """Complete the partial file ``part`` from ``url`` (no rename: callers verify first)."""
    for attempt in range(retries):
        offset = part.stat().st_size if part.exists() else 0
        if expected_size is not None and offset > expected_size:
            part.unlink()
            offset = 0
        headers = {"User-Agent": f"poseshift/{__version__}", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=timeout) as response:
                _receive(url, response, part, offset, expected_size, progress)
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset and offset == expected_size:
                break  # the .part file was already complete
            if exc.code == 416:
                part.unlink(missing_ok=True)
            elif exc.code not in RETRYABLE_HTTP or attempt == retries - 1:
                raise PoseshiftError(
                    f"{url} answered HTTP {exc.code} ({exc.reason}): check --url"
                ) from None
        except (OSError, http.client.HTTPException) as exc:
            if attempt == retries - 1:
                raise PoseshiftError(
                    f"download of {url} failed {retries} times ({type(exc).__name__}: {exc}); "
                    f"run the same command again to resume from {part}"
                ) from None
        time.sleep(min(2 ** (attempt - 1), 30) if attempt else 0)
    else:
        raise PoseshiftError(f"{url} kept refusing the download range; try again later")


def _receive(
    url: str,
    response: http.client.HTTPResponse,
    part: Path,
    offset: int,
    expected_size: int | None,
    progress: Progress,
) -> None:
    """Append a 206 answer to ``part`` or rewrite it from a 200 answer."""
    if offset and response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+)", response.headers.get("Content-Range", ""))
        if not match or int(match[1]) != offset:
            raise PoseshiftError(
                f"{url} answered a range request with the wrong bytes "
                f"({response.headers.get('Content-Range')!r}); delete {part} and try again"
            )
        total: int | None
        total, mode = int(match[2]), "ab"
    elif response.status == 200:
        length = response.headers.get("Content-Length")
        total, mode, offset = (int(length) if length else None), "wb", 0
    else:
        raise PoseshiftError(f"{url} answered HTTP {response.status}; expected the archive")
    if expected_size is not None and total is not None and total != expected_size:
        raise PoseshiftError(
            f"{url} serves {total:,} bytes but the official archive has {expected_size:,}; "
            "the file changed upstream or --url points elsewhere"
        )
    done = offset
    progress("download", done, total)
    with open(part, mode) as out:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            done += len(chunk)
            progress("download", done, total)
    if total is not None and done != total:
        raise ConnectionError(f"connection closed after {done:,} of {total:,} bytes")


def sha256_of(path: Path, progress: Progress = _noop) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest, size, done = hashlib.sha256(), path.stat().st_size, 0
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            done += len(block)
            progress("verify", done, size)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- network check


def unreachable(url: str, timeout: float = 3.0) -> str:
    """Why ``url``'s host cannot be reached ("" if a TCP connection opens within ``timeout``).

    Checked before downloading because urllib retries on a dead network take minutes to fail.
    With ``HTTPS_PROXY`` set, the proxy is what has to answer, so it is tested instead.
    """
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    parsed = urlparse(proxy if proxy and "://" in proxy else f"http://{proxy}" if proxy else url)
    host = parsed.hostname or ""
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:  # a port that is not a number
        return f"{url} has an invalid port"
    if not host:
        return f"{url} names no host"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ""
    except OSError as exc:
        return f"{host}:{port} is unreachable ({type(exc).__name__})"


# ----------------------------------------------------------------------------- many files


def _check_name(name: str) -> None:
    """Refuse names that could write outside the destination folder."""
    path = PurePosixPath(name)
    bad = (
        not name
        or "\\" in name
        or path.is_absolute()
        or re.match(r"^[A-Za-z]:", name)
        or any(part in ("..", ".", "") for part in name.split("/"))
    )
    if bad:
        raise PoseshiftError(
            f"refusing file name {name!r}: names must be relative posix paths inside the "
            "destination folder (no leading '/', no '..', no '\\'); the file list is damaged"
        )


def is_cached(file: RemoteFile, dest: Path, check_sha: bool = True) -> bool:
    """Whether ``dest/name`` already is this file (size first; sha256 only if it matches)."""
    path = dest / file.name
    try:
        if not path.is_file() or path.stat().st_size != file.size:
            return False
    except OSError:
        return False
    return not check_sha or sha256_of(path) == file.sha256.lower()


def fetch_files(
    files: Sequence[RemoteFile],
    dest: Path,
    progress: Progress = _noop,
    what: str = "files",
    *,
    hint: str | None = None,
) -> Path:
    """Make ``dest`` hold every file of ``files``, each verified by size and sha256.

    Good copies are kept; missing or wrong ones are downloaded into ``dest/name.part``
    (resumable), checked and renamed into place. Returns ``dest``. ``hint`` replaces the
    default advice at the end of the offline error.
    """
    dest = Path(dest)
    for file in files:  # all names first: nothing is fetched for a damaged list
        _check_name(file.name)
    needed = [f for f in files if not is_cached(f, dest)]
    if not needed:
        return dest
    reason = unreachable(needed[0].url)
    if reason:
        advice = hint or (
            f"connect to the internet, or put a complete copy of the files "
            f"(first: {needed[0].name}) into {dest}"
        )
        raise PoseshiftError(
            f"{what}: {len(needed)} file(s) missing from {dest} and {reason}; {advice}"
        )
    total = sum(f.size for f in needed)
    done = 0

    def overall(stage: str, now: int, _size: int | None) -> None:
        # one bar for the whole set: bytes of finished files plus this file's progress
        progress(stage, done + now, total)

    for file in needed:
        target = dest / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        _download_into(file.url, part, file.size, overall, retries=5, timeout=60.0)
        digest = sha256_of(part)
        if digest != file.sha256.lower():
            part.unlink(missing_ok=True)
            raise PoseshiftError(
                f"sha256 of {file.url} is {digest}, expected {file.sha256}: the file changed "
                "upstream or the download was damaged; it was deleted, run the command again"
            )
        part.replace(target)  # atomic within one folder: no half file under the real name
        done += file.size
    return dest
