"""The trained model folder: everything ``predict`` needs, and nothing from elsewhere.

Layout::

    MODEL_DIR/model.json      characters, backbone (name, input size, preprocessing), head,
                              thresholds, smoothing strength, training facts (with the time-blocked
                              validation that chose them), package version, format version
    MODEL_DIR/head.npz        logistic head (or scaler.npz + head.keras for the mlp head)
    MODEL_DIR/backbone.keras  only when the backbone cannot be rebuilt by name (a .keras file,
                              or keras.applications weights other than ImageNet)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import __version__
from .backbones import Backbone, backbone_from_spec, save_backbone
from .errors import ScreentimeError
from .fileio import write_json
from .heads import Head, load_head
from .smoothing import smooth

FORMAT_VERSION = 1


@dataclass
class ScreentimeModel:
    """A backbone, a head and the characters it recognises."""

    characters: list[str]
    backbone: Backbone
    head: Head
    thresholds: list[float]
    training: dict[str, Any] = field(default_factory=dict)
    smoothing_s: float = 0.0  # smoothing strength in seconds (see helpers.smoothing); 0 = off

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Presence probability per frame (rows) and character (columns)."""
        return self.head.predict_proba(features)

    def present_raw(self, proba: np.ndarray) -> np.ndarray:
        """Each frame decided alone: probability at or above the character's threshold."""
        return proba >= np.asarray(self.thresholds)[None, :]

    def present(self, proba: np.ndarray, times_s: np.ndarray, breaks: Sequence[int] = ()) -> np.ndarray:
        """Decisions smoothed over time (see :mod:`helpers.smoothing`); restarts at ``breaks``."""
        return smooth(proba, np.asarray(times_s, dtype=float), self.smoothing_s, self.thresholds, breaks)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the model folder; an existing folder is replaced only once the new one is complete."""
        target = Path(folder)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        except OSError as exc:
            raise ScreentimeError(f"cannot write the model to {target}: {exc.strerror}; choose a writable folder") from exc
        try:
            backbone_spec = save_backbone(self.backbone, staging)
            self.head.save(staging)
            write_json({
                "format_version": FORMAT_VERSION,
                "screentime_version": __version__,
                "characters": self.characters,
                "backbone": backbone_spec,
                "head": {"kind": self.head.kind},
                "thresholds": [float(t) for t in self.thresholds],
                "smoothing": {"strength_s": float(self.smoothing_s)},
                "training": self.training,
            }, staging / "model.json")
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, target)
        except OSError as exc:
            raise ScreentimeError(f"cannot write the model to {target}: {exc.strerror}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def read_model_card(folder: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``model.json``; one clear line for every way the folder can be wrong."""
    path = Path(folder)
    if not path.exists():
        raise ScreentimeError(f"model folder {path} does not exist; train one with: screentime train ... --out {path}")
    if not path.is_dir():
        raise ScreentimeError(f"model {path} is not a folder; pass the folder that screentime train wrote")
    card_path = path / "model.json"
    if not card_path.is_file():
        raise ScreentimeError(f"{path} is not a screentime model folder (no model.json); retrain with screentime train")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScreentimeError(f"{card_path} is corrupt ({exc.__class__.__name__}); retrain with screentime train") from exc
    if not isinstance(card, dict) or card.get("format_version") != FORMAT_VERSION:
        made_by = card.get("screentime_version", "an unknown version") if isinstance(card, dict) else "an unknown version"
        raise ScreentimeError(
            f"{path} was made by screentime {made_by} in a model format this version ({__version__}) cannot read; "
            "retrain it with this version")
    for key in ("characters", "backbone", "head", "thresholds"):
        if key not in card:
            raise ScreentimeError(f"{card_path} lacks {key!r}; the folder is incomplete, retrain with screentime train")
    return card


def load_model(folder: str | os.PathLike) -> ScreentimeModel:
    """Load a model folder written by :meth:`ScreentimeModel.save`."""
    path = Path(folder)
    card = read_model_card(path)
    try:
        head = load_head(card["head"]["kind"], path)
    except (OSError, KeyError, ValueError) as exc:
        raise ScreentimeError(f"the head in {path} is missing or corrupt ({exc.__class__.__name__}); "
                              "retrain with screentime train") from exc
    backbone = backbone_from_spec(card["backbone"], path)
    strength = float((card.get("smoothing") or {}).get("strength_s", 0.0))
    return ScreentimeModel(card["characters"], backbone, head, card["thresholds"], card.get("training", {}), strength)
