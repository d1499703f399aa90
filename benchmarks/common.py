"""What the benchmarks share: their ``--out`` and ``--shared`` options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

#: ``../shared`` next to the project root, where the real clip and the SqueezeNet file live when present.
SHARED = Path(__file__).resolve().parents[2] / "shared"


def benchmark_args(doc: str, default_out: str,
                   more: Callable[[argparse.ArgumentParser], None] | None = None) -> tuple[argparse.Namespace, Path, Path]:
    """Parse ``--out``, ``--shared`` (and what ``more`` adds); create the output folder and keep the
    feature cache inside it. Returns the arguments, the output folder and the shared folder."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--shared", default=str(SHARED))
    if more is not None:
        more(parser)
    args = parser.parse_args()
    out, shared = Path(args.out), Path(args.shared)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SCREENTIME_CACHE", str(out / "cache"))
    return args, out, shared


def cpu_model() -> str:
    """This machine's CPU, as Linux names it (timings differ between CPUs: say which gave them)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
