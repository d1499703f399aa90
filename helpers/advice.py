"""What ``train`` says about the model it made: how well it validated, and what to try when that is poor.

Validation here is the time-blocked, out-of-fold check that chose the thresholds and smoothing
(:mod:`helpers.calibration`): an estimate for footage like the labelled video, not a test on a new one.
"""

from __future__ import annotations

from typing import Any

from .calibration import validated_accuracy
from .model import ScreentimeModel

#: Below this validated accuracy a colour-only model comes with a suggestion to try a network.
GOOD_ENOUGH = 0.95

#: Below this many labels the validated accuracy runs low and no backbone is suggested: each time block
#: is predicted by a model that saw only the other blocks (60 labels of the test suite's cartoon
#: validated at 80-85% and scored 99.7% on another video; 120 labels validated at 97.5%).
MIN_LABELS_FOR_ADVICE = 200

#: What to try instead of colour alone; each alternative is validated and the best kept.
STRONGER_BACKBONES = ('--backbone "colour|colour,mobilenet_v2@max" (ImageNet weights, downloaded once) '
                      'or "colour|colour,MODEL.keras@max"; with 300 labels or more, also --backbone '
                      'MODEL.keras@max --head detector')


def uses_network(spec: dict[str, Any]) -> bool:
    """Whether a backbone spec (a fusion's parts included) runs a Keras network."""
    if spec.get("kind") == "fusion":
        return any(uses_network(part) for part in spec.get("parts", []))
    return spec.get("kind") != "classical"


def _validated_accuracy(model: ScreentimeModel) -> float | None:
    """Out-of-fold accuracy at the model's smoothing strength, or None when validation did not run."""
    return validated_accuracy(model.training.get("calibration", {}), model.smoothing_s)


def training_summary(model: ScreentimeModel) -> list[str]:
    """Lines saying how the model validated and, for each backbone tried, how it scored."""
    accuracy = _validated_accuracy(model)
    if accuracy is None:
        return []
    calibration = model.training["calibration"]
    raw = calibration["accuracy_raw"]
    smoothing = "without smoothing"
    if model.smoothing_s:
        smoothing = f"with {model.smoothing_s:g} s of smoothing ({raw:.1%} without" + (
            "; within validation's noise, so smoothing is kept)" if raw > accuracy else ")")
    count = int(model.training.get("labelled_frames", 0))
    caveat = (f"; with under {MIN_LABELS_FOR_ADVICE} labels this runs low, as each block is predicted by a model "
              "that saw only the others" if count < MIN_LABELS_FOR_ADVICE else "")
    lines = [f"validation ({calibration['validation']}): {accuracy:.1%} of the {count} labelled frames right "
             f"{smoothing}{caveat}"]
    moved = [f"{name} {t:g}" for name, t in zip(model.characters, model.thresholds) if t != 0.5]
    if moved:
        lines.append(f"thresholds moved from 0.5 by validation (better beyond its noise): {', '.join(moved)}")
    choice = model.training.get("backbone_choice")
    if choice:
        lines.append("backbones validated: " + ", ".join(
            f"{name} {score:.1%}" + (" (kept)" if name == choice["picked"] else "")
            for name, score in choice["validated_accuracy"].items()))
    return lines


def stronger_backbone_hint(model: ScreentimeModel) -> str | None:
    """A suggestion when a colour-only model validated below :data:`GOOD_ENOUGH` on at least
    :data:`MIN_LABELS_FOR_ADVICE` labels, else None (also None when ``|`` alternatives were compared:
    the user has chosen what to try)."""
    accuracy = _validated_accuracy(model)
    if (accuracy is None or accuracy >= GOOD_ENOUGH or uses_network(model.backbone.spec)
            or model.training.get("labelled_frames", 0) < MIN_LABELS_FOR_ADVICE
            or model.training.get("backbone_choice")):
        return None
    return (f"{model.backbone.spec['name']} features validated at {accuracy:.1%}; colour cannot tell a character "
            f"from things painted in its colours, and a network run on the whole frame scored 9-24 points higher "
            f"on such footage (docs/accuracy.md): try {STRONGER_BACKBONES}")
