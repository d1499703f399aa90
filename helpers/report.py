"""HTML reports a person would rather look at than read: one per video, and an index for a batch.

Each report is a single self-contained file (inline CSS, figures and thumbnails embedded as data
URIs, no JavaScript, nothing fetched from the network), so it opens offline and can be mailed:

* the video's facts and its screen-time table,
* a timeline of who is on screen when (one row per character, a bar per appearance),
* per character a strip of thumbnails, one per appearance, captioned with its time,
* the model's confidence (presence probability) of each character over time.

Figures are drawn with matplotlib's object API (``Figure``, Agg), never pyplot, so they work in
threads and without a display. Thumbnails are decoded in one sequential pass and stored as small JPEGs.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from . import __version__
from .errors import ScreentimeError
from .fileio import atomic_path
from .progress import log
from .video import encode_jpeg

#: Width in pixels of the thumbnails embedded in a report.
THUMB_WIDTH = 176
#: At most this many thumbnails per character (spread evenly over its appearances) keep a report small.
MAX_THUMBNAILS = 120

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf"]  # matplotlib's tab10

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1d2330;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:26px;margin:0 0 2px}
h2{font-size:19px;margin:0 0 12px}
h3{font-size:16px;margin:18px 0 8px;display:flex;align-items:center;gap:8px}
.sub{color:#5b6475;margin:0 0 18px;font-size:13px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:10px;padding:18px 20px;margin:0 0 18px}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px 18px;margin:0}
.facts div{min-width:0}
.facts dt{font-size:12px;color:#5b6475;text-transform:uppercase;letter-spacing:.04em}
.facts dd{margin:0;font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:7px 10px;border-bottom:1px solid #e9ebf0;text-align:right;white-space:nowrap}
th{font-size:12px;color:#5b6475;text-transform:uppercase;letter-spacing:.04em;background:#fafbfc}
th:first-child,td:first-child{text-align:left}
td.bar{width:38%}
.meter{background:#eef0f4;border-radius:4px;height:12px;overflow:hidden}
.meter span{display:block;height:100%;border-radius:4px}
.chip{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:7px;vertical-align:-1px}
img.figure{width:100%;height:auto;display:block}
.strip{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:%(thumb)dpx}
figure img{width:%(thumb)dpx;height:auto;display:block;border-radius:5px;border:1px solid #d5d9e0}
figcaption{font-size:12px;color:#3b4352;text-align:center;margin-top:3px;font-variant-numeric:tabular-nums}
.note{color:#5b6475;font-size:13px;margin:8px 0 0}
.none{color:#5b6475;font-style:italic}
.fail td{color:#a1262b;white-space:normal;text-align:left}
a{color:#1f5fbf}
footer{color:#5b6475;font-size:12px;text-align:center}
""".replace("%(thumb)d", str(THUMB_WIDTH))


# ----------------------------------------------------------------------------- small helpers

def character_colours(characters: Sequence[str]) -> dict[str, str]:
    """One stable colour per character (tab10, in the model's order), shared by tables and figures."""
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(characters)}


def clock(seconds: float) -> str:
    """``65.25`` -> ``1:05.3``; ``3725`` -> ``1:02:05.0``."""
    seconds = max(0.0, float(seconds))
    tenths = int(round(seconds * 10))
    whole, tenth = divmod(tenths, 10)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}.{tenth}" if hours else f"{minutes}:{secs:02d}.{tenth}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _png_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _jpeg_uri(image: np.ndarray, width: int = THUMB_WIDTH, quality: int = 80) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(image, width, quality)).decode("ascii")


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def _page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body><main>\n{body}\n"
            f"<footer>made by screentime {_e(__version__)} on {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
            f"</footer>\n</main></body></html>\n")


def _facts(items: Iterable[tuple[str, Any]]) -> str:
    cells = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items)
    return f'<dl class="facts">{cells}</dl>'


def _chip(colour: str) -> str:
    return f'<span class="chip" style="background:{colour}"></span>'


def _write_html(text: str, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- figures

def timeline_figure(segments: pd.DataFrame, characters: Sequence[str], duration_s: float):
    """Who is on screen when: one row per character, one bar per appearance."""
    colours = character_colours(characters)
    fig = _figure(10.8, 0.55 * max(1, len(characters)) + 0.9)
    ax = fig.add_subplot()
    for row, name in enumerate(characters):
        part = segments[segments["character"] == name]
        bars = [(float(a), float(b) - float(a)) for a, b in zip(part["start_s"], part["end_s"])]
        ax.broken_barh(bars, (row - 0.36, 0.72), color=colours[name])
    ax.set_yticks(range(len(characters)), list(characters))
    ax.set_ylim(len(characters) - 0.5, -0.5)
    ax.set_xlim(0, max(duration_s, 1e-6))
    ax.set_xlabel("time in the video (s)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def confidence_figure(predictions: pd.DataFrame, characters: Sequence[str], duration_s: float,
                      thresholds: Sequence[float] | None = None):
    """Presence probability of each character per sampled frame (a step holds until the next sample)."""
    colours = character_colours(characters)
    fig = _figure(10.8, 2.9)
    ax = fig.add_subplot()
    times = predictions["time_s"].to_numpy(float)
    for j, name in enumerate(characters):
        column = f"p_{name}"
        if column not in predictions:
            continue
        p = predictions[column].to_numpy(float)
        # Each sample stands until the next one; the last one until the end of the video.
        ax.step(np.append(times, max(duration_s, times[-1] if len(times) else 0.0)), np.append(p, p[-1:]),
                where="post", color=colours[name], lw=1.4, label=name)
        if thresholds is not None and j < len(thresholds):
            ax.axhline(thresholds[j], color=colours[name], ls="--", lw=0.8, alpha=0.7)
    ax.set_xlim(0, max(duration_s, 1e-6))
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("time in the video (s)")
    ax.set_ylabel("probability on screen")
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if characters:
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=min(len(characters), 8), frameon=False,
                  fontsize=9, borderaxespad=0.2)
    return fig


# ----------------------------------------------------------------------------- thumbnails

def appearance_frames(predictions: pd.DataFrame, segments: pd.DataFrame) -> list[int | None]:
    """For each row of ``segments``: the first sampled frame of that appearance (None if not found)."""
    times = predictions["time_s"].to_numpy(float)
    frames = predictions["frame"].to_numpy()
    out: list[int | None] = []
    for start in segments["start_s"].to_numpy(float):
        pos = int(np.searchsorted(times, start - 5e-4))  # segment starts are rounded to 1 ms
        out.append(int(frames[pos]) if pos < len(times) and abs(times[pos] - start) < 0.01 else None)
    return out


def _spread(n: int, keep: int) -> np.ndarray:
    return np.arange(n) if n <= keep else np.unique(np.linspace(0, n - 1, keep).round().astype(int))


def decode_thumbnails(video: str | os.PathLike, frames: Iterable[int]) -> dict[int, str]:
    """JPEG data URIs of the given frames of ``video``, decoded in one sequential pass."""
    from .video import sample_frames

    wanted = sorted({int(f) for f in frames})
    out: dict[int, str] = {}
    if not wanted:
        return out
    for frame in sample_frames(video, frames=wanted, desc="thumbnails"):
        out[frame.index] = _jpeg_uri(frame.image)
        if frame.index == wanted[-1]:
            break  # no need to decode the rest of the video
    return out


# ----------------------------------------------------------------------------- the per-video report

def build_report(video: str | os.PathLike, prediction, *, fps: float | None = None,
                 thresholds: Sequence[float] | None = None, title: str | None = None,
                 max_thumbnails: int = MAX_THUMBNAILS) -> str:
    """The HTML text of a video's report (see :func:`write_report`)."""
    characters = list(prediction.characters)
    colours = character_colours(characters)
    preds, segs, table = prediction.predictions, prediction.segments, prediction.screentime
    duration = float(prediction.duration_s)
    name = title or Path(video).name

    # Thumbnails: the first sampled frame of each appearance (evenly thinned past max_thumbnails).
    starts = appearance_frames(preds, segs)
    shown: dict[str, list[int]] = {}
    for c in characters:
        rows = np.flatnonzero(segs["character"].to_numpy() == c)
        shown[c] = [int(rows[i]) for i in _spread(len(rows), max_thumbnails)]
    thumbs: dict[int, str] = {}
    thumb_note = ""
    try:
        thumbs = decode_thumbnails(video, (starts[i] for rows in shown.values() for i in rows
                                           if starts[i] is not None))
    except ScreentimeError as exc:  # the report is still worth having without pictures
        log.warning("report for %s without thumbnails: %s", name, exc)
        thumb_note = f"Thumbnails unavailable: {exc}"

    parts = [f"<header><h1>{_e(name)}</h1><p class=\"sub\">screen-time report &middot; {_e(video)}</p></header>"]
    sampling = "every frame" if fps is None else f"{fps:g} per second"
    parts.append("<section>" + _facts([
        ("duration", f"{clock(duration)} ({duration:.1f} s)"),
        ("frames decoded", f"{prediction.frames_decoded:,}"),
        ("frames classified", f"{len(preds):,}"),
        ("sampling", sampling),
        ("characters", ", ".join(characters) or "none"),
    ]) + "</section>")

    # Screen-time table.
    rows_html = []
    for _, r in table.iterrows():
        c = str(r["character"])
        pct = float(r["percent"])
        colour = colours.get(c, "#888")
        rows_html.append(
            f"<tr><td>{_chip(colour)}{_e(c)}</td><td>{float(r['seconds']):.1f}</td><td>{clock(r['seconds'])}</td>"
            f"<td>{pct:.1f}%</td><td>{int(r['appearances'])}</td><td class=\"bar\"><div class=\"meter\">"
            f"<span style=\"width:{min(100.0, max(0.0, pct)):.2f}%;background:{colour}\"></span></div></td></tr>")
    parts.append(
        "<section><h2>Screen time</h2><table class=\"screentime\"><thead><tr><th>character</th><th>seconds</th>"
        "<th>time</th><th>% of video</th><th>appearances</th><th></th></tr></thead><tbody>"
        + "".join(rows_html) + "</tbody></table></section>")

    parts.append(
        "<section><h2>Who is on screen when</h2>"
        f"<img class=\"figure\" alt=\"timeline of appearances\" src=\"{_png_uri(timeline_figure(segs, characters, duration))}\">"
        "<p class=\"note\">One bar per appearance: a run of consecutive sampled frames where the character "
        "is predicted on screen.</p></section>")

    strips = ["<section><h2>Appearances</h2>"]
    if thumb_note:
        strips.append(f"<p class=\"note\">{_e(thumb_note)}</p>")
    for c in characters:
        rows = np.flatnonzero(segs["character"].to_numpy() == c)
        count = len(rows)
        strips.append(f"<h3>{_chip(colours[c])}{_e(c)} <small class=\"note\">&middot; {count} appearance"
                      f"{'' if count == 1 else 's'}</small></h3>")
        if not count:
            strips.append("<p class=\"none\">never on screen</p>")
            continue
        figs = []
        for i in shown[c]:
            start, end = float(segs["start_s"].iloc[i]), float(segs["end_s"].iloc[i])
            caption = f"{clock(start)} &middot; {end - start:.1f} s"
            uri = thumbs.get(starts[i]) if starts[i] is not None else None
            img = (f"<img alt=\"{_e(c)} at {clock(start)}\" src=\"{uri}\">" if uri
                   else "<div class=\"none\">no picture</div>")
            figs.append(f"<figure>{img}<figcaption>{caption}</figcaption></figure>")
        strips.append("<div class=\"strip\">" + "".join(figs) + "</div>")
        if len(shown[c]) < count:
            strips.append(f"<p class=\"note\">{len(shown[c])} of {count} appearances shown, evenly spread.</p>")
    strips.append("</section>")
    parts.append("".join(strips))

    conf = confidence_figure(preds, characters, duration, thresholds)
    parts.append(
        "<section><h2>Model confidence over time</h2>"
        f"<img class=\"figure\" alt=\"presence probability over time\" src=\"{_png_uri(conf)}\">"
        "<p class=\"note\">Presence probability per sampled frame"
        + (" (dashed: the decision threshold)" if thresholds is not None else "")
        + ". Values near 0.5 are the frames to check by eye.</p></section>")

    parts.append("<section><h2>Files</h2><p>"
                 + " &middot; ".join(f"<a href=\"{f}\">{f}</a>" for f in
                                     ("screentime.csv", "segments.csv", "predictions.csv", "video.json"))
                 + "</p></section>")
    return _page(f"screentime: {name}", "\n".join(parts))


def write_report(video: str | os.PathLike, prediction, out_dir: str | os.PathLike, *, fps: float | None = None,
                 thresholds: Sequence[float] | None = None, model_dir: str | os.PathLike | None = None,
                 title: str | None = None, max_thumbnails: int = MAX_THUMBNAILS) -> Path:
    """Write ``out_dir/report.html`` for a :class:`helpers.pipeline.Prediction` of ``video``; returns its path.

    ``fps`` is the sampling rate used (None: every frame), ``thresholds`` the model's decision
    thresholds (drawn on the confidence figure; read from ``model_dir`` when only that is given).
    """
    if thresholds is None and model_dir is not None:
        from .model import read_model_card

        thresholds = read_model_card(model_dir).get("thresholds")
    text = build_report(video, prediction, fps=fps, thresholds=thresholds, title=title,
                        max_thumbnails=max_thumbnails)
    return _write_html(text, Path(out_dir) / "report.html")


# ----------------------------------------------------------------------------- the batch index

def batch_figure(table: pd.DataFrame, characters: Sequence[str]):
    """Seconds on screen per video (rows) and character (bar segments side by side)."""
    colours = character_colours(characters)
    videos = list(dict.fromkeys(table["video"]))
    fig = _figure(10.8, 0.42 * max(1, len(videos)) * max(1, min(len(characters), 3)) / 1.5 + 1.1)
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(characters))
    pivot = table.pivot_table(index="video", columns="character", values="seconds", aggfunc="sum").reindex(videos)
    for j, c in enumerate(characters):
        values = pivot[c].fillna(0).to_numpy(float) if c in pivot else np.zeros(len(videos))
        ax.barh(np.arange(len(videos)) - 0.4 + height * (j + 0.5), values, height=height, color=colours[c], label=c)
    ax.set_yticks(range(len(videos)), videos)
    ax.set_ylim(len(videos) - 0.5, -0.5)
    ax.set_xlabel("seconds on screen")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    return fig


def write_index(out_dir: str | os.PathLike, table: pd.DataFrame, totals: pd.DataFrame, videos: pd.DataFrame,
                failures: pd.DataFrame, *, facts: Sequence[tuple[str, Any]] = ()) -> Path:
    """Write ``out_dir/index.html`` for a batch.

    ``table``: video, character, seconds, percent, appearances; ``totals``: character, seconds,
    percent, videos, appearances; ``videos``: name, video, duration_s, report (relative path or
    empty), status; ``failures``: video, error.
    """
    characters = list(dict.fromkeys(totals["character"])) if len(totals) else []
    colours = character_colours(characters)
    parts = [(f"<header><h1>Screen time of {len(videos)} video{'s' if len(videos) != 1 else ''}</h1>"
              f"<p class=\"sub\">screentime batch &middot; {_e(Path(out_dir).resolve())}</p></header>")]
    done = videos[videos["status"] != "failed"]
    parts.append("<section>" + _facts([
        ("videos", f"{len(done)} done, {len(failures)} failed"),
        ("total duration", clock(done["duration_s"].sum()) if len(done) else "0:00.0"),
        *facts,
    ]) + "</section>")

    rows = []
    for _, r in totals.iterrows():
        c = str(r["character"])
        rows.append(f"<tr><td>{_chip(colours[c])}{_e(c)}</td><td>{float(r['seconds']):.1f}</td>"
                    f"<td>{clock(r['seconds'])}</td><td>{float(r['percent']):.1f}%</td><td>{int(r['videos'])}</td>"
                    f"<td>{int(r['appearances'])}</td></tr>")
    parts.append("<section><h2>Totals across videos</h2><table class=\"totals\"><thead><tr><th>character</th>"
                 "<th>seconds</th><th>time</th><th>% of all videos</th><th>videos</th><th>appearances</th></tr></thead><tbody>"
                 + "".join(rows) + "</tbody></table></section>")

    if len(table):
        parts.append("<section><h2>Seconds on screen per video</h2>"
                     f"<img class=\"figure\" alt=\"seconds per video and character\" "
                     f"src=\"{_png_uri(batch_figure(table, characters))}\"></section>")

    head = "".join(f"<th>{_chip(colours[c])}{_e(c)}</th>" for c in characters)
    by_video = {v: g.set_index("character") for v, g in table.groupby("video", sort=False)}
    rows = []
    for _, v in videos.iterrows():
        name = str(v["name"])
        link = f"<a href=\"{_e(v['report'])}\">{_e(name)}</a>" if v.get("report") else _e(name)
        if v["status"] == "failed":
            cells = f"<td colspan=\"{len(characters) + 1}\" class=\"none\" style=\"text-align:left\">failed (see below)</td>"
        else:
            g = by_video.get(name)
            cells = f"<td>{clock(v['duration_s'])}</td>" + "".join(
                f"<td>{float(g.loc[c, 'seconds']):.1f} s ({float(g.loc[c, 'percent']):.0f}%)</td>"
                if g is not None and c in g.index else "<td>&ndash;</td>" for c in characters)
        rows.append(f"<tr><td>{link}</td>{cells}<td>{_e(v['status'])}</td></tr>")
    parts.append("<section><h2>Videos</h2><table class=\"videos\"><thead><tr><th>video (report)</th><th>length</th>"
                 f"{head}<th>this run</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>")

    if len(failures):
        rows = "".join(f"<tr><td>{_e(r['video'])}</td><td>{_e(r['error'])}</td></tr>" for _, r in failures.iterrows())
        parts.append("<section><h2>Failures</h2><table class=\"fail\"><thead><tr><th>video</th><th>error</th></tr>"
                     f"</thead><tbody>{rows}</tbody></table><p class=\"note\">Fix them and run the same command "
                     "again: finished videos are skipped.</p></section>")
    parts.append("<section><h2>Files</h2><p>"
                 + " &middot; ".join(f"<a href=\"{f}\">{f}</a>" for f in ("screentime.csv", "totals.csv", "failures.csv"))
                 + "</p></section>")
    return _write_html(_page("screentime batch", "\n".join(parts)), Path(out_dir) / "index.html")
