"""The ``screentime`` command line. Every failure is one line on stderr; ``--debug`` shows tracebacks."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from . import __version__
from .backbones import BACKBONE_CHOICES
from .errors import ScreentimeError, UsageError
from .heads import HEADS
from .progress import set_quiet
from .video import parse_fps


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2
        raise UsageError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    common.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the feature cache (~/.cache/screentime or $SCREENTIME_CACHE)")

    parser = _Parser(prog="screentime", description="Measure how long each character is on screen in a video.",
                     parents=[common])
    parser.add_argument("--version", action="version", version=f"screentime {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("extract", parents=[common], help="write sampled frames as JPEG files plus frames.csv")
    p.add_argument("video")
    p.add_argument("--out", required=True, help="folder for frame0.jpg, frame1.jpg, ... and frames.csv")
    p.add_argument("--fps", default="1", help="frames per second to keep, or 'all' (default 1)")

    p = sub.add_parser("train", parents=[common], help="learn the characters from labelled frames")
    p.add_argument("--video", required=True)
    p.add_argument("--labels", required=True, help="frame,time_s,label CSV or the tutorial's Image_ID,Class mapping.csv")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--backbone", default="colour",
                   help=f"one of {', '.join(BACKBONE_CHOICES)} (default colour); alternatives joined with | "
                        "('colour|model.keras|colour,model.keras') are each validated and the best is kept")
    p.add_argument("--classes", help="names of the integer classes of a mapping.csv, in order (default none,jerry,tom)")
    p.add_argument("--frames", help="frames.csv from screentime extract, to read Image_IDs (default: beside the labels)")
    p.add_argument("--head", default="logistic",
                   help=f"classifier on the features: one of {', '.join(HEADS)} (default logistic); detector: a "
                        "small network on the whole feature map of a NAME@max backbone; alternatives joined with | "
                        "('logistic|detector') are validated with every backbone they fit and the best is kept")
    p.add_argument("--weights", default="imagenet",
                   help="keras.applications weights: imagenet (default), none (random, for tests) or a .h5 path")
    p.add_argument("--input-size", type=int, help="input size for keras.applications backbones (default 224)")
    p.add_argument("--epochs", type=int, help="epochs for the mlp head (default 60); for the detector, passes over "
                   "the labels instead of its 500 steps of 32 frames")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("predict", parents=[common], help="screen time of each character in a video")
    p.add_argument("video")
    p.add_argument("--model", required=True, help="model folder written by screentime train")
    p.add_argument("--out", required=True, help="folder for predictions.csv, screentime.csv, segments.csv")
    p.add_argument("--fps", default="1", help="frames per second to classify, or 'all' (default 1)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.add_argument("--no-shots", action="store_true",
                   help="do not look for shot cuts (faster; smoothing then runs across cuts; shots.csv has one shot)")

    p = sub.add_parser("batch", parents=[common], help="predict many videos in parallel on Dask, resumably")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--model", required=True, help="model folder written by screentime train")
    p.add_argument("--out", required=True, help="folder: one subfolder per video, screentime.csv, totals.csv, "
                   "failures.csv, index.html")
    p.add_argument("--fps", default="1", help="frames per second to classify, or 'all' (default 1)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786 "
                   "(default: a local cluster on this machine)")
    p.add_argument("--workers", type=int, help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html and index.html")

    p = sub.add_parser("evaluate", parents=[common], help="score predictions against ground truth; "
                       "confusion matrix; accuracy against the number of labels (--learning-curve)")
    p.add_argument("--predictions", help="predictions.csv to score (written by screentime predict)")
    p.add_argument("--truth", required=True, help="frame and/or time_s, label CSV ('ignore' = not scored)")
    p.add_argument("--json", help="also write the scores (and the confusion matrix, the learning curve) as JSON here")
    p.add_argument("--plots", metavar="DIR", help="folder for confusion.png, and with --learning-curve "
                   "learning_curve.png and learning_curve.csv")
    curve = p.add_argument_group("learning curve", "train on nested subsets of the labels (evenly in time), "
                                 "predict --video, score each against --truth")
    curve.add_argument("--learning-curve", action="store_true", help="accuracy against the number of labelled frames")
    curve.add_argument("--train-video", help="the video the labels belong to")
    curve.add_argument("--labels", help="its labels (frame,time_s,label CSV or mapping.csv)")
    curve.add_argument("--video", help="the video to predict and score (the one --truth describes)")
    which = curve.add_mutually_exclusive_group()
    which.add_argument("--model", help="retrain with this model folder's backbone and head")
    which.add_argument("--backbone", help="backbone to train with (default colour)")
    curve.add_argument("--fps", help="frames per second of --video to classify, or 'all' (default 1)")
    curve.add_argument("--sizes", help="numbers of labels to train on, e.g. 5,10,20 (default 5, 10, 20, ... and all)")
    curve.add_argument("--repeats", type=int, help="nested orders starting at different labelled frames (default 3)")

    p = sub.add_parser("demo", parents=[common], help="the whole pipeline on synthetic cartoons, offline")
    p.add_argument("--out", default="data/demo")

    p = sub.add_parser("generate", parents=[common], help="write a synthetic cartoon and its per-frame truth")
    p.add_argument("video", help="output .mp4 or .avi")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truth", help="truth CSV to write (default: VIDEO with .truth.csv)")

    p = sub.add_parser("notebooks", parents=[common], help="run the five notebooks in order with papermill")
    p.add_argument("--video", help="video to extract, label, train on and predict (default: the synthetic demo)")
    p.add_argument("--labels", help="its labels (default: from NAME_truth.csv beside a synthetic video)")
    p.add_argument("--out", help="run folder for the executed notebooks and outputs (default: runs/NAME)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="a notebook parameter, e.g. -p quick True -p backbone colour+hog (repeatable)")
    return parser


def _run(args: argparse.Namespace) -> int:
    from . import pipeline

    if args.command == "extract":
        table = pipeline.extract(args.video, args.out, parse_fps(args.fps))
        print(f"wrote {len(table)} frames and frames.csv to {args.out}")
    elif args.command == "train":
        if args.input_size is not None and args.input_size < 32:
            raise UsageError("--input-size must be at least 32")
        classes = [c for c in args.classes.split(",")] if args.classes else None
        weights = None if args.weights.lower() == "none" else args.weights
        model = pipeline.train(args.video, args.labels, args.out, backbone=args.backbone, classes=classes,
                               head=args.head, weights=weights, input_size=args.input_size,
                               frames_csv=args.frames, epochs=args.epochs, seed=args.seed)
        print(f"trained on {model.training['labelled_frames']} frames: {', '.join(model.characters)} -> {args.out}")
        from .advice import stronger_backbone_hint, training_summary
        from .progress import log

        for line in training_summary(model):
            print(line)
        hint = stronger_backbone_hint(model)
        if hint:
            log.warning(hint)
    elif args.command == "predict":
        result = pipeline.predict(args.video, args.model, args.out, parse_fps(args.fps), shots=not args.no_shots)
        if not args.no_report:
            from .report import write_report

            write_report(args.video, result, args.out, fps=parse_fps(args.fps), model_dir=args.model)
        print(result.screentime.to_string(index=False))
        cached = len(result.predictions) - result.computed
        print(f"video {result.duration_s:.1f} s, {len(result.predictions)} frames classified"
              f"{f' ({cached} from the feature cache)' if cached else ''} -> {args.out}")
    elif args.command == "batch":
        from .batch import run_batch_command

        run_batch_command(args.videos, args.model, args.out, parse_fps(args.fps), scheduler=args.scheduler,
                          workers=args.workers, report=not args.no_report)
    elif args.command == "evaluate":
        from .evaluate import evaluate_command

        print(evaluate_command(truth=args.truth, predictions=args.predictions, json_path=args.json,
                               plots_dir=args.plots, learning=args.learning_curve, train_video=args.train_video,
                               labels=args.labels, video=args.video, model=args.model, backbone=args.backbone,
                               fps=args.fps, sizes=args.sizes, repeats=args.repeats))
    elif args.command == "demo":
        from .demo import format_demo, run_demo

        print(format_demo(run_demo(args.out)))
    elif args.command == "generate":
        from pathlib import Path

        from .fileio import write_csv
        from .synthetic import make_cartoon

        truth = make_cartoon(args.video, seconds=args.seconds, fps=args.fps, seed=args.seed)
        truth_path = args.truth or str(Path(args.video).with_suffix(".truth.csv"))
        write_csv(truth, truth_path)
        print(f"wrote {args.video} ({len(truth)} frames) and {truth_path}")
    elif args.command == "notebooks":
        from .notebooks import parse_value, run_notebooks

        params = {key: parse_value(value) for key, value in args.parameter}
        echo = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))
        run = run_notebooks(args.video, args.labels, args.out, params, echo=echo)
        print(f"executed notebooks and their outputs are in {run}")
    return 0


#: Exit status when the reader of the output went away (``screentime ... | head``), as for SIGPIPE.
CLOSED_PIPE_STATUS = 141


def _stop_writing_to_closed_stdout() -> None:
    """The output's reader went away: send what is left to /dev/null so that exiting says nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``screentime`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        os.environ["SCREENTIME_DEBUG"] = "1"
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "24"  # FFmpeg warnings
    try:
        args = build_parser().parse_args(argv)
        set_quiet(args.quiet)
        if args.no_cache:
            os.environ["SCREENTIME_NO_CACHE"] = "1"
        # Notes (INFO) only on a terminal, like the progress bars; warnings and errors always.
        chatty = sys.stderr.isatty() and not args.quiet
        logging.basicConfig(format="screentime: %(message)s", level=logging.INFO if chatty else logging.WARNING)
        status = _run(args)
        sys.stdout.flush()  # a closed pipe shows up here rather than as noise at exit
        return status
    except SystemExit:  # --help, --version and usage errors end in argparse
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _stop_writing_to_closed_stdout()
        raise
    except BrokenPipeError:  # outputs are written before anything is printed, so nothing is lost
        _stop_writing_to_closed_stdout()
        return CLOSED_PIPE_STATUS
    except ScreentimeError as exc:
        if debug:
            raise
        print(f"screentime: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("screentime: interrupted; finished outputs are intact, unfinished ones were not written", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: still one line unless --debug
        if debug:
            raise
        print(f"screentime: unexpected error: {exc.__class__.__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return 1
