"""Read pandas HDF5 files (labels, predictions, scales) without ever unpickling.

Two ways a crafted ``.h5`` runs code when pandas reads it:

* pandas' "fixed" format stores object data (an object column, an index of mixed values) as
  a PyTables ``VLArray`` of ``ObjectAtom``, which PyTables reads with ``pickle.loads``;
* PyTables unpickles every string attribute that ends in ``"."`` as soon as it is read, and
  it reads some (``TITLE``, ...) merely on opening a node, so even inspecting the file with
  PyTables first is unsafe.

DeepLabCut's own files (table format) and the fixed-format files poseshift writes hold no
object arrays, but do carry attribute pickles: of plain lists, tuples, strings and None
(``non_index_axes``, ``info``, a level's ``name``), which need no Python global to rebuild.

So the file is read once into memory and walked with h5py, which never unpickles: any
variable-length (object) dataset, any PyTables VLArray, any soft or external link and any
attribute pickle that names a Python global other than numpy's scalar/array rebuilders is
refused. Only then does pandas read the same bytes, through PyTables' in-memory driver, so
the file cannot be swapped between the check and the read.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from poseshift.errors import PoseshiftError

# Globals a harmless pickle may name: numpy rebuilding its own scalars, dtypes and arrays
# (old pandas wrote numpy strings into attributes) and the py2 bytes helper. Nothing else.
SAFE_GLOBALS = frozenset(
    {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),
    }
)
# PyTables 1.x FILTERS pickles are rewritten with this before unpickling (attributeset.py).
_OLD_FILTERS = re.compile(rb"\(([ic])tables\.Leaf\n")
IN_MEMORY_NAME = "/dev/null/poseshift-in-memory.h5"  # never touched: no backing store


class _Refused(Exception):
    """A pickle asked for something outside SAFE_GLOBALS."""


class _CheckingUnpickler(pickle.Unpickler):
    """Runs a pickle with only SAFE_GLOBALS reachable: anything else raises _Refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("a persistent id")


def pickle_global(raw: bytes) -> str | None:
    """The unsafe global a pickle would load (``"builtins.open"``), or None if it names none.

    Not a pickle at all, or a broken one, is None: PyTables then keeps the plain string.
    """
    for encoding in ("ASCII", "latin1", "bytes"):  # PyTables retries with the last two
        try:
            _CheckingUnpickler(io.BytesIO(raw), encoding=encoding).load()
        except _Refused as exc:
            return str(exc)
        except UnicodeDecodeError:
            continue
        except Exception:  # a string that is no pickle; only SAFE_GLOBALS could have run
            return None
        return None
    return None


def _strings(value: Any) -> Iterator[bytes]:
    """Every string inside an attribute value, as bytes."""
    if isinstance(value, bytes | np.bytes_):
        yield bytes(value)
    elif isinstance(value, str):
        yield value.encode("utf-8", "surrogateescape")
    elif isinstance(value, np.ndarray) and value.dtype.kind in "SUO":
        for item in value.ravel().tolist():
            if isinstance(item, bytes | str):
                yield from _strings(item)


def _attribute_problem(obj: h5py.HLObject, where: str) -> str | None:
    for name in obj.attrs:
        try:
            value = obj.attrs[name]
        except Exception as exc:  # a type h5py cannot read may still reach PyTables
            return f"attribute {name!r} of {where} cannot be checked ({type(exc).__name__})"
        for raw in _strings(value):
            raw = raw.rstrip(b"\x00")  # numpy strips the padding before PyTables looks
            if not raw.endswith(b"."):  # PyTables only unpickles strings ending in "."
                continue
            variants = [raw, _OLD_FILTERS.sub(rb"(\1tables.filters\n", raw)]
            for variant in variants if name == "FILTERS" else variants[:1]:
                found = pickle_global(variant)
                if found:
                    return f"attribute {name!r} of {where} would load {found}"
    return None


def _text(value: Any) -> str:
    return bytes(value).decode("latin1") if isinstance(value, bytes | np.bytes_) else str(value)


def _node_problem(name: str, obj: h5py.HLObject) -> str | None:
    where = "/" + name if name else "/"
    if isinstance(obj, h5py.Group):
        for child in obj:
            link = obj.get(child, getlink=True)
            if isinstance(link, h5py.SoftLink | h5py.ExternalLink):
                return f"{where.rstrip('/')}/{child} is a {type(link).__name__}"
    if isinstance(obj, h5py.Dataset):
        pytables_class = _text(obj.attrs.get("CLASS", b""))
        if obj.dtype.hasobject or pytables_class == "VLARRAY" or "PSEUDOATOM" in obj.attrs:
            return f"node {where} is a variable-length (object) array"
    return _attribute_problem(obj, where)


def hdf_problem(data: bytes) -> str | None:
    """Why these HDF5 bytes may unpickle when read (None: safe); raises OSError if not HDF5."""
    with h5py.File(io.BytesIO(data), "r") as handle:
        found = _node_problem("", handle)
        if found:
            return found
        problems: list[str] = []

        def visit(name: str, obj: h5py.HLObject) -> bool | None:
            problem = _node_problem(name, obj)
            if problem:
                problems.append(problem)
                return True  # stop the walk
            return None

        handle.visititems(visit)
        return problems[0] if problems else None


def read_hdf_safely(
    path: str | Path,
    key: str | None = None,
    what: str = "pandas HDF5 file",
    fix: str = "write it again with pandas (numbers and plain strings only)",
) -> pd.DataFrame:
    """``pd.read_hdf(path, key)`` for a file nobody vouches for; one-line PoseshiftErrors.

    The file must be a DataFrame in pandas' fixed or table format holding no pickled Python
    objects. ``what`` names the file in errors, ``fix`` says what to do.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        problem = hdf_problem(data)
    except FileNotFoundError:
        raise PoseshiftError(f"{what} {path} does not exist") from None
    except Exception as exc:  # h5py raises OSError for garbage; a hostile file may do worse
        raise PoseshiftError(
            f"{path} is not a readable {what} (empty, damaged or not HDF5: "
            f"{type(exc).__name__}): {fix}"
        ) from None
    if problem:
        raise PoseshiftError(
            f"{path} holds pickled Python objects ({problem}), which poseshift never loads: {fix}"
        )
    try:
        # The checked bytes themselves, not the path: nothing can change in between. The
        # in-memory driver refuses a name that exists; one under /dev/null never can.
        with pd.HDFStore(
            IN_MEMORY_NAME,
            mode="r",
            driver="H5FD_CORE",
            driver_core_image=data,
            driver_core_backing_store=0,
        ) as store:
            frame = pd.read_hdf(store, key)
    except Exception as exc:  # pandas / PyTables errors on odd layouts: one line, no traceback
        raise PoseshiftError(
            f"{path} is not a readable {what} ({type(exc).__name__}): {fix}"
        ) from None
    if not isinstance(frame, pd.DataFrame):
        raise PoseshiftError(f"{path} holds a {type(frame).__name__}, not a table: {fix}")
    return frame
