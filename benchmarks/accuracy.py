"""Accuracy benchmark: frame accuracy and worst screen-time error, per dataset, backbone and smoothing.

    python benchmarks/accuracy.py [--out data/runs/accuracy] [--shared ../shared] [--train-seconds 120,300,600]
        [--dense-seconds 120] [--test-seconds 300] [--test-seed 202]

Datasets: (1) a hard synthetic pair (props painted in the characters' colours, lighting changes,
occluding pillars, half to double sizes, cuts): train on one video labelled once per second, test
on another, predicted at 5 frames per second; one row per length of the training video (the
longer ones begin with the shorter ones: same seed), to show what more labelled shots buy, and one
labelled 5 times a second (more frames of the same shots); the test video is 5 minutes long, so that
its many shots make a mistake of one shot move accuracy little, and ``--test-seed`` draws another
one from the generator; (2) the real Megamind clip from
``../shared`` when it is there (train on train_labels.csv, predict every frame, score frames
154-269). Backbones: colour, the SqueezeNet file from ``../shared/models`` when present, their
fusion, the same file run on the whole frame and max-pooled (``FILE@max``), its fusion with colour,
``FILE@max`` with the detector head (``--head detector``: a small network on the whole feature map;
the other five columns use the logistic head), and the one of those six that time-blocked
validation on the training labels picks (``--backbone "a|b|c|d|e" --head "logistic|detector"``: the
detector is tried on the one backbone it fits, ``FILE@max``). Each cell: frame accuracy (exact set of characters) / worst per-character
screen-time error as % of the scored length. Smoothing: off = each frame alone (``present_raw``);
validated = the strength chosen by time-blocked validation on the training labels (``present``);
1 s = that strength forced on the same model. Both restart at shot cuts. The last column gives 95%
intervals for the picked model's validated accuracy and for its worst character's screen-time error
(predicted - true, % of the scored length), resampling the test video's shots (mistakes come in
runs, so frames are not independent evidence).
"""

from __future__ import annotations

import argparse
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


#: Seed of the hard synthetic test video (the training video's is 101).
TEST_SEED = 202


def hard_synthetic(folder: Path, lengths: list[int], dense: list[int], test_seconds: int,
                   test_seed: int = TEST_SEED) -> list[dict]:
    """Hard pairs: a training video per length in ``lengths`` (seconds, labelled once per second) and
    per length in ``dense`` (labelled 5 times a second), one test video of ``test_seconds``."""
    seed_suffix = "" if test_seed == TEST_SEED else f"_seed{test_seed}"
    test_video = folder / f"hard_test_{test_seconds}s{seed_suffix}.mp4"
    test_truth = make_cartoon(test_video, seconds=test_seconds, seed=test_seed, hard=True)
    datasets = []
    for seconds, every in [(n, 25) for n in lengths] + [(n, 5) for n in dense]:
        suffix = ("" if seconds == 120 else f"_{seconds}s") + ("" if every == 25 else f"_every{every}")
        train_video, labels = folder / f"hard_train{suffix}.mp4", folder / f"hard_train{suffix}_labels.csv"
        train_truth = make_cartoon(train_video, seconds=seconds, seed=101, hard=True)
        write_csv(train_truth.iloc[::every], labels)
        rate = "" if every == 25 else f" labelled {25 // every} times a second"
        datasets.append({"name": f"hard synthetic (train {seconds} s{rate} = {len(train_truth[::every])} labels, "
                                 f"test another {test_seconds} s{seed_suffix.replace('_', ' ')}, 5 fps)", "train_video": train_video, "labels": labels,
                         "test_video": test_video, "truth": test_truth, "fps": 5.0, "first_scored": 0})
    return datasets


def megamind(shared: Path) -> dict | None:
    d = shared / "data" / "megamind"
    if not (d / "Megamind.avi").is_file():
        return None
    return {"name": "Megamind (train frames 0-153, score 154-269, every frame)", "train_video": d / "Megamind.avi",
            "labels": d / "train_labels.csv", "test_video": d / "Megamind.avi", "truth": pd.read_csv(d / "truth.csv"),
            "fps": None, "first_scored": 154}


def score(pred: pd.DataFrame, truth: pd.DataFrame, first: int, column: str,
          shot_starts_s: list[float] | None = None) -> tuple[float, float, str]:
    """Frame accuracy, the worst character's |screen-time error| as % of the scored seconds, and the
    95% intervals of both (resampling the shots starting at ``shot_starts_s``) as a table cell."""
    p = pred[pred["frame"] >= first].assign(present=pred[column])
    result = evaluate_frames(p.drop(columns=["present_raw"]), truth[truth["frame"] >= first],
                             shot_starts_s=shot_starts_s)
    name, worst = max(result["characters"].items(), key=lambda item: item[1]["error_pct_of_scored"])
    return result["accuracy"], worst["error_pct_of_scored"], interval_cell(result, name)


def interval_cell(result: dict, worst: str) -> str:
    """The accuracy's interval and the worst character's screen-time error interval, as a table cell."""
    interval = result["accuracy_interval"]
    if interval["low"] is None:
        return f"none ({interval['blocks']} {interval['unit']})"
    low, high = result["characters"][worst]["error_pct_interval"]
    return (f"{100 * interval['low']:.1f}-{100 * interval['high']:.1f}%; {worst} {low:+.2f} to {high:+.2f}% "
            f"({interval['blocks']} {interval['unit']})")


def main() -> None:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--train-seconds", default="120,300,600",
                            help="lengths of the hard synthetic training video labelled once a second, comma-separated")
        parser.add_argument("--dense-seconds", default="120",
                            help="lengths labelled 5 times a second (more frames, no more shots); empty for none")
        parser.add_argument("--test-seconds", type=int, default=300, help="length of the hard synthetic test video")
        parser.add_argument("--test-seed", type=int, default=TEST_SEED,
                            help=f"seed of the hard synthetic test video (default {TEST_SEED}; another seed, another video)")

    args, out, shared = benchmark_args(__doc__, "data/runs/accuracy", options)
    lengths, dense = ([int(n) for n in value.split(",") if n.strip()]
                      for value in (args.train_seconds, args.dense_seconds))

    squeezenet = shared / "models" / "squeezenet_v1_1_imagenet.keras"
    backbones = {"colour": "colour"}
    if squeezenet.is_file():
        backbones["squeezenet"] = str(squeezenet)
        backbones["fusion"] = f"colour,{squeezenet}"
        backbones["squeezenet@max"] = f"{squeezenet}@max"
        backbones["fusion@max"] = f"colour,{squeezenet}@max"
        picked = " | ".join(backbones.values())
        backbones["squeezenet@max, detector head"] = f"{squeezenet}@max"
        backbones["picked by validation"] = picked
    datasets = hard_synthetic(out, lengths, dense, args.test_seconds, args.test_seed) + [d for d in [megamind(shared)] if d]

    rows = []
    for data in datasets:
        row = {"dataset": data["name"]}
        for label, backbone in backbones.items():
            start = time.time()
            folder = f"{label.replace(' ', '_').replace(',', '')}_{data['train_video'].stem}"
            head = {"squeezenet@max, detector head": "detector", "picked by validation": "logistic|detector"}.get(
                label, "logistic")
            model = train(data["train_video"], data["labels"], out / f"model_{folder}", backbone=backbone, head=head)
            result = predict(data["test_video"], out / f"model_{folder}", out / f"pred_{folder}", fps=data["fps"])
            result_strength = model.smoothing_s
            model.smoothing_s = FIXED_STRENGTH_S  # the same features and head, smoothing forced on
            forced = predict_video(data["test_video"], model, data["fps"])
            for smoothing, table, column in (("off", result.predictions, "present_raw"),
                                             ("validated", result.predictions, "present"),
                                             (f"{FIXED_STRENGTH_S:g} s", forced.predictions, "present")):
                acc, worst, intervals = score(table, data["truth"], data["first_scored"], column,
                                              result.shot_starts_s())
                row[f"{label} / smoothing {smoothing}"] = f"{100 * acc:.1f}% / {worst:.2f}%"
                if smoothing == "validated":
                    row[f"{label} / smoothing validated: 95% intervals"] = intervals
            choice = model.training.get("backbone_choice")
            picked = f", picked {choice['picked'].replace(str(squeezenet), 'FILE')}" if choice else ""
            print(f"{data['name']}: {label} done in {time.time() - start:.0f} s "
                  f"(smoothing validated: {result_strength:g} s{picked})", file=sys.stderr)
        rows.append(row)
    table = pd.DataFrame(rows)
    intervals = [c for c in table.columns if c.endswith("95% intervals")]
    table = table[[c for c in table.columns if c not in intervals] + intervals[-1:]]  # the last backbone's
    write_csv(table, out / "accuracy.csv")
    print(markdown_table(table))


if __name__ == "__main__":
    main()
