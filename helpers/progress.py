"""Progress bars (tqdm) and messages on stderr, quiet when stderr is not a terminal or when asked
(``--quiet``, or ``SCREENTIME_QUIET=1`` in the environment, as for notebooks run by papermill)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
log = logging.getLogger("screentime")

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence progress bars (``--quiet``)."""
    global _quiet
    _quiet = quiet


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "frame") -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar, shown only on an interactive terminal (or in a notebook)."""
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    quiet = _quiet or bool(os.environ.get("SCREENTIME_QUIET"))  # set for notebooks run unattended
    return iter(tqdm(items, total=total or None, desc=desc, unit=unit, disable=quiet or not interactive, leave=False))
