"""Label files in the project's format and the tutorial's mapping.csv."""

from __future__ import annotations

import pytest

from helpers.errors import ScreentimeError
from helpers.labels import format_label, normalise_name, parse_label, read_labels
from helpers.pipeline import extract, load_training_labels


def write(path, text):
    path.write_text(text)
    return path


def test_project_format_with_several_characters_and_ignore(tmp_path):
    labels = read_labels(write(tmp_path / "l.csv", "frame,time_s,label\n0,0,none\n25,1,Tom\n50,2,tom;Jerry\n75,3,ignore\n"))
    assert list(labels.table["frame"]) == [0, 25, 50]
    assert list(labels.table["names"]) == [frozenset(), {"tom"}, {"tom", "jerry"}]
    assert labels.characters == ["jerry", "tom"]


def test_names_are_normalised_consistently():
    assert normalise_name("  Mr  Smith ") == "mr_smith"
    assert parse_label("Mr Smith; JERRY", "x") == {"mr_smith", "jerry"}
    assert format_label({"tom", "jerry"}) == "jerry;tom" and format_label(set()) == "none"


@pytest.mark.parametrize("text, message", [
    ("frame,what\n1,tom\n", "needs 'label'"),
    ("label\ntom\n", "needs 'label' and 'frame'"),
    ("frame,label\n", "has no rows"),
    ("", "is empty"),
    ("frame,label\n3,tom\n3,jerry\n", "frame 3.0 is labelled twice, as jerry and tom"),
    ("frame,label\n-1,tom\n", "must be a whole number"),
    ("frame,label\n2.5,tom\n", "must be a whole number"),
    ("frame,label\n2,\n", "empty label"),
    ("frame,label\n2,tom;ignore\n", "'ignore' cannot be combined"),
    ("Image_ID,Class\nframe0.jpg,7\n", "unknown class 7"),
    ("Image_ID,Class\nframe0.jpg,x\n", "not a whole number"),
])
def test_bad_label_files_say_what_to_fix(tmp_path, text, message):
    with pytest.raises(ScreentimeError, match=message):
        read_labels(write(tmp_path / "bad.csv", text))


def test_same_frame_twice_with_the_same_label_is_kept_once(tmp_path):
    labels = read_labels(write(tmp_path / "l.csv", "frame,label\n3,tom\n3,Tom\n"))
    assert len(labels.table) == 1


def test_missing_labels_file(tmp_path):
    with pytest.raises(ScreentimeError, match="does not exist"):
        read_labels(tmp_path / "nope.csv")


def test_tutorial_mapping_through_frames_csv_from_extract(tmp_path, short_cartoon):
    table = extract(short_cartoon.video, tmp_path / "frames", fps=2)
    assert list(table.columns) == ["Image_ID", "frame", "time_s"]
    assert list(table["Image_ID"][:3]) == ["frame0.jpg", "frame1.jpg", "frame2.jpg"]
    assert (tmp_path / "frames" / "frame11.jpg").is_file() and len(table) == 12
    mapping = write(tmp_path / "frames" / "mapping.csv", "Image_ID,Class\nframe0.jpg,0\nframe3.jpg,2\nframe5.jpg,1\n")
    labels = load_training_labels(mapping, short_cartoon.video)
    assert list(labels.table["frame"]) == [0, 38, 63]  # 1.5 s and 2.5 s at 25 fps, rounded up to a frame
    assert list(labels.table["names"]) == [frozenset(), {"tom"}, {"jerry"}]


def test_tutorial_mapping_without_frames_csv_uses_the_tutorial_numbering(tmp_path, short_cartoon):
    mapping = write(tmp_path / "mapping.csv", "Image_ID,Class\nframe0.jpg,0\nframe2.jpg,1\n")
    labels = load_training_labels(mapping, short_cartoon.video, classes=["None", "Mouse"])
    assert list(labels.table["frame"]) == [0, 50]  # image N = frame N x floor(25)
    assert list(labels.table["names"]) == [frozenset(), {"mouse"}]


def test_unknown_image_id(tmp_path, short_cartoon):
    extract(short_cartoon.video, tmp_path, fps=1)
    mapping = write(tmp_path / "mapping.csv", "Image_ID,Class\nframe99.jpg,1\n")
    with pytest.raises(ScreentimeError, match="frame99.jpg .* is not in"):
        load_training_labels(mapping, short_cartoon.video)


def test_time_only_labels_go_to_the_nearest_frame(tmp_path, short_cartoon):
    path = write(tmp_path / "t.csv", "time_s,label\n0.0,none\n1.01,tom\n2.03,jerry\n")
    labels = load_training_labels(path, short_cartoon.video)
    assert list(labels.table["frame"]) == [0, 25, 51]


def test_time_past_the_end(tmp_path, short_cartoon):
    path = write(tmp_path / "t.csv", "time_s,label\n60,tom\n")
    with pytest.raises(ScreentimeError, match="past the end"):
        load_training_labels(path, short_cartoon.video)


def test_a_frame_and_a_time_that_disagree_are_warned_about(tmp_path, train_cartoon, caplog):
    """Frame 10 is shown at 0.4 s: a file that says 9.0 s probably belongs to another video (frames win)."""
    from helpers.pipeline import train

    rows = "".join(f"{f},{f / 25:.2f},{label}\n" for f, label in zip(train_cartoon.truth["frame"][::25],
                                                                     train_cartoon.truth["label"][::25]))
    agree = write(tmp_path / "agree.csv", "frame,time_s,label\n" + rows)
    train(train_cartoon.video, agree, tmp_path / "m1")
    assert "using the frames" not in caplog.text

    disagree = write(tmp_path / "disagree.csv", "frame,time_s,label\n" + rows.replace("\n250,10.00,", "\n250,19.00,"))
    train(train_cartoon.video, disagree, tmp_path / "m2", backbone="colour|colour+hog")
    warnings = [r.getMessage() for r in caplog.records if "using the frames" in r.getMessage()]
    assert warnings == [f"labels file {disagree}: frame 250 is at 10.00 s in {train_cartoon.video}, but the file "
                        "says 19.00 s (1 of 60 labels are more than 0.5 s off); using the frames: check the labels "
                        "belong to this video"]  # once, though two backbones were tried
