"""A deterministic synthetic cartoon with two characters and its per-frame ground truth.

TOM is a large blue-grey cat (ellipse body, round head, pointed ears); JERRY a small brown mouse
(round body, big round ears). They move over backgrounds that change at every shot cut. Each shot
shows neither, one, or both characters. Same seed, same video, same truth.

``hard=True`` makes footage that defeats colour alone: props painted exactly in a character's
colours, lighting that changes from shot to shot and flickers, pillars in front of the action,
and characters from half to twice their usual size. In both modes a character counts as present
while at least a quarter of it is visible (not hidden by a pillar or by the other character).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .errors import ScreentimeError

CHARACTERS = ("jerry", "tom")
SHOT_KINDS = ("none", "tom", "jerry", "both")

# Background palette (BGR): light, muted scene colours, far from both characters' colours.
_BACKGROUNDS = [
    (120, 190, 110), (150, 225, 235), (215, 185, 215), (170, 215, 175),
    (200, 230, 200), (110, 160, 90), (180, 200, 240), (225, 225, 170),
]
_TOM_BODY = (175, 140, 115)
_TOM_LIGHT = (220, 205, 195)
_JERRY_BODY = (40, 95, 175)
_JERRY_EAR = (150, 150, 235)


@dataclass
class _Sprite:
    kind: str
    x: float
    y: float
    vx: float
    vy: float
    scale: float


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A scene: a vertical gradient of one palette colour and a few muted 'furniture' shapes."""
    base = np.array(_BACKGROUNDS[rng.integers(len(_BACKGROUNDS))], dtype=np.float32)
    ramp = np.linspace(0.85, 1.1, height, dtype=np.float32)[:, None, None]
    image = np.clip(base[None, None, :] * ramp, 0, 255).repeat(width, axis=1).astype(np.uint8)
    for _ in range(rng.integers(2, 6)):
        shade = tuple(int(c) for c in np.clip(base * rng.uniform(0.6, 0.9), 0, 255))
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(height // 3, height))
        w, h = int(rng.integers(width // 10, width // 3)), int(rng.integers(height // 8, height // 2))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x0, y0), (x0 + w, y0 + h), shade, -1)
        else:
            cv2.circle(image, (x0, y0), max(w, h) // 2, shade, -1)
    return image


def _draw_tom(image: np.ndarray, x: float, y: float, s: float) -> None:
    c = (int(x), int(y))
    cv2.ellipse(image, c, (int(26 * s), int(18 * s)), 0, 0, 360, _TOM_BODY, -1)
    head = (int(x + 22 * s), int(y - 18 * s))
    cv2.circle(image, head, int(13 * s), _TOM_BODY, -1)
    for dx in (-8, 8):
        ear = np.array([[head[0] + (dx - 5) * s, head[1] - 8 * s], [head[0] + (dx + 5) * s, head[1] - 8 * s],
                        [head[0] + dx * s, head[1] - 22 * s]], dtype=np.int32)
        cv2.fillPoly(image, [ear], _TOM_BODY)
    cv2.ellipse(image, (head[0], int(head[1] + 5 * s)), (int(8 * s), int(5 * s)), 0, 0, 360, _TOM_LIGHT, -1)
    cv2.line(image, (int(x - 26 * s), int(y)), (int(x - 40 * s), int(y - 16 * s)), _TOM_BODY, max(2, int(4 * s)))


def _draw_jerry(image: np.ndarray, x: float, y: float, s: float) -> None:
    cv2.ellipse(image, (int(x), int(y)), (int(11 * s), int(8 * s)), 0, 0, 360, _JERRY_BODY, -1)
    head = (int(x + 9 * s), int(y - 7 * s))
    cv2.circle(image, head, int(6 * s), _JERRY_BODY, -1)
    for dx in (-5, 5):
        cv2.circle(image, (int(head[0] + dx * s), int(head[1] - 6 * s)), int(4 * s), _JERRY_EAR, -1)
    cv2.line(image, (int(x - 11 * s), int(y)), (int(x - 20 * s), int(y + 4 * s)), _JERRY_BODY, max(1, int(2 * s)))


def _new_sprite(kind: str, rng: np.random.Generator, width: int, height: int, hard: bool = False) -> _Sprite:
    low, high = ((0.5, 1.8) if kind == "tom" else (0.6, 2.0)) if hard else ((0.9, 1.3) if kind == "tom" else (1.0, 1.5))
    scale = rng.uniform(low, high) * width / 320
    speed = rng.uniform(20, 80) * width / 320
    angle = rng.uniform(0, 2 * np.pi)
    margin = 45 * scale
    return _Sprite(kind, rng.uniform(margin, width - margin), rng.uniform(margin, height - margin / 2),
                   speed * np.cos(angle), speed * np.sin(angle), scale)


def _move(sprite: _Sprite, dt: float, width: int, height: int) -> None:
    margin = 45 * sprite.scale
    sprite.x += sprite.vx * dt
    sprite.y += sprite.vy * dt
    if not margin <= sprite.x <= width - margin:
        sprite.vx = -sprite.vx
        sprite.x = float(np.clip(sprite.x, margin, width - margin))
    if not margin <= sprite.y <= height - margin / 2:
        sprite.vy = -sprite.vy
        sprite.y = float(np.clip(sprite.y, margin, height - margin / 2))


@dataclass
class _Scene:
    """What a hard shot adds: props in the characters' colours, lighting, an occluding pillar."""

    props: list[tuple[str, tuple[int, int], int, tuple[int, int, int]]]
    brightness: float
    occluder: tuple[int, int, int, int] | None


def _hard_scene(rng: np.random.Generator, width: int, height: int) -> _Scene:
    props = []
    for _ in range(rng.integers(0, 4)):
        colour = _TOM_BODY if rng.random() < 0.5 else _JERRY_BODY
        shape = "ball" if rng.random() < 0.5 else "box"
        centre = (int(rng.integers(0, width)), int(rng.integers(height // 4, height)))
        props.append((shape, centre, int(rng.integers(width // 40, width // 10)), colour))
    occluder = None
    if rng.random() < 0.35:
        w = int(rng.integers(width // 12, width // 6))
        x = int(rng.integers(0, width - w))
        occluder = (x, 0, x + w, height)
    return _Scene(props, float(rng.uniform(0.6, 1.3)), occluder)


def _draw_props(image: np.ndarray, scene: _Scene) -> None:
    for shape, (x, y), r, colour in scene.props:
        if shape == "ball":
            cv2.circle(image, (x, y), r, colour, -1)
        else:
            cv2.rectangle(image, (x - r, y - r // 2), (x + r, y + r // 2), colour, -1)


def _render(background: np.ndarray, sprites: list[_Sprite], scene: _Scene | None,
            t: float) -> tuple[np.ndarray, list[str]]:
    """One frame and the characters at least a quarter visible in it.

    Visibility counts everything drawn in front of a character: a character drawn later (TOM can
    hide a small JERRY completely) and, in hard scenes, the pillar.
    """
    frame = background.copy()
    if scene is not None:
        _draw_props(frame, scene)
    shown: list[tuple[str, int, np.ndarray]] = []
    for sprite in sprites:
        draw = _draw_tom if sprite.kind == "tom" else _draw_jerry
        layer = np.zeros_like(frame)
        draw(layer, sprite.x, sprite.y, sprite.scale)
        mask = layer.any(axis=2)
        frame[mask] = layer[mask]
        for _, _, behind in shown:
            behind &= ~mask
        shown.append((sprite.kind, int(mask.sum()), mask))
    if scene is not None and scene.occluder is not None:
        x0, y0, x1, y1 = scene.occluder
        for _, _, mask in shown:
            mask[y0:y1, x0:x1] = False
        cv2.rectangle(frame, (x0, y0), (x1, y1), (60, 70, 90), -1)
    visible = sorted(kind for kind, area, mask in shown if area and mask.sum() >= 0.25 * area)
    if scene is None:
        return frame, visible
    light = scene.brightness * (1 + 0.1 * np.sin(2 * np.pi * t / 1.7))
    return np.clip(frame.astype(np.float32) * light, 0, 255).astype(np.uint8), visible


def shot_plan(seconds: float, fps: float, seed: int) -> list[tuple[int, int, str]]:
    """Shots as (first frame, end frame exclusive, kind); every kind appears, lengths 2–6 s."""
    rng = np.random.default_rng(seed)
    total = int(round(seconds * fps))
    shots, start, kinds = [], 0, []
    while start < total:
        if not kinds:
            kinds = list(rng.permutation(SHOT_KINDS))
        length = int(round(rng.uniform(2.0, 6.0) * fps))
        end = min(total, start + length)
        shots.append((start, end, str(kinds.pop())))
        start = end
    return shots


def make_cartoon(
    path: str | os.PathLike,
    *,
    seconds: float = 60.0,
    fps: float = 25.0,
    size: tuple[int, int] = (320, 180),
    seed: int = 0,
    hard: bool = False,
) -> pd.DataFrame:
    """Write a synthetic cartoon to ``path`` (.mp4 or .avi) and return its truth (frame, time_s, label)."""
    width, height = size
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if out.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(out), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise ScreentimeError(f"cannot write video {out}; use a .mp4 or .avi path in a writable folder")
    rng = np.random.default_rng(seed + 1)
    rows = []
    try:
        for first, end, kind in shot_plan(seconds, fps, seed):
            background = _background(rng, width, height)
            members = {"none": [], "tom": ["tom"], "jerry": ["jerry"], "both": ["jerry", "tom"]}[kind]
            sprites = [_new_sprite(name, rng, width, height, hard) for name in members]
            scene = _hard_scene(rng, width, height) if hard else None
            pan = rng.uniform(-15, 15)
            for index in range(first, end):
                t = (index - first) / fps
                moved = np.roll(background, int(pan * t), axis=1)
                frame, shown = _render(moved, sprites, scene, index / fps)
                for sprite in sprites:
                    _move(sprite, 1.0 / fps, width, height)
                writer.write(frame)
                rows.append((index, round(index / fps, 4), ";".join(shown) or "none"))
    finally:
        writer.release()
    return pd.DataFrame(rows, columns=["frame", "time_s", "label"])
