"""``screentime batch``: predict many videos in parallel on a Dask cluster, resumably.

Every video runs as one ``dask.distributed`` task: on a ``LocalCluster`` of worker processes on
this machine by default, or on an existing cluster given by its scheduler's address. Each worker
process loads the model once (kept per process, keyed by the model's content) and reuses it for
every video it gets.

Output layout (``OUT``)::

    OUT/<name>/          what `screentime predict` writes for that video: predictions.csv,
                         screentime.csv, segments.csv, shots.csv, video.json, report.html; then done.json
    OUT/screentime.csv   video, character, seconds, percent, appearances (every finished video)
    OUT/totals.csv       character, seconds, percent, videos, appearances (across finished videos)
    OUT/failures.csv     video, error (the videos that failed in the last run; header only if none)
    OUT/index.html       the batch report, linking every video's report.html

``<name>`` is the video's file name without extension; when two videos share it, a short hash of
the video's path is appended. A video counts as finished when its folder has ``done.json``
(written last, atomically) for the same video content, model and sampling rate, and every file it
lists: a re-run skips it. A failing video is listed in ``failures.csv`` and stops nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from . import __version__
from .backbones import file_digest
from .errors import ScreentimeError, UsageError
from .fileio import write_csv, write_json
from .pipeline import fps_label
from .progress import log

PREDICT_FILES = ("predictions.csv", "screentime.csv", "segments.csv", "shots.csv", "video.json")
REPORT_FILE = "report.html"
DONE_FILE = "done.json"
_RESERVED = {"screentime.csv", "totals.csv", "failures.csv", "index.html"}

TABLE_COLUMNS = ["video", "character", "seconds", "percent", "appearances"]
TOTAL_COLUMNS = ["character", "seconds", "percent", "videos", "appearances"]
FAILURE_COLUMNS = ["video", "error"]


# ----------------------------------------------------------------------------- names and fingerprints

def output_names(videos: Sequence[str | os.PathLike]) -> list[str]:
    """One folder name per video: its stem, plus a short hash of its path when stems collide."""
    stems = [Path(v).stem or "video" for v in videos]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s.lower()] = counts.get(s.lower(), 0) + 1
    names = []
    for video, stem in zip(videos, stems):
        if counts[stem.lower()] > 1 or stem.lower() in _RESERVED or stem.startswith("."):
            digest = hashlib.sha1(str(Path(video).absolute()).encode()).hexdigest()[:8]
            stem = f"{stem.lstrip('.') or 'video'}-{digest}"
        names.append(stem)
    return names


def model_fingerprint(model_dir: str | os.PathLike) -> str:
    """A hash of every file in the model folder: a retrained model never reuses old results."""
    digest = hashlib.sha256()
    root = Path(model_dir)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + file_digest(path).encode())
    return digest.hexdigest()[:24]


def _expected_files(report: bool) -> list[str]:
    return [*PREDICT_FILES, *([REPORT_FILE] if report else [])]


def is_complete(folder: str | os.PathLike, *, video_key: str | None, model: str, fps: float | None,
                report: bool) -> bool:
    """True when ``folder`` holds finished outputs for this video content, model, rate and report choice."""
    import json

    folder = Path(folder)
    try:
        done = json.loads((folder / DONE_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(done, dict) or video_key is None:
        return False
    same = (done.get("video_key") == video_key and done.get("model_fingerprint") == model
            and done.get("sampling_fps") == fps_label(fps))
    files = done.get("files") or []
    return bool(same and set(_expected_files(report)) <= set(files)
                and all((folder / f).is_file() for f in files))


def _video_key(video: str | os.PathLike) -> str | None:
    from .cache import video_key

    try:
        return video_key(video)
    except OSError:
        return None


# ----------------------------------------------------------------------------- on the workers

_MODELS: dict[tuple[str, str], Any] = {}
_MODEL_LOCK = threading.Lock()
MODEL_LOADS = 0  # how many times this process loaded a model (tests check: once per worker)


def worker_model(model_dir: str, fingerprint: str):
    """The model for ``model_dir``, loaded once per process (and again only if its content changed)."""
    global MODEL_LOADS
    from .model import load_model

    key = (str(model_dir), fingerprint)
    with _MODEL_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = load_model(model_dir)
            _MODELS.clear()
            _MODELS[key] = model
            MODEL_LOADS += 1
        return model


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text if isinstance(exc, ScreentimeError) else f"{exc.__class__.__name__}: {text}"


def predict_one(video: str, name: str, model_dir: str, fingerprint: str, out_dir: str, fps: float | None,
                report: bool) -> dict[str, Any]:
    """One task: predict ``video`` into ``out_dir`` and mark it done. Never raises: failures come back as data."""
    from .pipeline import predict_video, write_prediction
    from .progress import set_quiet
    from .video import VideoStream

    set_quiet(True)  # several workers share the terminal: no progress bars
    started = time.perf_counter()
    out = Path(out_dir)
    try:
        (out / DONE_FILE).unlink(missing_ok=True)  # from here until the end the outputs are not complete
        VideoStream(video)  # a bad video fails here, before the model loads (as in predict)
        key = _video_key(video)
        model = worker_model(model_dir, fingerprint)
        result = predict_video(video, model, fps)
        write_prediction(video, result, out, fps)
        if report:
            from .report import write_report

            write_report(video, result, out, fps=fps, thresholds=model.thresholds)
        write_json({"video": str(video), "video_key": key, "model": str(model_dir), "model_fingerprint": fingerprint,
                    "sampling_fps": fps_label(fps), "files": _expected_files(report),
                    "seconds": round(time.perf_counter() - started, 3), "worker_pid": os.getpid(),
                    "screentime_version": __version__}, out / DONE_FILE)
        return {"name": name, "status": "done", "seconds": time.perf_counter() - started, "pid": os.getpid()}
    except Exception as exc:  # reported in failures.csv; the other videos go on
        return {"name": name, "status": "failed", "error": _error_text(exc), "pid": os.getpid()}


# ----------------------------------------------------------------------------- the cluster

class _Cluster:
    """A Dask client on a fresh LocalCluster, or on the scheduler at ``address``; closed on exit."""

    def __init__(self, address: str | None, workers: int):
        self.address, self.workers = address, workers
        self.cluster = self.client = None

    def __enter__(self):
        from dask.distributed import Client, LocalCluster

        # Dask's own notes (scheduler started, workers registered...) would drown ours: errors only.
        self._quiet_logs = {name: logging.getLogger(name).level for name in ("distributed", "tornado")}
        for name in self._quiet_logs:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            if self.address:
                self.client = Client(self.address)  # waits distributed.comm.timeouts.connect (dask config)
            else:
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None,
                                            silence_logs=logging.ERROR)
                self.client = Client(self.cluster)
        except (OSError, TimeoutError, ValueError) as exc:  # unreachable, or not an address at all
            self.__exit__(None, None, None)
            if self.address:
                raise ScreentimeError(f"cannot reach the Dask scheduler at {self.address} ({_error_text(exc)}); "
                                      "start one with: dask scheduler, and workers with: dask worker ADDRESS") from exc
            raise ScreentimeError(f"cannot start a local Dask cluster ({_error_text(exc)})") from exc
        return self.client

    def __exit__(self, *exc_info) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing must never hide the real outcome
                    pass
        for name, level in getattr(self, "_quiet_logs", {}).items():
            logging.getLogger(name).setLevel(level)


def _run_tasks(tasks: list[dict[str, Any]], scheduler: str | None, workers: int) -> list[dict[str, Any]]:
    from dask.distributed import as_completed

    results = []
    with _Cluster(scheduler, min(workers, len(tasks))) as client:
        futures = {client.submit(predict_one, t["video"], t["name"], t["model_dir"], t["fingerprint"], t["out_dir"],
                                 t["fps"], t["report"], pure=False,
                                 key=f"screentime-{t['name']}-{os.urandom(4).hex()}"): t for t in tasks}
        for count, future in enumerate(as_completed(futures), 1):
            task = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task could not run there
                outcome = {"name": task["name"], "status": "failed", "error": _error_text(exc)}
            outcome["label"] = task["label"]
            results.append(outcome)
            if outcome["status"] == "done":
                log.info("%s: done in %.1f s (%d/%d)", task["name"], outcome["seconds"], count, len(tasks))
            else:
                log.warning("%s failed: %s (%d/%d)", task["label"], outcome["error"], count, len(tasks))
    return results


# ----------------------------------------------------------------------------- tables

def totals_table(table: pd.DataFrame, durations: dict[str, float]) -> pd.DataFrame:
    """Per character across videos: seconds, percent of the videos' total length, videos seen in, appearances."""
    total_s = float(sum(durations.get(v, 0.0) for v in dict.fromkeys(table["video"])))
    rows = []
    for name, group in table.groupby("character", sort=False):
        seconds = float(group["seconds"].sum())
        rows.append((name, round(seconds, 3), round(100.0 * seconds / total_s, 2) if total_s > 0 else 0.0,
                     int((group["seconds"] > 0).sum()), int(group["appearances"].sum())))
    return pd.DataFrame(rows, columns=TOTAL_COLUMNS)


def _read_finished(folder: Path, name: str) -> tuple[pd.DataFrame, float]:
    import json

    table = pd.read_csv(folder / "screentime.csv", keep_default_na=False, na_values=[""])
    table.insert(0, "video", name)
    duration = float(json.loads((folder / "video.json").read_text()).get("duration_s", 0.0))
    return table[TABLE_COLUMNS], duration


# ----------------------------------------------------------------------------- the API

def _cores() -> int:
    """CPU cores this process may use (the default number of local workers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_batch(videos: Iterable[str | os.PathLike], model_dir: str | os.PathLike, out_dir: str | os.PathLike,
              fps: float | str | None = 1.0, *, scheduler: str | None = None, workers: int | None = None,
              report: bool = True) -> pd.DataFrame:
    """Predict every video on Dask and return the combined table (video, character, seconds, percent, appearances).

    ``scheduler``: address of a running Dask scheduler (``tcp://host:8786``); default a
    ``LocalCluster`` of ``workers`` processes (default: one per CPU core, at most one per video)
    on this machine. Videos already finished in ``out_dir`` (same content, model and ``fps``) are
    skipped. Failures do not raise: they are written to ``out_dir/failures.csv`` and listed in
    ``table.attrs["failed"]`` (dicts with video and error); ``attrs["done"]`` and
    ``attrs["skipped"]`` name the videos computed now and those already finished.

    >>> table = run_batch(["ep1.mp4", "ep2.mp4"], "data/model", "data/runs/season1")  # doctest: +SKIP
    >>> table.groupby("character")["seconds"].sum()                                     # doctest: +SKIP
    """
    from .model import read_model_card
    from .video import parse_fps

    if isinstance(fps, str):
        fps = parse_fps(fps)
    given = [str(v) for v in videos]
    if not given:
        raise UsageError("give at least one video")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    if scheduler and workers:
        log.info("--workers applies to a local cluster only; the cluster at %s uses its own workers", scheduler)
    workers = workers or _cores()
    read_model_card(model_dir)  # a wrong model folder fails now, in one line, before any cluster starts
    model_abs = str(Path(model_dir).absolute())
    fingerprint = model_fingerprint(model_abs)
    out = Path(out_dir).absolute()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScreentimeError(f"cannot create the output folder {out}: {exc.strerror}; choose a writable folder") from exc

    unique: dict[str, str] = {}  # absolute path -> as given (the same video twice runs once)
    for v in given:
        unique.setdefault(str(Path(v).absolute()), v)
    paths = list(unique)
    names = output_names(paths)

    status: dict[str, str] = {}
    tasks = []
    for path, name in zip(paths, names):
        if is_complete(out / name, video_key=_video_key(path), model=fingerprint, fps=fps, report=report):
            status[name] = "skipped"
        else:
            tasks.append({"video": path, "name": name, "model_dir": model_abs, "fingerprint": fingerprint,
                          "out_dir": str(out / name), "fps": fps, "report": report, "label": unique[path]})
    if status:
        log.info("%d of %d videos already finished in %s: skipped", len(status), len(paths), out)
    errors: dict[str, str] = {}
    if tasks:
        for outcome in _run_tasks(tasks, scheduler, workers):
            status[outcome["name"]] = outcome["status"]
            if outcome["status"] == "failed":
                errors[outcome["name"]] = outcome["error"]
    failures = []  # (video as given, error), in the order the videos were given

    parts, durations, video_rows = [], {}, []
    label_of = dict(zip(names, (unique[p] for p in paths)))
    for name in names:
        folder = out / name
        if name in errors:
            failures.append((label_of[name], errors[name]))
        elif status[name] != "failed":
            try:
                part, durations[name] = _read_finished(folder, name)
                parts.append(part)
            except (OSError, ValueError, KeyError) as exc:  # finished files removed under our feet
                status[name] = "failed"
                failures.append((label_of[name], f"outputs in {folder} unreadable: {_error_text(exc)}"))
        has_report = report and status[name] != "failed" and (folder / REPORT_FILE).is_file()
        video_rows.append((name, label_of[name], durations.get(name, 0.0),
                           f"{name}/{REPORT_FILE}" if has_report else "", status[name]))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=TABLE_COLUMNS)
    totals = totals_table(table, durations)
    failure_table = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    write_csv(table, out / "screentime.csv")
    write_csv(totals, out / "totals.csv")
    write_csv(failure_table, out / "failures.csv")
    if report:
        from .report import write_index

        write_index(out, table, totals, pd.DataFrame(video_rows, columns=["name", "video", "duration_s", "report",
                                                                          "status"]),
                    failure_table, facts=[("model", model_abs), ("sampling", "every frame" if fps is None
                                                                  else f"{fps:g} per second")])
    table.attrs.update({
        "out_dir": str(out),
        "done": [n for n in names if status[n] == "done"],
        "skipped": [n for n in names if status[n] == "skipped"],
        "failed": [{"video": v, "error": e} for v, e in failures],
    })
    return table


def run_batch_command(videos: Sequence[str], model_dir: str, out_dir: str, fps: float | None, *,
                      scheduler: str | None, workers: int | None, report: bool) -> None:
    """``screentime batch``: run, print the totals, and fail (exit 1) if any video failed."""
    started = time.perf_counter()
    table = run_batch(videos, model_dir, out_dir, fps, scheduler=scheduler, workers=workers, report=report)
    out = Path(table.attrs["out_dir"])
    totals = pd.read_csv(out / "totals.csv")
    if len(totals):
        print(totals.to_string(index=False))
    done, skipped, failed = (table.attrs[k] for k in ("done", "skipped", "failed"))
    print(f"{len(done)} videos predicted, {len(skipped)} already finished (skipped), {len(failed)} failed "
          f"in {time.perf_counter() - started:.1f} s -> {out_dir}" + (f" (report: {out_dir}/index.html)" if report else ""))
    if failed:
        first = failed[0]
        raise ScreentimeError(f"{len(failed)} of {len(done) + len(skipped) + len(failed)} videos failed "
                              f"(first: {first['video']}: {first['error']}); see {out / 'failures.csv'}, "
                              "fix them and run the same command again (finished videos are skipped)")
