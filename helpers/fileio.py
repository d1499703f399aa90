"""Atomic file writes: a reader never sees a half-written output, an interruption leaves the old file."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from .errors import ScreentimeError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise ScreentimeError(f"cannot write to {target.parent}: {exc.strerror}; choose a writable output folder") from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp_path, target)
    except OSError as exc:
        raise ScreentimeError(f"cannot write {target}: {exc.strerror}; check the disk and the folder's permissions") from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` as CSV (no index) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")


def write_json(data: Any, path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_csv(path: str | os.PathLike, what: str) -> pd.DataFrame:
    """Read a CSV the user gave us, turning every failure into one clear line. ``what`` names its role.

    Only empty cells are missing values: ``None``, ``NA`` or ``null`` stay text (a label or a name).
    """
    p = Path(path)
    if not p.exists():
        raise ScreentimeError(f"{what} {p} does not exist; check the path")
    if p.is_dir():
        raise ScreentimeError(f"{what} {p} is a folder; give the path of a CSV file")
    try:
        return pd.read_csv(p, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError as exc:
        raise ScreentimeError(f"{what} {p} is empty; it needs a header row and at least one row") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ScreentimeError(f"{what} {p} is not a readable CSV file ({exc.__class__.__name__}); save it as plain comma-separated text") from exc
    except OSError as exc:
        raise ScreentimeError(f"cannot read {what} {p}: {exc.strerror}") from exc
