"""Every bad input a user can feed the command line, each with the one line they see.

Each case here is a row of docs/reliability.md (a test checks that the two agree).
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from helpers.fileio import write_csv
from helpers.pipeline import train
from helpers.synthetic import make_cartoon

from .conftest import assert_one_line_error, screentime
from .videofiles import encode, strip_media, truncate, write_audio_only

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


@dataclass
class Case:
    id: str
    what: str
    args: list[str]  # {video}, {model}, {out}, {d} are filled in
    expect: str  # fragment of the one error line (status != 0) or of stderr/stdout (status 0)
    status: int = 1
    files: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("missing-video", "a video path that does not exist", ["predict", "{d}/nope.mp4", "--model", "{model}", "--out", "{out}"], "nope.mp4 does not exist; check the path"),
    Case("folder-as-video", "a folder instead of a video", ["predict", "{d}", "--model", "{model}", "--out", "{out}"], "is a folder; give the path of a video file"),
    Case("text-as-mp4", "a text file named .mp4", ["predict", "{d}/notes.mp4", "--model", "{model}", "--out", "{out}"], "is not a video OpenCV can read"),
    Case("empty-file", "a 0-byte video file", ["predict", "{d}/empty.mp4", "--model", "{model}", "--out", "{out}"], "is an empty file (0 bytes)"),
    Case("truncated-no-index", "an MP4 cut in half whose index was at the end (unrecoverable)", ["predict", "{d}/cut_plain.mp4", "--model", "{model}", "--out", "{out}"], "corrupt or truncated file"),
    Case("truncated-keeps-decodable", "an MP4 cut in half with its index first: keep what decodes, warn what was lost", ["predict", "{d}/cut_faststart.mp4", "--model", "{model}", "--out", "{out}"], "the file may be truncated", 0),
    Case("no-decodable-frame", "a video whose header lists frames but holds no picture data", ["predict", "{d}/header_only.mp4", "--model", "{model}", "--out", "{out}"], "decodes no frame"),
    Case("audio-only", "an audio-only MP4", ["predict", "{d}/audio.mp4", "--model", "{model}", "--out", "{out}"], "no video track"),
    Case("image-as-video", "a still image (PNG) instead of a video", ["predict", "{d}/frame.png", "--model", "{model}", "--out", "{out}"], "is a still image, not a video; give the video file it comes from"),
    Case("fps-above-rate", "--fps higher than the video's own rate", ["predict", "{video}", "--model", "{model}", "--out", "{out}", "--fps", "100"], "sampling every frame", 0),
    Case("fps-zero", "--fps 0", ["predict", "{video}", "--model", "{model}", "--out", "{out}", "--fps", "0"], "--fps must be a positive number", 2),
    Case("fps-negative", "--fps negative", ["predict", "{video}", "--model", "{model}", "--out", "{out}", "--fps", "-1"], "--fps must be a positive number", 2),
    Case("fps-not-a-number", "--fps not a number", ["predict", "{video}", "--model", "{model}", "--out", "{out}", "--fps", "fast"], "--fps must be a positive number", 2),
    Case("labels-missing-columns", "labels without a label column", ["train", "--video", "{video}", "--labels", "{d}/nocols.csv", "--out", "{out}/m"], "it needs 'label' and 'frame' and/or 'time_s'"),
    Case("labels-unknown-image-id", "a mapping.csv Image_ID that extract never wrote", ["train", "--video", "{video}", "--labels", "{d}/frames/mapping.csv", "--out", "{out}/m"], "Image_ID frame999.jpg"),
    Case("labels-past-the-end", "a label for a frame past the end", ["train", "--video", "{video}", "--labels", "{d}/late.csv", "--out", "{out}/m"], "labels frame 99999, but"),
    Case("labels-conflicting", "the same frame twice with different labels", ["train", "--video", "{video}", "--labels", "{d}/twice.csv", "--out", "{out}/m"], "is labelled twice, as jerry and tom"),
    Case("labels-empty", "an empty labels file", ["train", "--video", "{video}", "--labels", "{d}/empty.csv", "--out", "{out}/m"], "is empty; it needs a header row"),
    Case("labels-one-class", "only one class present", ["train", "--video", "{video}", "--labels", "{d}/onlytom.csv", "--out", "{out}/m"], "every labelled frame shows 'tom'; label some frames without tom too"),
    Case("labels-no-character", "only 'none' labels", ["train", "--video", "{video}", "--labels", "{d}/nobody.csv", "--out", "{out}/m"], "names no character"),
    Case("labels-times-disagree", "a label whose time_s is not when its frame is shown (frames win)", ["train", "--video", "{video}", "--labels", "{d}/offtime.csv", "--out", "{out}/m"], "frame 25 is at 1.00 s in", 0),
    Case("labels-unknown-class", "a mapping.csv class with no name", ["train", "--video", "{video}", "--labels", "{d}/mapping7.csv", "--out", "{out}/m"], "unknown class 7"),
    Case("model-missing", "a model folder that does not exist", ["predict", "{video}", "--model", "{d}/nomodel", "--out", "{out}"], "does not exist; train one with"),
    Case("model-partial", "a model folder without its head", ["predict", "{video}", "--model", "{d}/partial", "--out", "{out}"], "is missing or corrupt"),
    Case("model-corrupt", "a corrupted model.json", ["predict", "{video}", "--model", "{d}/corrupt", "--out", "{out}"], "model.json is corrupt"),
    Case("model-other-version", "a model made by an incompatible version", ["predict", "{video}", "--model", "{d}/future", "--out", "{out}"], "was made by screentime 9.0"),
    Case("output-not-writable", "an output folder that cannot be created", ["predict", "{video}", "--model", "{model}", "--out", "{d}/notes.mp4/out"], "cannot write"),
    Case("usage-unknown-command", "an unknown command", ["fly"], "invalid choice", 2),
]


@pytest.fixture(scope="module")
def model(trained_model):
    return trained_model


@pytest.fixture(scope="module")
def bad(tmp_path_factory, short_cartoon, model):
    """Every bad file of the table, made for real."""
    d = tmp_path_factory.mktemp("badfiles")
    (d / "notes.mp4").write_text("not a video\n" * 100)
    (d / "empty.mp4").write_bytes(b"")
    frames = [cv2.imread(str(p)) for p in []]
    cap = cv2.VideoCapture(str(short_cartoon.video))
    while len(frames) < 100:
        frames.append(cap.read()[1])
    times = np.arange(100) / 25
    truncate(make_cartoon_copy(short_cartoon.video, d / "cut_plain.mp4"), 0.5)
    truncate(encode(d / "cut_faststart.mp4", frames, times, faststart=True), 0.5)
    strip_media(encode(d / "header_only.mp4", frames, times, faststart=True))
    write_audio_only(d / "audio.mp4")
    cv2.imwrite(str(d / "frame.png"), frames[0])  # OpenCV would read it as a one-frame video
    (d / "nocols.csv").write_text("frame,what\n1,tom\n")
    (d / "late.csv").write_text("frame,label\n0,none\n25,tom\n99999,jerry\n")
    (d / "twice.csv").write_text("frame,label\n0,none\n3,tom\n3,jerry\n")
    (d / "empty.csv").write_text("")
    (d / "onlytom.csv").write_text("frame,label\n0,tom\n25,tom\n")
    (d / "nobody.csv").write_text("frame,label\n0,none\n25,None\n")
    (d / "offtime.csv").write_text("frame,time_s,label\n0,0.0,none\n25,4.0,tom\n50,2.0,jerry\n")
    (d / "mapping7.csv").write_text("Image_ID,Class\nframe0.jpg,0\nframe1.jpg,7\n")
    (d / "frames").mkdir()
    pd.DataFrame({"Image_ID": ["frame0.jpg"], "frame": [0], "time_s": [0.0]}).to_csv(d / "frames" / "frames.csv", index=False)
    (d / "frames" / "mapping.csv").write_text("Image_ID,Class\nframe0.jpg,0\nframe999.jpg,1\n")
    card = json.loads((model / "model.json").read_text())
    for name, text in [("partial", json.dumps(card)), ("corrupt", "{oops"),
                       ("future", json.dumps({**card, "format_version": 99, "screentime_version": "9.0"}))]:
        (d / name).mkdir()
        (d / name / "model.json").write_text(text)
    return d


def make_cartoon_copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def fill(args: list[str], **values) -> list[str]:
    return [a.format(**{k: str(v) for k, v in values.items()}) for a in args]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, bad, model, short_cartoon, tmp_path):
    run = screentime(*fill(case.args, video=short_cartoon.video, model=model, out=tmp_path / "out", d=bad))
    if case.status == 0:
        assert run.status == 0, run.err
        assert case.expect in run.err + run.out
        assert "Traceback" not in run.err
    else:
        assert_one_line_error(run, case.expect, status=case.status)
        assert not (tmp_path / "out" / "predictions.csv").exists()


def test_the_docs_table_lists_every_case():
    doc = DOC.read_text()
    for case in CASES:
        assert f"`{case.id}`" in doc, f"docs/reliability.md lacks a row for {case.id}"
        assert case.expect in doc, f"docs/reliability.md does not show the message of {case.id}"


def test_truncated_file_keeps_what_decodes(bad, model, tmp_path):
    run = screentime("predict", bad / "cut_faststart.mp4", "--model", model, "--out", tmp_path, "--fps", "all")
    assert run.status == 0, run.err
    video = json.loads((tmp_path / "video.json").read_text())
    assert 0 < video["frames_decoded"] < 100
    assert "claims 100 frames but only" in run.err


def _character_frames(cartoon, label: str, count: int) -> list[np.ndarray]:
    wanted = set(cartoon.truth.loc[cartoon.truth["label"] == label, "frame"][:count])
    cap, frames, index = cv2.VideoCapture(str(cartoon.video)), [], 0
    while len(frames) < count:
        ok, image = cap.read()
        assert ok
        if index in wanted:
            frames.append(image)
        index += 1
    return frames


def test_variable_frame_rate_times_come_from_timestamps(tmp_path, model, test_cartoon):
    """4 s of tom at 5 fps, then 6 s without him at 25 fps: index / nominal fps would say 1.3 s of tom."""
    tom, nobody = _character_frames(test_cartoon, "tom", 20), _character_frames(test_cartoon, "none", 150)
    times = list(np.arange(20) * 0.2) + list(4 + np.arange(150) * 0.04)
    video = encode(tmp_path / "vfr.mp4", tom + nobody, times)
    run = screentime("predict", video, "--model", model, "--out", tmp_path / "out", "--fps", "all")
    assert run.status == 0, run.err
    table = pd.read_csv(tmp_path / "out" / "screentime.csv").set_index("character")
    assert table.loc["tom", "seconds"] == pytest.approx(4.0, abs=0.2)
    assert json.loads((tmp_path / "out" / "video.json").read_text())["duration_s"] == pytest.approx(10.0, abs=0.05)


def test_one_frame_video(tmp_path, model, test_cartoon):
    video = encode(tmp_path / "one.mp4", _character_frames(test_cartoon, "tom", 1), [0.0])
    run = screentime("predict", video, "--model", model, "--out", tmp_path / "out")
    assert run.status == 0, run.err
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert list(pred["frame"]) == [0] and pred["present"][0] == "tom"
    assert pd.read_csv(tmp_path / "out" / "screentime.csv").set_index("character").loc["tom", "percent"] == 100


@pytest.mark.parametrize("size", [(321, 181), (180, 320), (3840, 2160)], ids=["odd", "portrait", "4k"])
def test_unusual_sizes(tmp_path, model, size):
    video = tmp_path / "v.mp4"
    make_cartoon(video, seconds=2 if size[0] > 2000 else 4, fps=25, size=size, seed=8)
    run = screentime("predict", video, "--model", model, "--out", tmp_path / "out", "--fps", "1")
    assert run.status == 0, run.err
    assert len(pd.read_csv(tmp_path / "out" / "predictions.csv")) in (2, 4)


def test_names_with_capitals_and_spaces_and_ignore(tmp_path, train_cartoon):
    truth = train_cartoon.truth.iloc[::25].copy()
    truth["label"] = truth["label"].replace({"tom": "Tom Cat", "jerry": " JERRY ", "jerry;tom": "jerry; TOM  cat"})
    truth.loc[truth.index[:3], "label"] = "ignore"
    write_csv(truth, tmp_path / "labels.csv")
    run = screentime("train", "--video", train_cartoon.video, "--labels", tmp_path / "labels.csv", "--out", tmp_path / "m")
    assert run.status == 0, run.err
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["characters"] == ["jerry", "tom_cat"]
    assert card["training"]["labelled_frames"] == len(truth) - 3


def test_disk_full_leaves_no_partial_file(tmp_path, model, short_cartoon):
    """Writes fail past 200 bytes (as on a full disk): one clear line, no half-written CSV."""
    out = tmp_path / "out"

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    proc = subprocess.run([sys.executable, "-m", "helpers", "predict", str(short_cartoon.video), "--model", str(model),
                           "--out", str(out), "--no-cache"], capture_output=True, text=True, preexec_fn=small_files)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot write" in proc.stderr and "File too large" in proc.stderr
    assert not (out / "predictions.csv").exists()
    assert [p.name for p in out.iterdir()] == []  # no temporary leftovers


def test_same_inputs_give_identical_predictions(tmp_path, model, test_cartoon, train_cartoon, train_labels):
    runs = []
    for i in range(2):
        screentime("predict", test_cartoon.video, "--model", model, "--out", tmp_path / f"p{i}", "--no-cache")
        runs.append((tmp_path / f"p{i}" / "predictions.csv").read_bytes())
    screentime("predict", test_cartoon.video, "--model", model, "--out", tmp_path / "cached")
    screentime("predict", test_cartoon.video, "--model", model, "--out", tmp_path / "cached")
    runs.append((tmp_path / "cached" / "predictions.csv").read_bytes())
    assert runs[0] == runs[1] == runs[2]
    for i in range(2):  # retraining with the same seed, the mlp head included
        train(train_cartoon.video, train_labels, tmp_path / f"m{i}", head="mlp", epochs=5, seed=3)
        screentime("predict", test_cartoon.video, "--model", tmp_path / f"m{i}", "--out", tmp_path / f"q{i}")
    assert (tmp_path / "q0" / "predictions.csv").read_bytes() == (tmp_path / "q1" / "predictions.csv").read_bytes()
