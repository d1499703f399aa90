"""report.html: self-contained, one thumbnail per appearance, written by predict, and really rendered by Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import pipeline
from helpers.report import appearance_frames, clock, write_report

from .conftest import screentime

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def model(trained_model) -> Path:
    return trained_model


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, model, test_cartoon):
    out = tmp_path_factory.mktemp("report-run")
    result = pipeline.predict(test_cartoon.video, model, out, 1.0)
    report = write_report(test_cartoon.video, result, out, fps=1.0, model_dir=model)
    return result, report


def _img_sources(text: str) -> list[str]:
    return re.findall(r'<img[^>]*\bsrc="([^"]*)"', text)


def test_report_is_self_contained_with_a_thumbnail_per_appearance(predicted, test_cartoon):
    result, report = predicted
    assert report.name == "report.html"
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "<table" in text and "<style>" in text
    sources = _img_sources(text)
    # timeline + confidence figures, then one thumbnail per appearance (the video has a handful)
    assert len(sources) == 2 + len(result.segments) and len(result.segments) >= 2
    assert all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in sources)
    assert not re.search(r'(src|href)="(https?:)?//', text), "nothing may be fetched from the network"
    assert "<script" not in text
    for name in result.characters:
        assert f"{name} <small" in text  # its strip's heading
    for start in result.segments["start_s"]:
        assert clock(start) in text  # each thumbnail is captioned with its time
    assert len(text) < 400_000  # thumbnails are small JPEGs


def test_thumbnails_are_the_first_sampled_frame_of_each_appearance(predicted):
    result, _ = predicted
    frames = appearance_frames(result.predictions, result.segments)
    by_frame = result.predictions.set_index("frame")
    for frame, (_, seg) in zip(frames, result.segments.iterrows()):
        assert frame is not None
        assert by_frame.loc[frame, "time_s"] == pytest.approx(seg["start_s"], abs=1e-3)
        assert seg["character"] in by_frame.loc[frame, "present"].split(";")


def test_many_appearances_are_thinned_evenly(predicted, test_cartoon, tmp_path):
    result, _ = predicted
    counts = result.segments["character"].value_counts()
    report = write_report(test_cartoon.video, result, tmp_path, fps=1.0, max_thumbnails=1)
    text = report.read_text(encoding="utf-8")
    assert len(_img_sources(text)) == 2 + len(counts)  # one per character
    for count in counts[counts > 1]:
        assert f"1 of {count} appearances shown" in text


def test_clock():
    assert clock(0) == "0:00.0" and clock(65.0) == "1:05.0" and clock(3725.0) == "1:02:05.0"


def test_predict_writes_the_report_unless_told_not_to(tmp_path, model, short_cartoon):
    run = screentime("predict", short_cartoon.video, "--model", model, "--out", tmp_path / "a")
    assert run.status == 0, run.err
    assert "<table" in (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    run = screentime("predict", short_cartoon.video, "--model", model, "--out", tmp_path / "b", "--no-report")
    assert run.status == 0, run.err
    assert (tmp_path / "b" / "screentime.csv").is_file() and not (tmp_path / "b" / "report.html").exists()


_PROBE = """<script>window.addEventListener("load", function () {
  var images = [].slice.call(document.images);
  document.body.setAttribute("data-probe", JSON.stringify({
    tables: document.querySelectorAll("table").length,
    rows: document.querySelectorAll("table tbody tr").length,
    images: images.length,
    loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length}));
});</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium to render "
                    "report.html (CI installs it: apt-get install chromium)")
def test_report_renders_in_headless_chromium(predicted, tmp_path):
    result, report = predicted
    page = tmp_path / "report.html"
    shutil.copy(report, page)
    shot = tmp_path / "report.png"
    run = _chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri())
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1600, 1200)
    assert image.std() > 20, "the screenshot is blank"
    colours = np.unique(image.reshape(-1, 3) // 8, axis=0)
    assert len(colours) > 200, "no pictures on the page (figures and thumbnails are colourful)"

    # What the browser built: the table has a row per character and every embedded image decoded.
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    run = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    found = re.search(r'data-probe="([^"]*)"', run.stdout)
    assert found, run.stderr[-2000:]
    dom = json.loads(html.unescape(found.group(1)))
    assert dom["tables"] >= 1 and dom["rows"] >= len(result.characters)
    assert dom["images"] == 2 + len(result.segments) and dom["loaded"] == dom["images"], dom
