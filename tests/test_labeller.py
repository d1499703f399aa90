"""The labelling widget driven through the ipywidgets API: values set, buttons clicked, key events fired.

The labels CSV is checked after each step; a session killed with SIGKILL loses at most the label
being made and the next session resumes; the next-frame order follows ``helpers.active``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import active
from helpers.errors import ScreentimeError
from helpers.labeller import (
    Labeller,
    clock,
    export_labels,
    export_mapping,
    import_mapping,
    rename_character,
)
from helpers.labels import read_labels
from helpers.pipeline import extract

CHARS = ["jerry", "tom"]


def csv(path: Path) -> dict[int, str]:
    """The labels file as {frame: label}; also checks its columns and that time_s is each frame's time."""
    if not path.exists():
        return {}
    table = pd.read_csv(path, keep_default_na=False)
    assert list(table.columns) == ["frame", "time_s", "label"]
    assert list(table["frame"]) == sorted(table["frame"])
    return dict(zip(table["frame"].astype(int), table["label"]))


def key(labeller: Labeller, name: str, **extra) -> None:
    """A key press as the browser sends it: through the ipyevents widget's message handler."""
    labeller.events[0]._handle_mouse_msg(None, {"event": "keydown", "key": name, **extra}, [])


def truth_of(cartoon) -> dict[int, str]:
    return dict(zip(cartoon.truth["frame"], cartoon.truth["label"]))


@pytest.fixture
def session(tmp_path, train_cartoon):
    def make(**kwargs) -> Labeller:
        kwargs.setdefault("background", False)
        return Labeller(train_cartoon.video, tmp_path / "labels.csv", kwargs.pop("characters", CHARS), **kwargs)
    return make


def test_every_click_and_key_is_in_the_csv_at_once(session, tmp_path):
    lab = session()
    path = tmp_path / "labels.csv"
    order = [int(lab.frames[p]) for p in lab.planner.order]
    assert lab.frame == order[0] and not path.exists()
    assert f"frame {order[0]}</b>" in lab.title.value and f"/ {len(lab.frames)}" in lab.title.value
    assert lab.image.value[:2] == b"\xff\xd8" and len(lab.thumbs) == 5  # a JPEG, two neighbours each side

    lab.toggles[0].value = True  # a click on "1 jerry" in the browser
    assert csv(path) == {order[0]: "jerry"}
    lab.toggles[1].value = True
    assert csv(path) == {order[0]: "jerry;tom"}
    lab.toggles[0].value = False
    lab.toggles[1].value = False  # all off again: unlabelled
    assert csv(path) == {}
    lab.none_button.value = True
    assert csv(path) == {order[0]: "none"}
    lab.next_button.click()
    assert lab.frame == order[1] and csv(path) == {order[0]: "none"}

    key(lab, "2")  # tom
    assert csv(path) == {order[0]: "none", order[1]: "tom"}
    assert lab.toggles[1].value and not lab.toggles[0].value and not lab.none_button.value
    key(lab, "Enter")
    assert lab.frame == order[2]
    key(lab, "0")
    key(lab, "0")  # 0 twice is still none (not a toggle)
    assert csv(path)[order[2]] == "none"
    key(lab, "Backspace")
    assert lab.frame == order[1] and lab.toggles[1].value  # back shows the label made there
    key(lab, "1")
    assert csv(path)[order[1]] == "jerry;tom"
    key(lab, "ArrowRight")
    assert lab.frame == order[2]
    key(lab, "Enter")
    assert lab.frame == order[3]
    key(lab, "s")  # skip: not written, not proposed again this session
    assert lab.frame == order[4] and order[3] not in csv(path)
    key(lab, "i")
    assert csv(path)[order[4]] == "ignore"
    key(lab, "Delete")
    assert order[4] not in csv(path)
    key(lab, "ArrowLeft")
    assert lab.frame == order[3]
    key(lab, "Enter")
    key(lab, "Enter")  # an unlabelled frame: Enter moves on (as skip)
    assert lab.frame == order[5] and lab.planner.position_of[order[4]] in lab.planner.skipped

    before = csv(path)
    key(lab, "1", ctrlKey=True)  # shortcuts with modifiers are not ours
    key(lab, "9")  # no ninth character
    lab.events[0]._handle_mouse_msg(None, {"event": "keyup", "key": "1"}, [])
    assert csv(path) == before and lab.frame == order[5]
    assert "jerry 1, tom 1, none 2" in lab.counts.value.replace("&nbsp;", "") and lab.progress.value == 3
    assert clock(83.54) == "1:23.5" and clock(0) == "0:00.0"


def test_buttons_jump_and_neighbour_strip(session, tmp_path):
    lab = session()
    lab.goto(1010)
    assert lab.frame == 1000  # the nearest candidate (one per second at 25 fps)
    lab.goto_box.value = 500
    lab.goto_button.click()
    assert lab.frame == 500
    assert "0:18.0" in lab.thumb_captions[0].value and "0:22.0" in lab.thumb_captions[4].value
    lab.events[1 + 4]._handle_mouse_msg(None, {"event": "click"}, [])  # click the right-most neighbour
    assert lab.frame == 550
    assert "0:20.0" in lab.thumb_captions[0].value and "3px solid #d62728" == lab.thumbs[2].layout.border
    lab.back_button.click()
    assert lab.frame == 500
    lab.goto(0)
    assert lab.thumbs[0].layout.visibility == "hidden"  # nothing before the first frame
    lab.skip_button.click()
    assert lab.planner.skipped == {lab.planner.position_of[0]}
    lab.ignore_button.click()
    assert list(csv(tmp_path / "labels.csv").values()) == ["ignore"]


def test_a_new_session_resumes_where_the_last_stopped(session, tmp_path, train_cartoon):
    truth = truth_of(train_cartoon)
    first = session()
    for _ in range(4):
        first.label(truth[first.frame])
        first.next()
    made = csv(tmp_path / "labels.csv")
    assert len(made) == 4 and all(made[f] == truth[f] for f in made)

    second = session(characters=[])  # characters come back from the file
    assert second.characters == ["jerry", "tom"] or set(second.characters) == {"jerry", "tom"}
    assert {int(second.frames[p]) for p in second.planner.labels} == set(made)
    order = [int(second.frames[p]) for p in second.planner.order]
    assert second.frame == next(f for f in order if f not in made)
    labelled = next(iter(made))
    second.goto(labelled)
    assert f"<b>{made[labelled]}</b>" in second.title.value
    second.label("none")
    assert csv(tmp_path / "labels.csv")[labelled] == "none" and len(csv(tmp_path / "labels.csv")) == 4


def test_rows_the_session_does_not_touch_are_kept(session, tmp_path):
    path = tmp_path / "labels.csv"
    text = "time_s,label\n2.01,Tom\n3.0,ignore\n10.5,Jerry;tom\n"  # no frame column; 10.5 s is mid-second
    path.write_text(text)
    lab = session()
    assert path.read_text() == text  # nothing written until a label changes
    lab.goto(0)
    lab.label([])
    assert csv(path) == {0: "none", 50: "tom", 75: "ignore", 262: "jerry;tom"}
    assert 262 in set(lab.frames)  # a labelled frame off the 1-per-second grid is a candidate too
    assert read_labels(path).characters == ["jerry", "tom"]


def test_next_frame_order_spread_first_then_the_models_doubts(session, train_cartoon):
    truth = truth_of(train_cartoon)
    lab = session()
    order = [int(lab.frames[p]) for p in lab.planner.order]
    shown = []
    while not lab.planner.is_active():
        shown.append(lab.frame)
        lab.label(truth[lab.frame])
        lab.next()
    assert shown == order[:len(shown)]  # the initial order, one label at a time
    assert "least sure" in lab.model_info.value
    for _ in range(3):
        proposals = [int(lab.frames[p]) for p in lab.planner.result.proposals]
        assert lab.frame == proposals[0]  # the most uncertain unlabelled frame, retrained after the last label
        lab.label(truth[lab.frame])
        lab.next()
    while len(lab.planner.labels) < active.MIN_FOR_ESTIMATE:
        lab.label(truth[lab.frame])
        lab.next()
    assert "estimated accuracy" in lab.model_info.value
    assert lab.planner.history and lab.planner.history[-1][0] == len(lab.planner.labels)
    for _, position in lab.review_list.options:  # the review lists labelled frames only
        assert position in lab.planner.labels
    lab.order_choice.value = "spread"
    lab.next()
    done = {int(lab.frames[p]) for p in lab.planner.labels} | {int(lab.frames[p]) for p in lab.planner.skipped}
    assert lab.frame == next(f for f in order if f not in done)


def test_a_fused_backbones_parts_weigh_alike_in_the_proposing_model(session, tmp_path):
    from helpers.backbones import keras_module

    keras = keras_module()
    inputs = keras.Input((40, 40, 3))
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3)(inputs))).save(
        tmp_path / "tiny.keras")
    lab = session(backbone=f"colour,{tmp_path / 'tiny.keras'}")
    assert lab.planner.make_head().scaler.blocks == [264, 6]  # as train's head weighs them
    assert session().planner.make_head().scaler.blocks is None  # one backbone: nothing to weigh


def test_review_list_takes_you_to_a_suspicious_label(session, train_cartoon):
    truth = truth_of(train_cartoon)
    lab = session()
    for i in range(14):
        wrong = {"none": "jerry;tom", "jerry": "tom", "tom": "jerry", "jerry;tom": "none"}
        lab.label(truth[lab.frame] if i != 5 else wrong[truth[lab.frame]])
        lab.next()
    assert lab.review_list.options, lab.model_info.value
    text, position = lab.review_list.options[0]
    lab.review_list.value = position
    assert lab.position == position and "labelled" in text and "model says" in text


def test_characters_added_while_labelling_and_renamed(session, tmp_path):
    lab = session()
    path = tmp_path / "labels.csv"
    lab.name_box.value = "  Spike Dog "
    lab.add_button.click()
    assert lab.characters == ["jerry", "tom", "spike_dog"] and lab.name_box.value == ""
    assert [b.description for b in lab.toggles] == ["1 jerry", "2 tom", "3 spike_dog"]
    key(lab, "3")
    key(lab, "1")
    assert list(csv(path).values()) == ["jerry;spike_dog"]
    for bad in ("none", "", "tom"):
        lab.name_box.value = bad
        lab.add_button.click()  # the message says what is wrong; nothing raised into the notebook
        assert lab.status.value and lab.characters == ["jerry", "tom", "spike_dog"]
    with pytest.raises(ScreentimeError, match="reserved"):
        lab.add_character("ignore")
    with pytest.raises(ScreentimeError, match="unknown character 'spke'"):
        lab.label(["spke"])

    lab.rename_character("spike_dog", "Spike")
    assert list(csv(path).values()) == ["jerry;spike"] and lab.toggles[2].description == "3 spike"


def test_rename_character_in_the_file(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("frame,time_s,label\n0,0.0,Tom\n25,1.0,jerry;tom\n50,2.0,none\n75,3.0,ignore\n")
    assert rename_character(path, "TOM", "Thomas") == 2
    assert csv(path) == {0: "thomas", 25: "jerry;thomas", 50: "none", 75: "ignore"}
    assert rename_character(path, "jerry", "thomas") == 1  # merges into an existing name
    assert csv(path)[25] == "thomas"
    with pytest.raises(ScreentimeError, match="no label .* names 'spike'"):
        rename_character(path, "spike", "dog")
    with pytest.raises(ScreentimeError, match="reserved"):
        rename_character(path, "thomas", "none")


def test_import_the_tutorial_mapping_and_export_both_formats(tmp_path, short_cartoon):
    frames = extract(short_cartoon.video, tmp_path / "frames", fps=1)
    mapping = tmp_path / "frames" / "mapping.csv"
    mapping.write_text("Image_ID,Class\nframe0.jpg,0\nframe2.jpg,2\nframe4.jpg,1\n")
    labels = tmp_path / "labels.csv"
    assert import_mapping(mapping, short_cartoon.video, ["none", "jerry", "tom"], labels) == 3
    frame_of = dict(zip(frames["Image_ID"], frames["frame"]))
    assert csv(labels) == {frame_of["frame0.jpg"]: "none", frame_of["frame2.jpg"]: "tom", frame_of["frame4.jpg"]: "jerry"}

    out = tmp_path / "mapping_out.csv"
    assert export_mapping(labels, out, ["none", "jerry", "tom"], frames_csv=tmp_path / "frames" / "frames.csv") == 3
    assert pd.read_csv(out).to_dict("records") == pd.read_csv(mapping).to_dict("records")  # round trip
    assert export_mapping(labels, out, ["none", "jerry", "tom"], video=short_cartoon.video) == 3
    assert list(pd.read_csv(out)["Image_ID"]) == ["frame0.jpg", "frame2.jpg", "frame4.jpg"]  # frame N x 25
    assert export_labels(labels, tmp_path / "copy.csv") == 3 and csv(tmp_path / "copy.csv") == csv(labels)

    # The tutorial has one class per frame: several characters are refused, or left out on request.
    with labels.open("a") as f:
        f.write("75,3.0,jerry;tom\n")
    with pytest.raises(ScreentimeError, match="frame 75 shows jerry and tom; .* several='skip'"):
        export_mapping(labels, out, ["none", "jerry", "tom"], video=short_cartoon.video)
    assert export_mapping(labels, out, ["none", "jerry", "tom"], video=short_cartoon.video, several="skip") == 3
    with pytest.raises(ScreentimeError, match="'jerry' .* not among the classes none,tom"):
        export_mapping(labels, out, ["none", "tom"], video=short_cartoon.video, several="skip")
    # Importing again agrees with what is there; a conflicting label is refused.
    assert import_mapping(mapping, short_cartoon.video, None, labels) == 3
    mapping.write_text("Image_ID,Class\nframe0.jpg,1\n")
    with pytest.raises(ScreentimeError, match="is none in .* but jerry in"):
        import_mapping(mapping, short_cartoon.video, None, labels)


def test_mistakes_get_one_clear_line(tmp_path, short_cartoon):
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("Image_ID,Class\nframe0.jpg,1\n")
    with pytest.raises(ScreentimeError, match="tutorial mapping.csv; import it first"):
        Labeller(short_cartoon.video, mapping, CHARS, background=False)
    late = tmp_path / "late.csv"
    late.write_text("frame,label\n99999,tom\n")
    with pytest.raises(ScreentimeError, match="labels frame 99999, but the video decodes only 150 frames"):
        Labeller(short_cartoon.video, late, CHARS, background=False)
    with pytest.raises(ScreentimeError, match="fps must be a positive number"):
        Labeller(short_cartoon.video, tmp_path / "l.csv", CHARS, fps=0)
    with pytest.raises(ScreentimeError, match="does not exist"):
        Labeller(tmp_path / "nope.mp4", tmp_path / "l.csv", CHARS)
    with pytest.raises(ScreentimeError, match="needs frame_csv|needs frames_csv"):
        export_mapping(late, tmp_path / "m.csv")


def test_background_retrain_catches_up_with_the_last_label(tmp_path, train_cartoon):
    truth = truth_of(train_cartoon)
    lab = Labeller(train_cartoon.video, tmp_path / "labels.csv", CHARS, background=True)
    start = time.time()
    for _ in range(16):
        lab.label(truth[lab.frame])
        lab.next()
    assert lab.wait(60)
    assert lab.planner.result.version == lab.planner.version and lab.planner.result.labels == 16
    assert "estimated accuracy" in lab.model_info.value
    assert len(csv(tmp_path / "labels.csv")) == 16 and time.time() - start < 60


KILLED_SESSION = textwrap.dedent("""
    import sys
    from helpers.labeller import Labeller
    import pandas as pd
    truth = pd.read_csv(sys.argv[3])
    truth = dict(zip(truth["frame"], truth["label"]))
    lab = Labeller(sys.argv[1], sys.argv[2], ["jerry", "tom"], background=True)
    while True:
        frame = lab.frame
        lab.label(truth[frame])
        print(frame, flush=True)  # the label call has returned: it is on disk
        lab.next()
""")


def test_killing_the_kernel_loses_at_most_the_label_being_made(tmp_path, train_cartoon):
    path = tmp_path / "labels.csv"
    script = tmp_path / "session.py"
    script.write_text(KILLED_SESSION)
    env = {**os.environ, "SCREENTIME_QUIET": "1"}
    confirmed: list[int] = []
    for stop_after in (7, 19):  # kill twice; the second session resumes the first's file
        proc = subprocess.Popen([sys.executable, str(script), str(train_cartoon.video), str(path),
                                 str(train_cartoon.truth_csv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        try:
            while len(confirmed) < stop_after:
                line = proc.stdout.readline()
                assert line, proc.stderr.read()[-2000:]
                confirmed.append(int(line))
        finally:
            proc.send_signal(signal.SIGKILL)  # no clean-up code runs
            proc.wait()
        labels = csv(path)  # always a whole, readable CSV
        truth = truth_of(train_cartoon)
        assert set(confirmed) <= set(labels) and len(labels) <= len(confirmed) + 1
        assert all(labels[f] == truth[f] for f in labels)
        assert len(set(confirmed)) == len(confirmed)  # the resumed session never proposed a labelled frame
    resumed = Labeller(train_cartoon.video, path, CHARS, background=False)
    assert len(resumed.planner.labels) == len(csv(path)) and resumed.frame not in csv(path)
    assert not list(tmp_path.glob(".labels.csv.*.tmp"))  # a killed write's temporary file is cleaned up
