"""screentime batch on a real Dask LocalCluster (2 worker processes on loopback): same results as predict
alone, the model loaded once per worker, resumable, and a failing video stops nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import helpers.batch as batch_module
from helpers import pipeline
from helpers.batch import output_names, run_batch
from helpers.synthetic import make_cartoon

from .conftest import assert_one_line_error, screentime

PER_VIDEO = ("predictions.csv", "screentime.csv", "segments.csv", "shots.csv")


@pytest.fixture(scope="module")
def model(trained_model) -> Path:
    return trained_model


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Four short cartoons; two share the file name clip0.mp4 (in different folders)."""
    folder = tmp_path_factory.mktemp("clips")
    paths = [folder / "clip0.mp4", folder / "clip1.mp4", folder / "clip2.mp4", folder / "more" / "clip0.mp4"]
    for seed, path in enumerate(paths, 31):
        make_cartoon(path, seconds=10.0, seed=seed)
    return paths


@pytest.fixture(scope="module")
def alone(tmp_path_factory, clips, model) -> dict[Path, Path]:
    """The reference: `predict` on each video alone, with no feature cache to share with the batch."""
    out = tmp_path_factory.mktemp("alone")
    os.environ["SCREENTIME_NO_CACHE"] = "1"
    try:
        for i, clip in enumerate(clips):
            pipeline.predict(clip, model, out / str(i), 1.0)
    finally:
        del os.environ["SCREENTIME_NO_CACHE"]
    return {clip: out / str(i) for i, clip in enumerate(clips)}


@pytest.fixture(scope="module")
def cluster():
    """An existing cluster to connect to by address: 2 worker processes, one thread each, on loopback."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as local, Client(local) as client:
        yield local, client


def assert_same_as_alone(out: Path, clips: list[Path], names: list[str], alone: dict[Path, Path]) -> None:
    for clip, name in zip(clips, names):
        for file in PER_VIDEO:
            assert (out / name / file).read_bytes() == (alone[clip] / file).read_bytes(), (name, file)
        assert json.loads((out / name / "video.json").read_text()) == json.loads((alone[clip] / "video.json").read_text())


def test_output_names_are_stems_made_unique():
    names = output_names(["/a/ep1.mp4", "/b/ep1.mp4", "/a/ep2.avi", "/a/index.html.mp4"])
    assert names[2] == "ep2" and names[0] != names[1] and all(n.startswith("ep1-") for n in names[:2])
    assert names[3].startswith("index.html-")  # never a batch-level file's name
    assert output_names(["/a/ep1.mp4", "/b/ep1.mp4"]) == names[:2]  # stable across runs


def test_batch_command_equals_predict_alone_and_reports_a_failure(tmp_path, clips, alone, model):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    out = tmp_path / "season"
    run = screentime("batch", *clips, broken, "--model", model, "--out", out, "--workers", "2")
    assert_one_line_error(run, "1 of 5 videos failed", "broken.mp4", "failures.csv", status=1)
    assert "4 videos predicted, 0 already finished (skipped), 1 failed" in run.out

    names = output_names([*clips, broken])[:4]
    assert names[1:3] == ["clip1", "clip2"] and len(set(names)) == 4
    assert_same_as_alone(out, clips, names, alone)
    for name in names:
        assert (out / name / "report.html").is_file() and (out / name / "done.json").is_file()

    combined = pd.read_csv(out / "screentime.csv")
    assert list(combined.columns) == ["video", "character", "seconds", "percent", "appearances"]
    expected = pd.concat([pd.read_csv(alone[c] / "screentime.csv").assign(video=n) for c, n in zip(clips, names)],
                         ignore_index=True)[combined.columns]
    pd.testing.assert_frame_equal(combined, expected)
    totals = pd.read_csv(out / "totals.csv").set_index("character")
    assert list(totals.columns) == ["seconds", "percent", "videos", "appearances"]
    for name, group in combined.groupby("character"):
        assert totals.loc[name, "seconds"] == pytest.approx(group["seconds"].sum(), abs=1e-3)
        assert totals.loc[name, "appearances"] == group["appearances"].sum()
        assert totals.loc[name, "videos"] == (group["seconds"] > 0).sum()
        assert totals.loc[name, "percent"] == pytest.approx(100 * group["seconds"].sum() / 40.0, abs=0.01)

    failures = pd.read_csv(out / "failures.csv")
    assert list(failures["video"]) == [str(broken)] and "not a video OpenCV can read" in failures["error"][0]
    index = (out / "index.html").read_text(encoding="utf-8")
    for name in names:
        assert f'href="{name}/report.html"' in index
    assert "not a video OpenCV can read" in index

    # Resume: fix the broken video and run the same command again; only it is computed.
    make_cartoon(broken, seconds=6.0, seed=40)
    before = {p: p.stat().st_mtime_ns for name in names for p in (out / name).iterdir()}
    run = screentime("batch", *clips, broken, "--model", model, "--out", out, "--workers", "2")
    assert run.status == 0, run.err
    assert "1 videos predicted, 4 already finished (skipped), 0 failed" in run.out
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished videos untouched
    assert len(pd.read_csv(out / "failures.csv")) == 0
    assert len(pd.read_csv(out / "screentime.csv")) == len(combined) + 2


def test_api_on_an_existing_cluster_loads_the_model_once_per_worker(tmp_path, cluster, clips, alone, model):
    local, client = cluster
    client.run(setattr, batch_module, "MODEL_LOADS", 0)
    table = run_batch(clips, model, tmp_path, 1.0, scheduler=local.scheduler_address)
    names = output_names(clips)
    assert table.attrs["done"] == names and table.attrs["skipped"] == [] and table.attrs["failed"] == []
    assert list(table.columns) == ["video", "character", "seconds", "percent", "appearances"]
    assert list(dict.fromkeys(table["video"])) == names
    assert_same_as_alone(tmp_path, clips, names, alone)
    loads = client.run(getattr, batch_module, "MODEL_LOADS")
    pids = {json.loads((tmp_path / n / "done.json").read_text())["worker_pid"] for n in names}
    assert len(loads) == 2 and all(v <= 1 for v in loads.values()), loads
    assert sum(loads.values()) == len(pids) < len(clips)  # each worker that ran videos loaded the model once


def test_resume_skips_finished_videos_and_redoes_unfinished_ones(tmp_path, cluster, clips, model):
    local, _ = cluster
    address = local.scheduler_address
    first = run_batch(clips[:3], model, tmp_path, 1.0, scheduler=address)
    names = first.attrs["done"]
    assert len(names) == 3

    again = run_batch(clips[:3], model, tmp_path, 1.0, scheduler=address)
    assert again.attrs["done"] == [] and again.attrs["skipped"] == names
    pd.testing.assert_frame_equal(again, first)

    (tmp_path / names[1] / "done.json").unlink()  # as if interrupted before it finished
    (tmp_path / names[2] / "report.html").unlink()  # a file went missing
    redo = run_batch(clips[:3], model, tmp_path, 1.0, scheduler=address)
    assert redo.attrs["done"] == names[1:] and redo.attrs["skipped"] == names[:1]
    assert (tmp_path / names[2] / "report.html").is_file()
    pd.testing.assert_frame_equal(redo, first)

    other_rate = run_batch(clips[:1], model, tmp_path, 2.0, scheduler=address)  # other --fps: not the same results
    assert other_rate.attrs["done"] == names[:1]
    assert json.loads((tmp_path / names[0] / "video.json").read_text())["sampling_fps"] == 2.0


def test_failures_do_not_stop_the_others(tmp_path, cluster, clips, model):
    local, _ = cluster
    missing = tmp_path / "missing.mp4"
    empty = tmp_path / "empty.mp4"
    empty.touch()
    table = run_batch([missing, clips[1], empty], model, tmp_path / "out", 1.0, scheduler=local.scheduler_address)
    assert table.attrs["done"] == ["clip1"]
    assert [f["video"] for f in table.attrs["failed"]] == [str(missing), str(empty)]
    assert set(table["video"]) == {"clip1"}
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert list(failures.columns) == ["video", "error"] and len(failures) == 2
    errors = dict(zip(failures["video"], failures["error"]))
    assert "does not exist" in errors[str(missing)] and "empty file" in errors[str(empty)]
    assert not (tmp_path / "out" / "missing" / "done.json").exists()


def test_bad_command_lines_fail_in_one_line_before_any_cluster_starts(tmp_path, clips, model, monkeypatch):
    assert_one_line_error(screentime("batch", "--model", model, "--out", tmp_path), "VIDEO", status=2)
    assert_one_line_error(screentime("batch", clips[0], "--model", tmp_path / "nope", "--out", tmp_path),
                          "does not exist", status=1)
    assert_one_line_error(screentime("batch", clips[0], "--model", model, "--out", tmp_path, "--workers", "0"),
                          "--workers", status=2)
    assert_one_line_error(screentime("batch", clips[0], "--model", model, "--out", tmp_path, "--fps", "0"),
                          "--fps", status=2)
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2s")  # dask's own setting, shortened
    run = screentime("batch", clips[0], "--model", model, "--out", tmp_path, "--scheduler", "tcp://127.0.0.1:9")
    assert_one_line_error(run, "cannot reach the Dask scheduler at tcp://127.0.0.1:9", status=1)
