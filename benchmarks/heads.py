"""Heads benchmark: the README's "Measured" table, reproducible.

    python benchmarks/heads.py [--out data/runs/heads] [--shared ../shared] [--heads logistic,mlp,detector]

For each head (logistic, mlp) and backbone (colour, and the SqueezeNet file from
``../shared/models`` when present, as it is and as ``FILE@max``), and for the detector head on
``FILE@max``: train on the demo's training
video (90 s labelled once per second) and predict the demo's different 60 s test video at 5 frames
per second; and, when
``../shared/data/megamind`` is there, train on its ``train_labels.csv`` and score frames 154-269
predicted at every frame. Each cell: accuracy after smoothing (before smoothing; the strength
validation chose). Also the training time on the demo video (features cached first, so it is the
head's and the validation's time; the detector's whole feature maps are not cached, so its time
includes computing them).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import benchmark_args  # noqa: E402
from helpers.demo import LABEL_EVERY_S, PREDICT_FPS, TEST_SECONDS, TRAIN_SECONDS, VIDEO_FPS  # noqa: E402
from helpers.evaluate import evaluate_frames, markdown_table  # noqa: E402
from helpers.fileio import write_csv  # noqa: E402
from helpers.pipeline import predict, train  # noqa: E402
from helpers.synthetic import make_cartoon  # noqa: E402

MLP_EPOCHS = 60


def cell(predictions: pd.DataFrame, truth: pd.DataFrame, strength_s: float, first_frame: int = 0) -> str:
    """``after (before; strength)`` for the predictions from ``first_frame`` on."""
    scores = evaluate_frames(predictions[predictions["frame"] >= first_frame], truth[truth["frame"] >= first_frame])
    strength = f"{strength_s:g} s" if strength_s else "off"
    return f"{100 * scores['accuracy']:.1f}% ({100 * scores['accuracy_raw']:.1f}%; {strength})"


def main() -> None:
    def options(parser) -> None:
        parser.add_argument("--heads", default="logistic,mlp,detector", help="heads to run, comma-separated")

    args, out, shared = benchmark_args(__doc__, "data/runs/heads", options)
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]

    train_truth = make_cartoon(out / "train.mp4", seconds=TRAIN_SECONDS, fps=VIDEO_FPS, seed=1)  # the demo's
    test_truth = make_cartoon(out / "test.mp4", seconds=TEST_SECONDS, fps=VIDEO_FPS, seed=2)
    write_csv(train_truth.iloc[::round(VIDEO_FPS * LABEL_EVERY_S)], out / "train_labels.csv")
    megamind = shared / "data" / "megamind"
    squeezenet = shared / "models" / "squeezenet_v1_1_imagenet.keras"
    backbones = {"colour": "colour"}
    if squeezenet.is_file():
        backbones["SqueezeNet"] = str(squeezenet)
        backbones["SqueezeNet@max"] = f"{squeezenet}@max"  # the whole frame, max-pooled

    runs = [(head, label, backbone) for head in ("logistic", "mlp") if head in heads
            for label, backbone in backbones.items()]
    if squeezenet.is_file() and "detector" in heads:  # the detector needs a Keras backbone on the whole frame
        runs.append(("detector", "SqueezeNet@max", backbones["SqueezeNet@max"]))
    rows = []
    for head, label, backbone in runs:
        options = {"backbone": backbone, "head": head, "epochs": MLP_EPOCHS if head == "mlp" else None}
        train(out / "train.mp4", out / "train_labels.csv", out / "model", **options)  # fills the cache
        start = time.perf_counter()
        model = train(out / "train.mp4", out / "train_labels.csv", out / "model", **options)
        train_s = time.perf_counter() - start
        result = predict(out / "test.mp4", out / "model", out / "pred", fps=PREDICT_FPS)
        row = {"head": head, "backbone": label,
               "synthetic test video": cell(result.predictions, test_truth, model.smoothing_s)}
        if (megamind / "Megamind.avi").is_file():
            mm = train(megamind / "Megamind.avi", megamind / "train_labels.csv", out / "model_mm", **options)
            result = predict(megamind / "Megamind.avi", out / "model_mm", out / "pred_mm", fps=None)
            truth = pd.read_csv(megamind / "truth.csv")
            row["Megamind 154-269"] = cell(result.predictions, truth, mm.smoothing_s, first_frame=154)
        row["train (demo)"] = f"{train_s:.1f} s"
        rows.append(row)
        print(f"{head} / {label} done", file=sys.stderr)
    table = pd.DataFrame(rows)
    write_csv(table, out / "heads.csv")
    print(markdown_table(table))


if __name__ == "__main__":
    main()
