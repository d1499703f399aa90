"""Precision benchmark: Keras backbones in float32 and in bfloat16 on this CPU, in one run.

    python benchmarks/precision.py [--out data/runs/precision] [--shared ../shared] [--frames 64]

For VGG16 and MobileNetV2 (``weights=None``: speed does not depend on weight values) and, when
``../shared`` is there, the SqueezeNet file: seconds to compute features of ``--frames`` frames of a
generated 640x360 cartoon (batches of 32, the median of 3 passes after one to warm up) with
``SCREENTIME_PRECISION=float32`` and ``=bfloat16``, the speed-up, how far the bfloat16 features are
from the float32 ones (relative distance, median over frames; lowest cosine similarity: for the
network with real weights only, since through random weights rounding grows without meaning), and
what ``SCREENTIME_PRECISION=auto`` picks here.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import benchmark_args, cpu_model  # noqa: E402
from helpers.evaluate import markdown_table  # noqa: E402
from helpers.precision import PRECISION_ENV, cpu_bfloat16_flag  # noqa: E402

BATCH = 32


def features_and_seconds(load, images: list[np.ndarray], precision: str) -> tuple[np.ndarray, float]:
    """Features of ``images`` from the backbone ``load()`` builds under ``precision``, and the median
    seconds of 3 passes (after a warm-up pass)."""
    os.environ[PRECISION_ENV] = precision
    backbone = load()
    prepared = [backbone.prepare(image) for image in images]

    def one_pass() -> np.ndarray:
        return np.concatenate([backbone.embed(prepared[i:i + BATCH]) for i in range(0, len(prepared), BATCH)])

    one_pass()
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        features = one_pass()
        seconds.append(time.perf_counter() - start)
    return features, statistics.median(seconds)


def main() -> None:
    args, out, shared = benchmark_args(__doc__, "data/runs/precision",
                                       lambda p: p.add_argument("--frames", type=int, default=64))
    from helpers.backbones import application_backbone, file_backbone
    from helpers.synthetic import make_cartoon
    from helpers.video import sample_frames

    video = out / "cartoon_640x360.mp4"
    if not video.is_file():
        make_cartoon(video, seconds=max(10, args.frames // 2), fps=25, size=(640, 360), seed=11)
    images = [frame.image for frame in sample_frames(video, 2.0)][: args.frames]
    backbones = {"vgg16 (weights=None)": lambda: application_backbone("vgg16", weights=None),
                 "mobilenet_v2 (weights=None)": lambda: application_backbone("mobilenet_v2", weights=None)}
    squeezenet = shared / "models" / "squeezenet_v1_1_imagenet.keras"
    if squeezenet.is_file():
        backbones["SqueezeNet v1.1 file (ImageNet weights)"] = lambda: file_backbone(squeezenet)
    rows = []
    for name, load in backbones.items():
        f32, s32 = features_and_seconds(load, images, "float32")
        bf16, s16 = features_and_seconds(load, images, "bfloat16")
        os.environ[PRECISION_ENV] = "auto"
        auto = load().precision  # what auto picks is decided when the backbone is built: no features needed
        norms = np.linalg.norm(f32, axis=1) * np.linalg.norm(bf16, axis=1)
        cosine = (f32 * bf16).sum(axis=1) / np.maximum(norms, 1e-12)
        distance = np.linalg.norm(f32 - bf16, axis=1) / np.maximum(np.linalg.norm(f32, axis=1), 1e-12)
        trained = "weights=None" not in name
        rows.append({"backbone": name, "float32 (s)": round(s32, 3), "bfloat16 (s)": round(s16, 3),
                     "speed-up": round(s32 / s16, 2),
                     "relative distance (median)": f"{np.median(distance):.2%}" if trained else "n/a",
                     "lowest cosine": round(float(cosine.min()), 5) if trained else "n/a", "auto picks": auto})
    del os.environ[PRECISION_ENV]
    import pandas as pd

    report = (f"CPU: {cpu_model()}, {os.cpu_count()} cores; bfloat16 CPU flag: {cpu_bfloat16_flag() or 'none'}; "
              f"{len(images)} frames, batches of {BATCH}\n\n" + markdown_table(pd.DataFrame(rows)))
    print(report)
    (out / "precision.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
