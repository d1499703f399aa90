"""Speed benchmark: the 2018 tutorial's pipeline against the project's, in one run, as ratios.

    python benchmarks/speed.py [--out data/runs/speed] [--minutes 5] [--long-minutes 60] [--quick]

On one generated video (default 5 minutes, 640x360, 25 fps) sampled at 1 frame per second:
- the tutorial's path as written (Keras 3 names): read() every frame and write a JPEG per second,
  read the JPEGs back, resize with skimage.transform.resize, VGG16 features with predict();
  and for training, its dense head (25088 -> 1024 -> 3, 100 epochs) on 300 labelled frames;
- the project's `predict` with a VGG16 backbone (float32, the default, and with
  SCREENTIME_PRECISION=auto: bfloat16 on a CPU with AMX or AVX-512 BF16; the float32 one takes turns with the
  tutorial's VGG16 step, --vgg-repeats times, medians) and with the default backbone, cold (no cache,
  shot detection on, as by default), and again warm (features and shots from the cache); the
  default `predict` also with --no-shots; `train` on 300 labelled frames;
- decode alone (grab every frame, retrieve the sampled ones) and the default backbone's model
  alone on those frames: the overhead baseline. The default predict's runs (with and without
  shots) and the baseline's are repeated (--repeats, interleaved) and their medians reported,
  and the overhead ratio also round by round (lowest, median, highest: timings on a shared machine vary);
  a third variant fetches and shrinks the shot detector's looks but judges none: what shot detection
  costs before PySceneDetect does any work (the floor for the overhead with shots on);
- the same overhead runs on an H.264 copy of the video (libx264 through PyAV, which the test extra
  installs), since most real footage is H.264 and the generated video is MPEG-4 part 2, which
  decodes about twice as fast; skipped without PyAV;
- peak memory (RSS) of `predict` with the default backbone on the 5-minute video and on a long
  low-resolution one (default 60 minutes, 160x90), each measured in a fresh process.
Speed does not depend on weight values, so VGG16 uses weights=None (ImageNet weights need a download).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


#: The overhead baseline's two rows.
DECODE_ALONE = "baseline: decode alone (grab/retrieve sampled frames)"
MODEL_ALONE = "baseline: default backbone alone on those frames"
TUTORIAL_VGG16 = "tutorial: VGG16 predict() (median of --vgg-repeats)"
PROJECT_VGG16 = "project: predict, VGG16 (cold; median of --vgg-repeats)"
LOOKS_NOT_JUDGED = "project: predict, default backbone, shot looks fetched and shrunk, none judged (cold)"
VGG16_AUTO = "project: predict, VGG16, SCREENTIME_PRECISION=auto (cold)"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def interleaved_times(repeats: int, runs: dict) -> dict[str, list[float]]:
    """Wall times of each named call, the calls taking turns so that a busy moment hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, call in runs.items():
            times[name].append(timed(call)[1])
    return times


def predict_looks_not_judged(video: Path, out: Path) -> None:
    """The default predict with a shot detector that fetches and shrinks its looks as usual but
    judges none (PySceneDetect never runs): the floor of what shot detection can cost here."""
    from helpers.pipeline import predict
    from helpers.shots import CutDetector

    judge_all = CutDetector._judge_all
    CutDetector._judge_all = lambda self, looks: None
    try:
        predict(video, out / "model_default", out / "pred_floor", 1.0)
    finally:
        CutDetector._judge_all = judge_all


def overhead_runs(video: Path, out: Path, repeats: int) -> tuple[dict[str, list[float]], int]:
    """The default predict cold (with and without shots, and with looks not judged) and its
    baseline, decode alone and model alone, each run ``repeats`` times taking turns; and how many
    frames were sampled."""
    from helpers.backbones import ColourBackbone
    from helpers.pipeline import predict
    from helpers.video import sample_frames

    images = [f.image for f in sample_frames(video, 1.0)]
    backbone = ColourBackbone()
    times = interleaved_times(repeats, {
        "project: predict, default backbone (cold)":
            lambda: predict(video, out / "model_default", out / "pred_default", 1.0),
        "project: predict, default backbone, --no-shots (cold)":
            lambda: predict(video, out / "model_default", out / "pred_noshots", 1.0, shots=False),
        LOOKS_NOT_JUDGED: lambda: predict_looks_not_judged(video, out),
        DECODE_ALONE: lambda: [f.index for f in sample_frames(video, 1.0)],
        MODEL_ALONE: lambda: backbone.features(images),
    })
    return times, len(images)


def h264_copy(video: Path, path: Path) -> bool:
    """Re-encode ``video`` to H.264 at ``path`` (libx264 veryfast, CRF 23, same frames and rate), as
    cameras and streaming sites deliver video; False without PyAV (``pip install av``)."""
    try:
        import av
    except ImportError:
        return False
    from fractions import Fraction

    tmp = path.with_suffix(".part.mp4")
    with av.open(str(video)) as source, av.open(str(tmp), "w") as target:
        rate = source.streams.video[0].average_rate
        stream = target.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = source.streams.video[0].width, source.streams.video[0].height, "yuv420p"
        for index, frame in enumerate(source.decode(video=0)):
            frame.pts, frame.time_base = index, Fraction(1) / rate
            target.mux(stream.encode(frame))
        target.mux(stream.encode())
    tmp.replace(path)
    return True


def round_ratios(times: dict[str, list[float]], name: str) -> list[float]:
    """``name``'s time over decode alone + model alone, round by round."""
    return [t / (d + m) for t, d, m in zip(times[name], times[DECODE_ALONE], times[MODEL_ALONE])]


def tutorial_extract(video: Path, folder: Path) -> int:
    """Step 1 as the tutorial wrote it: read() every frame, keep frameId % floor(fps) == 0 as JPEG."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    cap = cv2.VideoCapture(str(video))
    frame_rate = cap.get(5)
    while cap.isOpened():
        frame_id = cap.get(1)
        ret, frame = cap.read()
        if not ret:
            break
        if frame_id % math.floor(frame_rate) == 0:
            cv2.imwrite(str(folder / f"frame{count}.jpg"), frame)
            count += 1
    cap.release()
    return count


def tutorial_read_back(folder: Path, count: int) -> np.ndarray:
    import matplotlib.pyplot as plt

    return np.array([plt.imread(str(folder / f"frame{i}.jpg")) for i in range(count)])


def tutorial_resize(X: np.ndarray) -> np.ndarray:
    from skimage.transform import resize

    return np.array([resize(x, preserve_range=True, output_shape=(224, 224)).astype(int) for x in X])


def tutorial_vgg16(X: np.ndarray) -> np.ndarray:
    from helpers.backbones import keras_module

    keras_module()  # TensorFlow backend, quiet start-up
    from keras.applications.vgg16 import VGG16, preprocess_input

    base_model = VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    return base_model.predict(preprocess_input(X.astype("float32")), verbose=0)


def tutorial_head(features: np.ndarray, classes: np.ndarray) -> None:
    """The tutorial's dense head: 25088 -> 1024 (sigmoid) -> 3 (softmax), adam, 100 epochs."""
    from helpers.backbones import keras_module

    keras = keras_module()
    X = features.reshape(len(features), -1)
    X = X / max(X.max(), 1e-8)
    y = keras.utils.to_categorical(classes, 3)
    model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(1024, activation="sigmoid"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(X, y, epochs=100, verbose=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/runs/speed")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="1-minute videos, to try the script")
    parser.add_argument("--repeats", type=int, default=7, help="runs of the overhead measurements (median)")
    parser.add_argument("--vgg-repeats", type=int, default=3,
                        help="runs of the tutorial's VGG16 step and the project's VGG16 predict, taking turns (median)")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.long_minutes = 1.0, 3.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    os.environ["SCREENTIME_CACHE"] = str(cache)

    from helpers.fileio import write_csv
    from helpers.pipeline import predict, train
    from helpers.precision import PRECISION_ENV, cpu_bfloat16_flag
    from helpers.synthetic import make_cartoon
    from helpers.threads import requested_threads
    from common import cpu_model

    video = out / f"video_{args.minutes:g}min_640x360.mp4"
    truth_csv = out / f"video_{args.minutes:g}min_truth.csv"
    if not (video.is_file() and truth_csv.is_file()):  # a run stopped between the two makes both again
        write_csv(make_cartoon(video, seconds=60 * args.minutes, fps=25, size=(640, 360), seed=7), truth_csv)
    import pandas as pd

    truth = pd.read_csv(truth_csv)
    labels = truth.iloc[:: max(1, len(truth) // 300)].head(300)
    write_csv(labels, out / "labels_300.csv")
    rows: dict[str, float] = {}

    # --- the tutorial, as written ---------------------------------------------------------------
    shutil.rmtree(out / "tutorial_frames", ignore_errors=True)
    count, rows["tutorial: extract (read every frame, JPEG per second)"] = timed(tutorial_extract, video, out / "tutorial_frames")
    X, rows["tutorial: read JPEGs back"] = timed(tutorial_read_back, out / "tutorial_frames", count)
    X, rows["tutorial: skimage resize"] = timed(tutorial_resize, X)
    # VGG16's time varies a lot between runs (the tutorial's predict() took 53 s in one run and 86 s
    # in the next), so the tutorial's VGG16 step and the project's VGG16 predict take turns.
    os.environ["SCREENTIME_NO_CACHE"] = "1"
    train(video, out / "labels_300.csv", out / "model_vgg16", backbone="vgg16", weights=None)
    tutorial_features: list[np.ndarray] = []
    vgg16 = interleaved_times(args.vgg_repeats, {
        TUTORIAL_VGG16: lambda: tutorial_features.append(tutorial_vgg16(X)),
        PROJECT_VGG16: lambda: predict(video, out / "model_vgg16", out / "pred_vgg16", 1.0),
    })
    feats = tutorial_features[-1]
    rows[TUTORIAL_VGG16] = statistics.median(vgg16[TUTORIAL_VGG16])
    tutorial_total = sum(v for k, v in rows.items() if k.startswith("tutorial:"))
    rows["tutorial: total to features"] = tutorial_total
    classes = np.array([{"none": 0, "jerry": 1, "tom": 2}.get(l, 2) for l in labels["label"]])
    lab_idx = np.linspace(0, len(feats) - 1, len(classes)).astype(int)
    _, rows["tutorial: dense head, 100 epochs, 300 frames"] = timed(tutorial_head, feats[lab_idx], classes)

    # --- the project ---------------------------------------------------------------------------
    _, rows["project: train, default backbone, 300 frames (no cache)"] = timed(
        train, video, out / "labels_300.csv", out / "model_default")
    rows[PROJECT_VGG16] = statistics.median(vgg16[PROJECT_VGG16])
    os.environ[PRECISION_ENV] = "auto"  # bfloat16 where the CPU multiplies it (helpers.precision)
    _, rows[VGG16_AUTO] = timed(predict, video, out / "model_vgg16", out / "pred_vgg16_auto", 1.0)
    del os.environ[PRECISION_ENV]

    overhead, samples = overhead_runs(video, out, args.repeats)
    rows.update({name: statistics.median(t) for name, t in overhead.items()})
    per_round = round_ratios(overhead, "project: predict, default backbone (cold)")
    h264 = out / f"video_{args.minutes:g}min_640x360_h264.mp4"
    h264_round: list[float] = []
    if h264.is_file() or h264_copy(video, h264):
        overhead_h264, _ = overhead_runs(h264, out, args.repeats)
        rows.update({f"H.264 copy, {name}": statistics.median(t) for name, t in overhead_h264.items()})
        h264_round = round_ratios(overhead_h264, "project: predict, default backbone (cold)")
    else:
        print("PyAV is not installed (pip install av): no H.264 rows", file=sys.stderr)
    del os.environ["SCREENTIME_NO_CACHE"]
    shutil.rmtree(cache, ignore_errors=True)
    _, rows["project: predict, default backbone (fills the cache)"] = timed(predict, video, out / "model_default", out / "pred_default", 1.0)
    _, rows["project: predict, default backbone (warm cache)"] = timed(predict, video, out / "model_default", out / "pred_default", 1.0)

    # --- peak memory, each in a fresh process ---------------------------------------------------
    long_video = out / f"video_{args.long_minutes:g}min_160x90.mp4"
    if not long_video.is_file():
        make_cartoon(long_video, seconds=60 * args.long_minutes, fps=25, size=(160, 90), seed=8)
    env = {**os.environ, "SCREENTIME_NO_CACHE": "1"}
    memory = {}
    for name, v in (("short", video), ("long", long_video)):
        # VmHWM (peak RSS of this process image): ru_maxrss would inherit the parent's peak across exec.
        cmd = [sys.executable, "-c", "from helpers.pipeline import predict; "
               f"predict({str(v)!r}, {str(out / 'model_default')!r}, {str(out / ('mem_' + name))!r}, 1.0); "
               "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        memory[name] = int(proc.stdout.strip().splitlines()[-1]) / 1024

    # --- report -----------------------------------------------------------------------------------
    tut, tut_train = rows["tutorial: total to features"], rows["tutorial: dense head, 100 epochs, 300 frames"]
    vgg, default = rows[PROJECT_VGG16], rows["project: predict, default backbone (cold)"]
    baseline = rows[DECODE_ALONE] + rows[MODEL_ALONE]
    before_vgg16 = tut - rows[TUTORIAL_VGG16]  # the tutorial's extract, read back and resize
    vgg16_round = [(before_vgg16 + t) / p for t, p in zip(vgg16[TUTORIAL_VGG16], vgg16[PROJECT_VGG16])]
    h264_baseline = rows.get(f"H.264 copy, {DECODE_ALONE}", math.nan) + rows.get(f"H.264 copy, {MODEL_ALONE}", math.nan)
    ratios = {
        "VGG16: tutorial / project predict (target >= 1.4)": tut / vgg,
        f"VGG16: the same, round by round ({args.vgg_repeats} rounds): lowest": min(vgg16_round),
        f"VGG16: the same, round by round ({args.vgg_repeats} rounds): highest": max(vgg16_round),
        "VGG16: tutorial / project predict with SCREENTIME_PRECISION=auto": tut / rows[VGG16_AUTO],
        "default: tutorial / project predict (target >= 8)": tut / default,
        "train: tutorial features + head / project train (target >= 20)":
            (tut + tut_train) / rows["project: train, default backbone, 300 frames (no cache)"],
        "overhead: project predict / (decode alone + model alone) (target <= 1.25)": default / baseline,
        f"overhead, round by round ({args.repeats} rounds): lowest": min(per_round),
        f"overhead, round by round ({args.repeats} rounds): median": statistics.median(per_round),
        f"overhead, round by round ({args.repeats} rounds): highest": max(per_round),
        "overhead without shot detection (--no-shots), for comparison":
            rows["project: predict, default backbone, --no-shots (cold)"] / baseline,
        "overhead with the shot looks fetched and shrunk but none judged (the floor with shots on)":
            rows[LOOKS_NOT_JUDGED] / baseline,
        **({"H.264 copy: overhead, project predict / (decode alone + model alone)":
                rows["H.264 copy, project: predict, default backbone (cold)"] / h264_baseline,
            f"H.264 copy: overhead, round by round ({args.repeats} rounds): lowest": min(h264_round),
            f"H.264 copy: overhead, round by round ({args.repeats} rounds): median": statistics.median(h264_round),
            f"H.264 copy: overhead, round by round ({args.repeats} rounds): highest": max(h264_round),
            "H.264 copy: overhead without shot detection (--no-shots)":
                rows["H.264 copy, project: predict, default backbone, --no-shots (cold)"] / h264_baseline,
            "H.264 copy: overhead with the shot looks not judged (the floor)":
                rows[f"H.264 copy, {LOOKS_NOT_JUDGED}"] / h264_baseline}
           if h264_round else {}),
        "warm cache: cold / warm (target >= 20)":
            rows["project: predict, default backbone (fills the cache)"] / rows["project: predict, default backbone (warm cache)"],
        "memory: long / short video peak RSS (target <= 1.2)": memory["long"] / memory["short"],
    }
    facts = {"video": f"{args.minutes:g} min, 640x360, 25 fps, {len(truth)} frames; sampled 1 fps: {samples} frames",
             "long video": f"{args.long_minutes:g} min, 160x90, 25 fps", "cpu cores": os.cpu_count(),
             "H.264 copy": "the video re-encoded with libx264 (veryfast, CRF 23) through PyAV" if h264_round else "skipped (no PyAV)",
             "SCREENTIME_PRECISION=auto": f"bfloat16 (CPU flag {cpu_bfloat16_flag()})" if cpu_bfloat16_flag() else "float32 (no bfloat16 CPU flag)",
             "cpu": cpu_model(),
             "tensorflow threads": f"one op at a time, {requested_threads() or 'one thread per core'} within an op"}
    lines = ["| stage | seconds |", "| --- | --- |"] + [f"| {k} | {v:.2f} |" for k, v in rows.items()]
    lines += ["", "| peak memory (RSS) of predict, default backbone | MB |", "| --- | --- |"]
    lines += [f"| {k} video | {v:.0f} |" for k, v in memory.items()]
    lines += ["", "| ratio | value |", "| --- | --- |"] + [f"| {k} | {v:.2f} |" for k, v in ratios.items()]
    report = "\n".join(lines)
    print(json.dumps(facts, indent=1))
    print(report)
    (out / "speed.md").write_text(json.dumps(facts, indent=1) + "\n\n" + report + "\n")


if __name__ == "__main__":
    main()
