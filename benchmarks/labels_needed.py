"""How many labels does a user need? Active learning vs evenly in time vs random, on synthetic cartoons.

    python benchmarks/labels_needed.py [--out data/runs/labels_needed] [--pairs 5] [--kind easy,hard]

For each pair of synthetic videos (a train video, a different test video), the candidates are the
train video's frames sampled once per second. A simulated user labels them, with the truth, in the
order proposed by

- ``active``: the labelling widget's own order (``helpers.active.Planner``): one frame per shot and
  evenly in time until every character has 3 frames with and 3 without it, then the frame the
  retrained model is least sure about, retrained after every label;
- ``even``: evenly in time (farthest-point in time, ignoring shots);
- ``random``: a random order (the mean over ``--random-seeds`` orders).

After each label a logistic head (the project's default) is trained on the labels so far, and frame
accuracy (the exact set of characters, threshold 0.5, no smoothing) is scored on the test video's
frames sampled once per second. "Labels needed" is the smallest count from which accuracy reaches
the target and stays at or above it for every later label ("never" when that does not happen within
all the candidates). Next to it: the mean test accuracy after 20 and 40 labels, and the widget's own
estimate after 40 (time-blocked cross-validation on the labelled frames: what the user sees).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import active  # noqa: E402
from helpers.backbones import ColourBackbone  # noqa: E402
from helpers.evaluate import markdown_table  # noqa: E402
from helpers.features import extract_features  # noqa: E402
from helpers.fileio import write_csv  # noqa: E402
from helpers.labels import label_matrix, parse_label  # noqa: E402
from helpers.shots import shot_starts  # noqa: E402
from helpers.synthetic import CHARACTERS, make_cartoon  # noqa: E402

BUDGETS = (20, 40)
FIRST_SCORED = 4  # fewer labels than this are not scored (no model can be trained on them)


def truth_matrix(truth: pd.DataFrame, frames: np.ndarray) -> np.ndarray:
    labels = truth.set_index("frame").loc[frames, "label"]
    return label_matrix(pd.Series([parse_label(v, "truth") for v in labels]), list(CHARACTERS))


def labels_needed(curve: np.ndarray, target: float) -> int | None:
    """Smallest label count (>= FIRST_SCORED) from which accuracy stays >= target; None if never."""
    counts = np.arange(1, len(curve) + 1)
    below = np.flatnonzero((curve < target - 1e-9) & (counts >= FIRST_SCORED))
    if not len(below):
        return FIRST_SCORED
    last = int(below[-1])
    return last + 2 if last + 1 < len(curve) else None


class Pair:
    """A train video (candidates at 1 fps, with features and truth) and a test video (1 fps)."""

    def __init__(self, folder: Path, seed: int, hard: bool, train_s: float, test_s: float):
        kind = "hard" if hard else "easy"
        self.name = f"{kind} pair {seed}"
        train, test = folder / f"{kind}_train_{seed}.mp4", folder / f"{kind}_test_{seed}.mp4"
        train_truth = make_cartoon(train, seconds=train_s, seed=101 + seed, hard=hard)
        test_truth = make_cartoon(test, seconds=test_s, seed=202 + seed, hard=hard)
        backbone = ColourBackbone()
        tr, te = extract_features(train, backbone, 1.0), extract_features(test, backbone, 1.0)
        self.frames, self.times, self.X = tr.frames["frame"].to_numpy(), tr.frames["time_s"].to_numpy(), tr.X
        self.Y = truth_matrix(train_truth, self.frames)
        self.X_test, self.Y_test = te.X, truth_matrix(test_truth, te.frames["frame"].to_numpy()).astype(bool)
        self.shots = shot_starts(train)

    def accuracy(self, positions: list[int]) -> float:
        head = active.TolerantHead().fit(self.X[positions], self.Y[positions])
        present = head.predict_proba(self.X_test) >= active.THRESHOLD
        return float(np.mean(np.all(present == self.Y_test, axis=1)))

    def curve(self, order: list[int]) -> np.ndarray:
        return np.array([self.accuracy(order[:n]) if n >= FIRST_SCORED else 0.0 for n in range(1, len(order) + 1)])

    def estimate(self, positions: list[int]) -> float:
        """The widget's time-blocked cross-validated accuracy estimate on these labelled frames."""
        order = sorted(positions)
        return active.estimate_accuracy(self.X[order], self.Y[order], self.times[order]).accuracy

    def active_order(self) -> list[int]:
        """The widget's order, the user answering with the truth after each proposal."""
        planner = active.Planner(self.frames, self.times, self.X, list(CHARACTERS), self.shots, estimate=False)
        order = []
        while (position := planner.next_position()) is not None:
            planner.set_label(position, frozenset(c for c, on in zip(CHARACTERS, self.Y[position]) if on))
            order.append(position)
        return order

    def even_order(self) -> list[int]:
        position_of = {int(f): i for i, f in enumerate(self.frames)}
        return [position_of[f] for f in active.evenly_in_time(self.frames, self.times)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/runs/labels_needed")
    parser.add_argument("--kind", default="easy,hard", help="easy, hard or both (comma-separated)")
    parser.add_argument("--pairs", type=int, default=5, help="video pairs per kind (different seeds)")
    parser.add_argument("--random-seeds", type=int, default=5)
    parser.add_argument("--train-seconds", type=float, default=120.0)
    parser.add_argument("--test-seconds", type=float, default=60.0)
    parser.add_argument("--target", type=float, default=0.95)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SCREENTIME_CACHE", str(out / "cache"))

    rows, curves = [], []
    for kind in [k.strip() for k in args.kind.split(",") if k.strip()]:
        summary: dict[str, list] = {}
        for seed in range(args.pairs):
            start = time.time()
            pair = Pair(out, seed, kind == "hard", args.train_seconds, args.test_seconds)
            orders = {"active": [pair.active_order()], "even": [pair.even_order()],
                      "random": [list(np.random.default_rng(s).permutation(len(pair.frames)))
                                 for s in range(args.random_seeds)]}
            row = {"video pair": pair.name}
            for strategy, runs in orders.items():
                strategy_curves = [pair.curve(order) for order in runs]
                needed = [labels_needed(c, args.target) for c in strategy_curves]
                mean_curve = np.mean(strategy_curves, axis=0)
                for n, acc in enumerate(mean_curve, start=1):
                    curves.append({"pair": pair.name, "strategy": strategy, "labels": n, "accuracy": round(acc, 4)})
                row[strategy] = _needed_text(needed, len(pair.frames))
                summary.setdefault(strategy, []).append(needed)
                for budget in BUDGETS:
                    row[f"{strategy} @{budget}"] = f"{100 * mean_curve[budget - 1]:.0f}%"
                    summary.setdefault(f"{strategy} @{budget}", []).append(mean_curve[budget - 1])
                if strategy != "random":  # what the widget would have shown the user after BUDGETS[-1] labels
                    estimate = pair.estimate(runs[0][:BUDGETS[-1]])
                    row[f"{strategy} estimate @{BUDGETS[-1]}"] = f"{100 * estimate:.0f}%"
                    summary.setdefault(f"{strategy} estimate @{BUDGETS[-1]}", []).append(estimate)
            rows.append(row)
            print(f"{pair.name}: {time.time() - start:.0f} s", file=sys.stderr)
        total = {"video pair": f"**{kind}: all {args.pairs} pairs**"}
        for key, values in summary.items():
            if "@" in key:
                total[key] = f"**{100 * np.mean(values):.0f}%**"
            else:
                flat = [n for per_pair in values for n in per_pair]
                total[key] = "**" + _needed_text(flat, int(args.train_seconds), brief=True) + "**"
        rows.append(total)
    columns = ["video pair"] + [f"{s}{b}" for s in ("active", "even", "random")
                                for b in ("", *(f" @{n}" for n in BUDGETS), f" estimate @{BUDGETS[-1]}")]
    table = pd.DataFrame(rows)[[c for c in columns if c in rows[0]]]
    write_csv(table, out / "labels_needed.csv")
    write_csv(pd.DataFrame(curves), out / "curves.csv")
    print(f"labels needed to reach and stay at {100 * args.target:.0f}% frame accuracy on the test video; "
          f"its mean accuracy after {' and '.join(map(str, BUDGETS))} labels; the widget's estimate "
          f"(time-blocked cross-validation on the labels) after {BUDGETS[-1]}:")
    print(markdown_table(table))


def _needed_text(needed: list[int | None], candidates: int, brief: bool = False) -> str:
    """One strategy's labels needed: the number, or a mean over several orders ('never' = not reached)."""
    if len(needed) == 1:
        return str(needed[0]) if needed[0] is not None else f"never (>{candidates})"
    reached = [n for n in needed if n is not None]
    text = f"{np.mean(reached):.0f}" if reached else "never"
    if len(reached) < len(needed) and reached:
        text += f" ({len(needed) - len(reached)} of {len(needed)} never)"
    if not brief:
        text += " [" + ", ".join(str(n) if n is not None else "never" for n in needed) + "]"
    return text


if __name__ == "__main__":
    main()
