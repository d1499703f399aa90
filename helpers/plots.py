"""Figures for the notebooks (matplotlib): frame grids, class balance, learning curves, timelines.

Every function returns a ``matplotlib.figure.Figure``, already closed in pyplot so that a notebook
shows it once (as the cell's last expression) and a script can ``save`` it without a display.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
import pandas as pd

Image = np.ndarray  # BGR uint8, as OpenCV decodes
Tile = tuple[Image, str]  # an image and its caption

NO_CHARACTER_COLOUR = "#9e9e9e"


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _finish(fig):
    _pyplot().close(fig)
    _show_figures_in_ipython()
    return fig


def _show_figures_in_ipython() -> None:
    """In IPython, make sure a Figure shown as a cell's result renders as PNG whatever the matplotlib
    backend (with ``MPLBACKEND=Agg`` no inline backend registers the formatter, and notebooks would
    show ``<Figure size ...>`` instead of the plot)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(Figure)
    except KeyError:
        from IPython.core.pylabtools import print_figure

        png.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def character_colours(characters: Sequence[str]) -> dict[str, Any]:
    """One stable colour per character (tab10, in the given order)."""
    cmap = _pyplot().get_cmap("tab10")
    return {c: cmap(i % 10) for i, c in enumerate(characters)}


def thumbnail(image: Image, width: int = 240) -> np.ndarray:
    """A small RGB copy of a BGR frame, for display."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA) if w > width else image
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def frame_caption(frame: int, time_s: float, extra: str = "") -> str:
    """``12.0 s (#300)`` plus an optional second line."""
    text = f"{time_s:.1f} s  (#{frame})"
    return f"{text}\n{extra}" if extra else text


def frame_grid(tiles: Sequence[Tile], columns: int = 4, title: str = "", tile_width_in: float = 2.6):
    """Frames in a grid, each with its caption (time, frame number, label...)."""
    plt = _pyplot()
    n = max(1, len(tiles))
    columns = max(1, min(columns, n))
    rows = int(np.ceil(n / columns))
    aspect = tiles[0][0].shape[0] / tiles[0][0].shape[1] if tiles else 0.56
    caption_lines = max([1, *(caption.count("\n") + 1 for _, caption in tiles)])
    height = rows * (tile_width_in * aspect + 0.2 * caption_lines + 0.1) + (0.4 if title else 0)
    fig, axes = plt.subplots(rows, columns, figsize=(tile_width_in * columns, height), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (image, caption) in zip(axes.ravel(), tiles):
        ax.imshow(thumbnail(image))
        ax.set_title(caption, fontsize=9)
    if not tiles:
        axes[0, 0].text(0.5, 0.5, "no frames", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=12)
    return _finish(fig)


def class_balance(balance: pd.DataFrame):
    """Bar charts of labelled frames per character and per exact label (from ``learnings.class_balance``)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, kind, title in ((axes[0], "character", "frames showing each character"),
                            (axes[1], "label", "frames per exact label")):
        part = balance[balance["kind"] == kind]
        bars = ax.barh(part["name"], part["frames"], color="#4c72b0")
        ax.bar_label(bars, labels=[f"{f} ({p:.0f}%)" for f, p in zip(part["frames"], part["percent"])], padding=3,
                     fontsize=9)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("labelled frames")
        ax.invert_yaxis()
        ax.set_xlim(0, max(1, part["frames"].max()) * 1.3 if len(part) else 1)
    fig.tight_layout()
    return _finish(fig)


def learning_curves(label_curve: pd.DataFrame | None = None, history: pd.DataFrame | None = None,
                    best_epoch: int | None = None):
    """Left: accuracy vs number of training labels. Right: a Keras head's loss per epoch (train and validation)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    panels = [p for p in (label_curve, history) if p is not None and len(p)]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), 3.6), squeeze=False)
    axes = list(axes.ravel())
    if label_curve is not None and len(label_curve):
        ax = axes.pop(0)
        ax.plot(label_curve["labels"], 100 * label_curve["train_accuracy"], "o-", label="training labels")
        ax.plot(label_curve["labels"], 100 * label_curve["validation_accuracy"], "s-", label="later stretch (validation)")
        for x, y, step in zip(label_curve["labels"], 100 * label_curve["validation_accuracy"], label_curve["every_nth"]):
            ax.annotate(f"every {step}" if step > 1 else "all", (x, y), textcoords="offset points", xytext=(0, -14),
                        ha="center", fontsize=8, color="#555555")
        ax.set_xlabel("training labels used")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("frame accuracy (%)")
        ax.set_ylim(0, 105)
        ax.set_title("how many labels are enough?", fontsize=11)
        ax.legend(fontsize=9, loc="lower right")
        ax.grid(alpha=0.3)
    if history is not None and len(history):
        ax = axes.pop(0)
        ax.plot(history["epoch"], history["loss"], label="training loss")
        if "val_loss" in history:
            ax.plot(history["epoch"], history["val_loss"], label="validation loss (later stretch)")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best checkpoint (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("weighted binary cross-entropy")
        ax.set_yscale("log")
        ax.set_title("Keras head: loss per epoch", fontsize=11)
        ax.legend(fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _finish(fig)


def _segments_of(times: np.ndarray, flags: np.ndarray, duration_s: float) -> list[tuple[float, float]]:
    from .screentime import segments

    return [(a, b - a) for a, b in segments(times, flags, duration_s)]


def timeline(predictions: pd.DataFrame, characters: Sequence[str], duration_s: float,
             truth: pd.DataFrame | None = None):
    """Who is on screen when: one row per character (predicted), with the truth below it when given,
    and the presence probability as a thin line."""
    plt = _pyplot()
    colours = character_colours(characters)
    times = predictions["time_s"].to_numpy(float)
    sets = [set(str(p).split(";")) for p in predictions["present"]]
    rows = len(characters) * (2 if truth is not None else 1)
    fig, ax = plt.subplots(figsize=(11, 0.75 * rows + 1.2))
    ticks, names = [], []
    y = 0.0
    truth_times = truth_sets = None
    if truth is not None:
        truth_times = truth["time_s"].to_numpy(float)
        truth_sets = [set(str(label).split(";")) for label in truth["label"]]
    for c in characters:
        flags = np.array([c in s for s in sets])
        ax.broken_barh(_segments_of(times, flags, duration_s), (y, 0.8), color=colours[c])
        if f"p_{c}" in predictions:
            # the y axis points down (first character on top): probability 1 at the top of the bar
            ax.plot(times, y + 0.8 * (1 - predictions[f"p_{c}"].to_numpy(float)), color="black", lw=0.6, alpha=0.6)
        ticks.append(y + 0.4)
        names.append(f"{c} (predicted)" if truth is not None else c)
        y += 1
        if truth is not None:
            tflags = np.array([c in s for s in truth_sets])
            ax.broken_barh(_segments_of(truth_times, tflags, duration_s), (y, 0.8), color=colours[c], alpha=0.35,
                           hatch="//", edgecolor="white")
            ticks.append(y + 0.4)
            names.append(f"{c} (truth)")
            y += 1.3
    ax.set_yticks(ticks, names)
    ax.invert_yaxis()
    ax.set_xlim(0, duration_s)
    ax.set_xlabel("time in the video (s)")
    ax.set_title("who is on screen when (bars: presence; black line: probability)", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _finish(fig)


def spread(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to ``n`` rows, evenly spread from the first to the last."""
    if len(rows) <= n:
        return rows
    return rows.iloc[np.linspace(0, len(rows) - 1, n).round().astype(int)]


def pick_frames(predictions: pd.DataFrame, character: str, n: int = 6) -> pd.DataFrame:
    """Up to ``n`` predicted frames of ``character``, spread evenly over the frames where it is present."""
    return spread(predictions[[character in str(p).split(";") for p in predictions["present"]]], n)


def decode_frames(video: str | os.PathLike, frames: Iterable[int], width: int | None = 320) -> dict[int, Image]:
    """The BGR images of the given frame indices, shrunk to ``width`` pixels (one sequential pass)."""
    from .video import sample_frames

    wanted = sorted({int(f) for f in frames})
    out = {}
    for frame in (sample_frames(video, frames=wanted, desc="thumbnails") if wanted else ()):
        h, w = frame.image.shape[:2]
        small = width and w > width
        out[frame.index] = cv2.resize(frame.image, (width, max(1, round(h * width / w))),
                                      interpolation=cv2.INTER_AREA) if small else frame.image
    return out


def character_strips(strips: dict[str, Sequence[Tile]], tile_width_in: float = 2.0):
    """One row of thumbnails per character."""
    plt = _pyplot()
    rows = max(1, len(strips))
    columns = max([1, *(len(t) for t in strips.values())])
    first = next((t[0][0] for t in strips.values() if t), None)
    aspect = first.shape[0] / first.shape[1] if first is not None else 0.56
    fig, axes = plt.subplots(rows, columns, figsize=(tile_width_in * columns + 0.8, (tile_width_in * aspect + 0.5) * rows),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (name, tiles) in enumerate(strips.items()):
        axes[r, 0].text(-0.08, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, ha="right", va="center",
                        fontsize=12, fontweight="bold")
        if not tiles:
            axes[r, 0].text(0.5, 0.5, "never predicted", ha="center", va="center")
        for c, (image, caption) in enumerate(tiles):
            axes[r, c].imshow(thumbnail(image))
            axes[r, c].set_title(caption, fontsize=8)
    fig.tight_layout()
    return _finish(fig)


def learnings_summary(results: pd.DataFrame):
    """Left: frame accuracy of every measured variant (error bars: spread over seeds), grouped by
    experiment; right: backbone speed in frames per second (log scale)."""
    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 0.42 * len(results) + 1.8), gridspec_kw={"width_ratios": [3, 2]})
    labels, values, errors, colours = [], [], [], []
    palette = plt.get_cmap("tab10")
    experiments = list(dict.fromkeys(results["experiment"]))
    for _, row in results.iterrows():
        labels.append(f"{row['experiment'][:3]} {row['variant']}")
        values.append(row["accuracy_pct"] if np.isfinite(row["accuracy_pct"]) else 0.0)
        errors.append(row["spread_pts"] if np.isfinite(row["spread_pts"]) else 0.0)
        colours.append(palette(experiments.index(row["experiment"]) % 10))
    y = np.arange(len(labels))
    ax.barh(y, values, color=colours)
    has_spread = np.array(errors) > 0
    if has_spread.any():
        ax.errorbar(np.array(values)[has_spread], y[has_spread], xerr=np.array(errors)[has_spread], fmt="none",
                    ecolor="black", capsize=3, lw=1)
    for yi, (_, row) in zip(y, results.iterrows()):
        if np.isfinite(row["accuracy_pct"]):
            spread = row["spread_pts"] if np.isfinite(row["spread_pts"]) else 0.0
            ax.text(row["accuracy_pct"] + spread + 1.5, yi, f"{row['accuracy_pct']:.1f}%", va="center", fontsize=8)
        else:
            note = str(row["note"]).split(";")[0]
            ax.text(1, yi, note if len(note) < 60 else note[:57] + "...", va="center", fontsize=8, color="#555555")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 115)
    ax.set_xlabel("frame accuracy on the held-out video (%)")
    ax.set_title("what worked: accuracy", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    speed = results[results["features_per_s"].notna()]
    ys = np.arange(len(speed))
    ax2.barh(ys, speed["features_per_s"], color="#55a868")
    for yi, v in zip(ys, speed["features_per_s"]):
        ax2.text(v * 1.1, yi, f"{v:,.1f}", va="center", fontsize=8)
    ax2.set_yticks(ys, list(speed["variant"]), fontsize=8)
    ax2.invert_yaxis()
    ax2.set_xscale("log")
    if len(speed):
        ax2.set_xlim(max(0.1, speed["features_per_s"].min() / 3), speed["features_per_s"].max() * 8)
    ax2.set_xlabel("frames per second (features only, this machine, log scale)")
    ax2.set_title("(f) backbone speed", fontsize=11)
    ax2.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _finish(fig)


def _row_shares(counts: np.ndarray) -> np.ndarray:
    """Each row of ``counts`` as shares of its total (NaN for a row with no frames)."""
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)


def _confusion_panel(ax, confusion: dict[str, Any], subtitle: str) -> Any:
    """One confusion matrix on ``ax``: colour = row share, text = frames and row percentage."""
    names = [str(label).replace(";", "+") for label in confusion["labels"]]
    counts = np.asarray(confusion["counts"], dtype=int).reshape(len(names), len(names))
    shares = _row_shares(counts)
    image = ax.imshow(np.nan_to_num(shares), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            share = shares[i, j]
            if counts[i, j] == 0:  # empty cells stay quiet so that the mistakes stand out
                ax.text(j, i, "0", ha="center", va="center", fontsize=10, color="#b0b0b0")
                continue
            text = f"{counts[i, j]}" + (f"\n{100 * share:.0f}%" if np.isfinite(share) else "")
            dark = np.isfinite(share) and share > 0.6
            ax.text(j, i, text, ha="center", va="center", fontsize=11, color="white" if dark else "black",
                    fontweight="bold" if i == j else "normal")
    ax.set_xticks(range(len(names)), names, fontsize=11, rotation=30 if max(map(len, names)) > 6 else 0,
                  ha="right" if max(map(len, names)) > 6 else "center")
    ax.set_yticks(range(len(names)), names, fontsize=11)
    ax.set_xlabel("predicted characters on screen", fontsize=11)
    ax.set_ylabel("true characters on screen", fontsize=11)
    correct = int(np.trace(counts))
    total = int(counts.sum())
    ax.set_title(f"{subtitle}\n{correct} of {total} frames right ({100 * correct / max(1, total):.1f}%)",
                 fontsize=11)
    return image


def confusion_matrices(panels: dict[str, dict[str, Any]], title: str = "Confusion matrix"):
    """Confusion matrices side by side, one per entry of ``panels`` (subtitle -> the
    ``{"labels", "counts"}`` dict of ``evaluate.confusion_matrix``): rows are the true set of
    characters on screen, columns the predicted set; each cell shows frames and the row percentage,
    and its colour is that percentage."""
    plt = _pyplot()
    n_labels = max([1, *(len(c["labels"]) for c in panels.values())])
    side = 1.0 + 0.95 * n_labels
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(side * max(1, len(panels)) + 1.2, side + 0.8),
                             squeeze=False, layout="constrained")
    image = None
    for ax, (subtitle, confusion) in zip(axes.ravel(), panels.items()):
        image = _confusion_panel(ax, confusion, subtitle)
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes.ravel()), shrink=0.8)
        bar.set_label("share of the true row's frames", fontsize=10)
        bar.ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
    fig.suptitle(f"{title}\nrows: truth, columns: prediction; cells: frames and % of the row", fontsize=12)
    return _finish(fig)


def accuracy_vs_labels(curve: pd.DataFrame, title: str = "Learning curve"):
    """Frame accuracy on a test video against the number of labelled frames trained on (log scale).

    ``curve`` has one row per trained subset (columns labels, accuracy, accuracy_raw), as
    ``evaluate.learning_curve`` returns: lines are the mean per number of labels, the band the range
    over repeats, dots the single runs. Rows with NaN accuracy (not trained) are left out.
    """
    from matplotlib.ticker import FixedLocator, NullLocator

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
    scored = curve[curve["accuracy"].notna()]
    sizes = sorted(int(s) for s in scored["labels"].unique())
    # the raw line first, with hollow markers, so that it stays visible where the two coincide
    raw_style = {"ls": "--", "marker": "s", "mfc": "none", "ms": 10, "lw": 1.5}
    smoothed_style = {"ls": "-", "marker": "o", "ms": 6, "lw": 2.2}
    styles = (("accuracy_raw", "before smoothing (present_raw)", raw_style, "#ff7f0e", False),
              ("accuracy", "after smoothing (present)", smoothed_style, "#1f77b4", True))
    for column, name, style, colour, band in styles:
        if column not in scored or not scored[column].notna().any():
            continue
        by_size = scored.groupby("labels")[column]
        mean, low, high = (100 * by_size.mean(), 100 * by_size.min(), 100 * by_size.max())
        if band and scored.groupby("labels").size().max() > 1:
            ax.fill_between(mean.index, low, high, color=colour, alpha=0.15, lw=0, label="range over repeats")
        ax.plot(scored["labels"], 100 * scored[column], ".", color=colour, alpha=0.6, ms=5)
        ax.plot(mean.index, mean, color=colour, label=f"{name}, mean", **style)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(labelsize=10)
    ax.set_xlabel("labelled frames trained on (log scale)", fontsize=11)
    ax.set_ylabel("frame accuracy on the test video (%)", fontsize=11)
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    if not scored.empty:
        handles, names = ax.get_legend_handles_labels()  # drawn raw first; listed smoothed first
        ax.legend(handles[::-1], names[::-1], fontsize=10, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no subset could be trained", transform=ax.transAxes, ha="center", va="center")
    ax.set_title(title, fontsize=12)
    return _finish(fig)


def save(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG, atomically (the folder is created)."""
    from .fileio import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)
