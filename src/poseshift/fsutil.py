"""Atomic file writes (a reader never sees a half-written output) and safe child paths."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from poseshift.errors import PoseshiftError

MAX_NAME_BYTES = 255  # one path component on ext4, xfs, apfs and ntfs


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    The temporary file is removed if the body raises, so a failed write leaves nothing.
    """
    target = Path(target)
    # A file where a folder belongs would surface as FileExistsError / IsADirectoryError.
    blocking = _nearest_existing(target.parent)
    if not blocking.is_dir():
        raise PoseshiftError(f"cannot write {target}: {blocking} is a file, not a folder")
    if target.is_dir():
        raise PoseshiftError(f"cannot write {target}: it is a folder; give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_atomic(target: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    return write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_json_atomic(target: str | os.PathLike[str], obj: Any) -> Path:
    return write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def escape_problem(name: str) -> str | None:
    """Why a relative name from outside (a file, an option, an archive member) could point
    anywhere but below its folder: NUL, backslash, absolute path or a '..' part; or None."""
    if "\0" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "contains '..'"
    return None


def _name_problem(name: str, suffix: str, subfolders: bool) -> str | None:
    """Why ``name`` may not be used under a folder, or None."""
    if not name:
        return "is empty"
    if why := escape_problem(name):
        return why
    parts = name.split("/")
    if not subfolders and len(parts) > 1:
        return "contains '/'"
    if any(part in ("", ".") for part in parts):
        return "has an empty or '.' part"
    parts[-1] += suffix
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in parts):
        return f"has a part longer than {MAX_NAME_BYTES} bytes"
    return None


def safe_child(
    folder: str | os.PathLike[str],
    name: object,
    what: str,
    suffix: str = "",
    subfolders: bool = False,
) -> Path:
    """``folder / (name + suffix)``, refused unless it stays inside ``folder``.

    ``name`` comes from a file or an option (a COCO group, a split name, a scorer): it must be
    a plain relative name (one part unless ``subfolders``), and the resolved path (symlinks
    followed) must lie inside the resolved folder, so nothing is ever written elsewhere.
    ``what`` starts the one-line error, e.g. "COCO file x.json: image id 3 group".
    """
    text = name if isinstance(name, str) else str(name)
    ok_type = isinstance(name, str | int)
    why = _name_problem(text, suffix, subfolders) if ok_type else "is not a string"
    child = Path(folder) / f"{text}{suffix}"
    if why is None:
        base = Path(folder).resolve()
        if not child.resolve().is_relative_to(base) or child.resolve() == base:
            why = f"leads outside {folder}"
    if why:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise PoseshiftError(f"{what} {shown!r} {why}; use a plain name without '/', '\\' or '..'")
    return child


def file_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Which file this is and which version of it: resolved path, size and mtime.

    Recorded next to results derived from the file, so a cached result is reused only while
    the very same file is still there (a retrained snapshot or edited video gets new stats).
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return {"path": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _nearest_existing(path: str | os.PathLike[str]) -> Path:
    """``path`` or its nearest ancestor that exists (what a mkdir of ``path`` builds on)."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def check_output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Refuse, before any work, an output folder that cannot be one or cannot be written.

    ``path`` may not exist yet: then its nearest existing parent must be a writable folder.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PoseshiftError(f"{option} {path} is a file, not a folder; give a folder")
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise PoseshiftError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PoseshiftError(
            f"{option} {path}: {existing} is not writable; choose a folder you can write to"
        )
    return path
