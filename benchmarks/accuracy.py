"""Accuracy benchmark: frame accuracy and worst screen-time error, per dataset, backbone and smoothing.

    python benchmarks/accuracy.py [--out data/runs/accuracy] [--shared ../shared]

Datasets: (1) a hard synthetic pair (props painted in the characters' colours, lighting changes,
occluding pillars, half to double sizes, cuts): train on one video labelled once per second, test
on another, predicted at 5 frames per second; (2) the real Megamind clip from ``../shared`` when it
is there (train on train_labels.csv, predict every frame, score frames 154-269). Backbones: colour,
the SqueezeNet file from ``../shared/models`` when present, their fusion, and the one of those three
that time-blocked validation on the training labels picks (``--backbone "a|b|c"``). Each cell: frame
accuracy (exact set of characters) / worst per-character screen-time error as % of the scored length.
Smoothing: off = each frame alone (``present_raw``); validated = the strength chosen by time-blocked
validation on the training labels (``present``); 1 s = that strength forced on the same model. Both
restart at shot cuts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import benchmark_args  # noqa: E402
from helpers.evaluate import evaluate_frames, markdown_table  # noqa: E402
from helpers.fileio import write_csv  # noqa: E402
from helpers.pipeline import predict, predict_video, train  # noqa: E402
from helpers.synthetic import make_cartoon  # noqa: E402


#: A smoothing strength forced on every model, to show what smoothing does whatever validation chose.
FIXED_STRENGTH_S = 1.0


def hard_synthetic(folder: Path) -> dict:
    train_truth = make_cartoon(folder / "hard_train.mp4", seconds=120, seed=101, hard=True)
    test_truth = make_cartoon(folder / "hard_test.mp4", seconds=60, seed=202, hard=True)
    write_csv(train_truth.iloc[::25], folder / "hard_train_labels.csv")
    return {"name": "hard synthetic (train 120 s, test another 60 s, 5 fps)", "train_video": folder / "hard_train.mp4",
            "labels": folder / "hard_train_labels.csv", "test_video": folder / "hard_test.mp4", "truth": test_truth,
            "fps": 5.0, "first_scored": 0}


def megamind(shared: Path) -> dict | None:
    d = shared / "data" / "megamind"
    if not (d / "Megamind.avi").is_file():
        return None
    return {"name": "Megamind (train frames 0-153, score 154-269, every frame)", "train_video": d / "Megamind.avi",
            "labels": d / "train_labels.csv", "test_video": d / "Megamind.avi", "truth": pd.read_csv(d / "truth.csv"),
            "fps": None, "first_scored": 154}


def score(pred: pd.DataFrame, truth: pd.DataFrame, first: int, column: str) -> tuple[float, float]:
    """Frame accuracy and the worst character's |screen-time error| as % of the scored seconds."""
    p = pred[pred["frame"] >= first].assign(present=pred[column])
    result = evaluate_frames(p.drop(columns=["present_raw"]), truth[truth["frame"] >= first])
    worst = max(c["error_pct_of_scored"] for c in result["characters"].values())
    return result["accuracy"], worst


def main() -> None:
    _, out, shared = benchmark_args(__doc__, "data/runs/accuracy")

    squeezenet = shared / "models" / "squeezenet_v1_1_imagenet.keras"
    backbones = {"colour": "colour"}
    if squeezenet.is_file():
        backbones["squeezenet"] = str(squeezenet)
        backbones["fusion"] = f"colour,{squeezenet}"
        backbones["picked by validation"] = " | ".join(backbones.values())
    datasets = [d for d in (hard_synthetic(out), megamind(shared)) if d]

    rows = []
    for data in datasets:
        row = {"dataset": data["name"]}
        for label, backbone in backbones.items():
            start = time.time()
            folder = label.replace(" ", "_")
            model = train(data["train_video"], data["labels"], out / f"model_{folder}", backbone=backbone)
            result = predict(data["test_video"], out / f"model_{folder}", out / f"pred_{folder}", fps=data["fps"])
            result_strength = model.smoothing_s
            model.smoothing_s = FIXED_STRENGTH_S  # the same features and head, smoothing forced on
            forced = predict_video(data["test_video"], model, data["fps"])
            for smoothing, table, column in (("off", result.predictions, "present_raw"),
                                             ("validated", result.predictions, "present"),
                                             (f"{FIXED_STRENGTH_S:g} s", forced.predictions, "present")):
                acc, worst = score(table, data["truth"], data["first_scored"], column)
                row[f"{label} / smoothing {smoothing}"] = f"{100 * acc:.1f}% / {worst:.2f}%"
            choice = model.training.get("backbone_choice")
            picked = f", picked {next(k for k, v in backbones.items() if v == choice['picked'])}" if choice else ""
            print(f"{data['name']}: {label} done in {time.time() - start:.0f} s "
                  f"(smoothing validated: {result_strength:g} s{picked})", file=sys.stderr)
        rows.append(row)
    table = pd.DataFrame(rows)
    write_csv(table, out / "accuracy.csv")
    print(markdown_table(table))


if __name__ == "__main__":
    main()
