"""What the numbered notebooks share, and ``screentime notebooks``: run all five in order with papermill.

The notebooks (``notebooks/01_extract.ipynb`` ... ``05_learnings.ipynb``) keep their cells short and
call this module for the chores they have in common: the run folder, the synthetic demo videos that
their default parameters use, labels made from a synthetic video's truth.

``run_notebooks`` executes them into a run folder, passing paths from one to the next::

    RUN/01_extract.ipynb ... RUN/05_learnings.ipynb   executed copies, with their outputs
    RUN/demo/ or RUN/demo_quick/   the synthetic videos, when no video was given
    RUN/video.json, RUN/frames/    01: the video's facts, the sampled frames as images
    RUN/labels.csv                 02: the reviewed labels (RUN/label_review.csv: what was flagged)
    RUN/model/                     03: the trained model folder
    RUN/predict/                   04: predictions.csv, screentime.csv, segments.csv, video.json
    RUN/learnings/                 05: results.csv
    RUN/figures/                   PNG copies of the key figures
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from .errors import ScreentimeError, UsageError
from .fileio import read_csv, write_csv, write_json

NOTEBOOKS = ("01_extract", "02_label_review", "03_train", "04_predict_screentime", "05_learnings")
#: papermill is told the kernel's name: a notebook's metadata may name a kernel this machine lacks.
KERNEL_NAME = "python3"
#: Lengths (seconds) of the synthetic train and test videos: full demo, and ``quick`` (tests, CI).
DEMO_SECONDS = {False: (90.0, 60.0), True: (24.0, 16.0)}
DEMO_FPS = 25.0
#: Parameters the runner sets itself from its options (``--video``, ``--labels``, ``--out``).
RUNNER_OWNED = {"video": "--video", "labels": "--labels", "run_dir": "--out"}


# --------------------------------------------------------------------------------------------------
# Chores the notebooks share


def repo_root() -> Path:
    """The source checkout this package runs from (the folder holding ``helpers/``)."""
    return Path(__file__).resolve().parents[1]


def notebooks_dir() -> Path:
    """The folder of the numbered notebooks; they ship with the source checkout, not the wheel."""
    folder = repo_root() / "notebooks"
    if not (folder / f"{NOTEBOOKS[0]}.ipynb").is_file():
        raise ScreentimeError(f"the notebooks are not in {folder}; they come with the source checkout "
                              "(git clone the project and pip install -e '.[notebooks]' there)")
    return folder


def run_folder(run_dir: str | os.PathLike | None = "") -> Path:
    """The run folder (created): ``run_dir``, or ``runs/demo`` in the checkout when it is empty."""
    folder = Path(run_dir) if run_dir else repo_root() / "runs" / "demo"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "figures").mkdir(exist_ok=True)
    except OSError as exc:
        raise ScreentimeError(f"cannot create the run folder {folder}: {exc.strerror}; choose a writable folder") from exc
    return folder.resolve()


def figure_path(run: Path, name: str) -> Path:
    """Where a notebook saves a PNG copy of a figure: ``RUN/figures/NAME.png``."""
    return run / "figures" / f"{name}.png"


@dataclass
class DemoVideos:
    """The synthetic pair the notebooks use by default: a video to label and train on, another to predict."""

    folder: Path
    train_video: Path
    train_truth: Path
    test_video: Path
    test_truth: Path


def demo_videos(run: str | os.PathLike, quick: bool = False, seed: int = 0) -> DemoVideos:
    """Write (once) the demo's synthetic train and test cartoons and their truth into the run folder.

    Same seeds as ``screentime demo``; ``quick`` makes them short. Kept when already there.
    """
    from .synthetic import make_cartoon

    folder = Path(run) / ("demo_quick" if quick else "demo")
    train_s, test_s = DEMO_SECONDS[bool(quick)]
    pair = DemoVideos(folder, folder / "train.mp4", folder / "train_truth.csv",
                      folder / "test.mp4", folder / "test_truth.csv")
    from . import __version__

    recipe = {"train_seconds": train_s, "test_seconds": test_s, "fps": DEMO_FPS, "seed": seed,
              "screentime_version": __version__}
    marker = folder / "recipe.json"
    if marker.is_file() and json.loads(marker.read_text()) == recipe and pair.test_truth.is_file():
        return pair
    for video, truth, seconds, offset in ((pair.train_video, pair.train_truth, train_s, 1),
                                          (pair.test_video, pair.test_truth, test_s, 2)):
        write_csv(make_cartoon(video, seconds=seconds, fps=DEMO_FPS, seed=seed + offset), truth)
    write_json(recipe, marker)
    return pair


def truth_beside(video: str | os.PathLike) -> Path | None:
    """A truth file next to a video: ``NAME_truth.csv`` (the demo's) or ``NAME.truth.csv`` (``generate``'s)."""
    v = Path(video)
    for candidate in (v.with_name(f"{v.stem}_truth.csv"), v.with_suffix(".truth.csv")):
        if candidate.is_file():
            return candidate
    return None


def labels_from_truth(truth_csv: str | os.PathLike, every_s: float = 1.0) -> pd.DataFrame:
    """Labels a user would make from per-frame truth: the first frame at or after every ``every_s`` seconds."""
    from .video import RateSelector

    if every_s <= 0:
        raise ScreentimeError(f"label_every_s must be positive, not {every_s}")
    truth = read_csv(truth_csv, "truth file")
    if not {"frame", "time_s", "label"} <= set(truth.columns):
        raise ScreentimeError(f"truth file {truth_csv} needs columns frame,time_s,label")
    select = RateSelector(1.0 / every_s)
    keep = [select(int(f), float(t)) for f, t in zip(truth["frame"], truth["time_s"])]
    return truth.loc[keep, ["frame", "time_s", "label"]].reset_index(drop=True)


def labels_file(labels: str | os.PathLike | None, truth: str | os.PathLike | None, run: Path,
                every_s: float = 1.0) -> Path:
    """The labels to review: the user's file, else labels made from a synthetic video's truth
    (written to ``RUN/labels_from_truth.csv``), else one line saying what to provide."""
    if labels:
        return require_file(labels, "check the labels path")
    if truth:
        path = run / "labels_from_truth.csv"
        write_csv(labels_from_truth(truth, every_s), path)
        return path
    raise ScreentimeError("no labels: set labels to your labels file (frame,time_s,label CSV or the tutorial's "
                          "mapping.csv), or truth to a per-frame truth file of a synthetic video")


def load_labels(labels_csv: str | os.PathLike, video: str | os.PathLike, classes: list[str] | None = None,
                frames_csv: str | os.PathLike | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Labelled frames of ``video`` sorted by frame (frame, time_s, names) and the characters they name.

    Either label format is accepted; every label is pinned to a decoded frame, and ``time_s`` is the
    frame's real timestamp (filled in by decoding when the file gives only frame numbers).
    """
    from .pipeline import load_training_labels
    from .video import frame_times

    labels = load_training_labels(labels_csv, video, classes, frames_csv)
    table = labels.table.sort_values("frame").reset_index(drop=True)
    times, _ = frame_times(video)
    late = table["frame"] >= len(times)
    if late.any():
        raise ScreentimeError(f"labels file {labels_csv} labels frame {int(table['frame'][late].iloc[0])}, but {video} "
                              f"decodes only {len(times)} frames; check the labels belong to this video")
    table["time_s"] = times[table["frame"].to_numpy()].round(4)
    return table, labels.characters


def require_file(path: str | os.PathLike, hint: str) -> Path:
    """``path`` if it exists, else one line saying which notebook makes it."""
    p = Path(path)
    if not p.exists():
        raise ScreentimeError(f"{p} does not exist; {hint}")
    return p


# --------------------------------------------------------------------------------------------------
# The runner


def parse_value(text: str) -> Any:
    """A ``-p key value`` value, read as papermill's command line does: True/False/None, numbers, else text."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def _papermill():
    try:
        import papermill
    except ImportError:
        raise ScreentimeError("running the notebooks needs papermill and ipykernel: "
                              "pip install -e '.[notebooks]'") from None
    return papermill


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The names and default values in a notebook's ``parameters`` cell."""
    params = _papermill().inspect_notebook(str(path))
    return {name: p.get("default") for name, p in params.items()}


def _kernel_manager_class():
    """The kernel manager papermill starts kernels with.

    The kernel runs in the Python that runs the runner, even where a user-level kernel spec named
    ``python3`` points to another interpreter: the notebooks need this environment's ``helpers``.
    Kernels talk to papermill over local sockets (IPC) where the OS has them: no open TCP ports and
    no warning about unencrypted TCP in every run. The kernel process's own log (not the cells'
    output, which goes into the executed notebook) is silenced unless ``--debug``: a failure is
    reported once, by the runner.
    """
    import subprocess

    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any):
            super().__init__(**kwargs)
            if os.name != "nt":
                self.transport = "ipc"

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            if "ipykernel_launcher" in kernel_cmd and "-m" in kernel_cmd:  # this Python, whatever the spec says
                kernel_cmd = [sys.executable, *kernel_cmd[kernel_cmd.index("-m"):]]
            if not os.environ.get("SCREENTIME_DEBUG"):
                kw.setdefault("stderr", subprocess.DEVNULL)
            kw["env"] = {**(kw.get("env") or os.environ), "SCREENTIME_QUIET": "1"}  # no progress bars in outputs
            await super()._async_launch_kernel(kernel_cmd, **kw)

    return QuietKernelManager


def _failure_message(name: str, notebook: Path, executed: Path, exc: Exception) -> str:
    """One line naming the notebook, the failing cell (numbered as in the notebook, markdown cells
    included, with its first line of code) and the error."""
    source = str(getattr(exc, "source", "") or "")
    where = "a cell"
    try:
        import nbformat

        cells = nbformat.read(notebook, as_version=4).cells
        index = next((i for i, c in enumerate(cells) if c.source.strip() == source.strip() and source.strip()), None)
        if index is not None:
            where = f"cell {index + 1}"
        elif "injected-parameters" in source or source.lstrip().startswith("# Parameters"):
            where = "the injected parameters"
    except (OSError, ValueError):  # unreadable notebook: the message still names it and the error
        pass
    first = next((line.strip() for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    if first and where != "the injected parameters":
        where += f" ({first if len(first) <= 60 else first[:57] + '...'})"
    error = " ".join(f"{getattr(exc, 'ename', exc.__class__.__name__)}: {getattr(exc, 'evalue', exc)}".split())
    message = f"notebook {name}.ipynb failed at {where}: {error}" if source else f"notebook {name}.ipynb failed: {error}"
    return message + (f"; the executed copy with the traceback is {executed}" if executed.is_file() else "")


def run_notebooks(
    video: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    parameters: dict[str, Any] | None = None,
    *,
    names: Iterable[str] = NOTEBOOKS,
    echo: Callable[[str], None] = print,
) -> Path:
    """Execute the notebooks in order into the run folder ``out``; returns the run folder.

    ``video`` (default: the synthetic demo) is the video to extract, label, train on and predict;
    ``labels`` a labels file for it (default: made from the truth beside a synthetic video).
    ``parameters`` go to every notebook whose ``parameters`` cell names them. A failing notebook
    stops the run with a ScreentimeError naming the notebook and the cell.
    """
    papermill = _papermill()
    from papermill.exceptions import PapermillExecutionError

    folder = notebooks_dir()
    names = list(names)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise UsageError(f"unknown notebook {unknown[0]}; the notebooks are {', '.join(NOTEBOOKS)}")
    params = dict(parameters or {})
    for key, option in RUNNER_OWNED.items():
        if key in params:
            raise UsageError(f"set {key} with {option}, not -p {key}")
    declared = {name: notebook_parameters(folder / f"{name}.ipynb") for name in names}
    known = set().union(*declared.values())
    for key in params:
        if key not in known:
            raise UsageError(f"no notebook has a parameter {key!r}; they take: {', '.join(sorted(known))}")

    if video is not None:
        video = Path(video).resolve()
        if not video.is_file():
            raise ScreentimeError(f"video {video} does not exist; check the --video path")
        if labels is None and truth_beside(video) is None and "02_label_review" in names:
            raise ScreentimeError(f"no labels for {video.name}: pass --labels (frame,time_s,label CSV or the "
                                  f"tutorial's mapping.csv); a truth file {video.stem}_truth.csv beside it also works")
    if labels is not None:
        labels = Path(labels).resolve()
        if not labels.is_file():
            raise ScreentimeError(f"labels file {labels} does not exist; check the --labels path")
    run = run_folder(out or (Path("runs") / (video.stem if video else "demo")))

    shared: dict[str, Any] = {"run_dir": str(run)}
    if video is not None:
        shared.update(video=str(video), predict_video=str(video))
    reviewed = params.get("reviewed_labels") or str(run / "labels.csv")
    model_dir = params.get("model_dir") or str(run / "model")
    per_notebook = {"02_label_review": {"labels": str(labels) if labels else "", "reviewed_labels": reviewed},
                    "03_train": {"labels": reviewed, "model_dir": model_dir},
                    "04_predict_screentime": {"model_dir": model_dir}}

    for name in names:
        values = {**shared, **per_notebook.get(name, {}), **params}
        values = {k: v for k, v in values.items() if k in declared[name]}
        executed = run / f"{name}.ipynb"
        echo(f"{name} ...")
        start = time.monotonic()
        try:
            papermill.execute_notebook(str(folder / f"{name}.ipynb"), str(executed), parameters=values,
                                       kernel_name=KERNEL_NAME, progress_bar=False, log_output=False,
                                       kernel_manager_class=_kernel_manager_class())
        except PapermillExecutionError as exc:
            raise ScreentimeError(_failure_message(name, folder / f"{name}.ipynb", executed, exc)) from exc
        except Exception as exc:
            if exc.__class__.__name__ == "NoSuchKernel":
                raise ScreentimeError(f"no Jupyter kernel named {KERNEL_NAME!r} in this environment: "
                                      "pip install -e '.[notebooks]' (it brings ipykernel)") from exc
            raise ScreentimeError(_failure_message(name, folder / f"{name}.ipynb", executed, exc)) from exc
        echo(f"{name} done in {time.monotonic() - start:.0f} s -> {executed}")
    return run
