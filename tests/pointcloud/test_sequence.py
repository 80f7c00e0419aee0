"""A folder of frames as a sequence: numbers from names, missing frames, tracks over committed boxes,
interpolation between key frames, and KITTI tracking labels out of and into the store."""

from __future__ import annotations

import pytest

from playground.errors import DataFormatError
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.sequence import (
    commit_tracking,
    describe_missing,
    export_tracking,
    frame_number,
    interpolated,
    key_frames,
    read_tracking,
    sequence_of,
    track_rows,
    tracks,
)

NAMES = ["000000", "000001", "000002", "000004", "000005"]  # 000003 never arrived


def car(x: float, y: float = 0.0) -> Cuboid:
    return Cuboid((x, y, 0.8), (4.2, 1.8, 1.6), 0.0, "car")


def walker(y: float) -> Cuboid:
    return Cuboid((8.0, y, 0.9), (0.7, 0.6, 1.7), 0.0, "pedestrian")


@pytest.fixture
def annotations(tmp_path):
    store = CuboidAnnotations(url=f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


def test_frames_are_numbered_by_the_last_digits_in_their_names_and_gaps_are_found():
    assert [frame_number(n) for n in ("000123", "scan_07", "2024_run_0005", "frame")] == [123, 7, 5, None]
    sequence = sequence_of(["000010", "000002", "000004", "000005", "000009"])
    assert list(sequence.numbers) == ["000002", "000004", "000005", "000009", "000010"]
    assert sequence.missing == (3, 6, 7, 8)
    assert describe_missing(sequence.missing) == "frames 3, 6, 7, 8 are missing"
    assert describe_missing((3,)) == "frame 3 is missing" and describe_missing(()) == ""
    assert describe_missing(tuple(range(10)), limit=2) == "frames 0, 1 and 8 more are missing"
    assert sequence_of(NAMES).missing == (3,)
    with pytest.raises(DataFormatError, match="no number"):
        sequence_of(["000001", "calibration"])
    with pytest.raises(DataFormatError, match="both have number 1"):
        sequence_of(["a_1", "b_001"])


def test_committed_boxes_are_tracked_across_a_missing_frame(annotations):
    sequence = sequence_of(NAMES)
    for name, number in sequence.numbers.items():
        annotations.commit(
            "drive", name, [car(2.0 * number), walker(5.0 - 0.3 * number)], "alice", f"r{name}"
        )
    tracked = tracks(annotations, "drive", sequence)
    assert sorted(tracked) == [0, 1, 2, 4, 5]
    assert {tuple(b.attributes["track_id"] for b in boxes) for boxes in tracked.values()} == {(0, 1)}
    rows = track_rows(tracked, sequence)
    assert len(rows) == 10 and rows[6] == {
        "frame": "000004",
        "number": 4,
        "track": 0,
        "label": "car",
        "x": 8.0,
        "y": 0.0,
        "z": 0.8,
    }


def test_interpolation_fills_the_frames_between_two_key_frames_but_not_a_missing_one(annotations):
    sequence = sequence_of(NAMES)
    annotations.commit("drive", "000001", [car(2.0)], "alice", "r1")
    annotations.commit("drive", "000005", [car(10.0, 4.0)], "alice", "r5")
    tracked = tracks(annotations, "drive", sequence)
    first, last = key_frames(tracked, 0), key_frames(tracked, 1)  # too far apart for one track
    assert list(first) == [1] and list(last) == [5]
    filled = interpolated((1, first[1]), (5, last[5]), sequence)
    assert list(filled) == ["000002", "000004"]  # 000003 has no file
    assert filled["000002"].center == (4.0, 1.0, 0.8) and filled["000004"].center == (8.0, 3.0, 0.8)
    assert filled["000002"].attributes["source"] == "interpolated" and filled["000002"].score is None
    assert annotations.head("drive", "000002") is None  # offered, not committed
    with pytest.raises(DataFormatError, match="no frame between"):
        interpolated((1, first[1]), (2, last[5]), sequence)
    with pytest.raises(DataFormatError, match="a car into a pedestrian"):
        interpolated((1, first[1]), (5, walker(3.0)), sequence)


def test_one_track_on_dense_key_frames_gives_its_own_key_frames(annotations):
    sequence = sequence_of(NAMES)
    for name in ("000000", "000001", "000002", "000004"):
        annotations.commit("drive", name, [car(0.5 * sequence.numbers[name])], "alice", f"r{name}")
    tracked = tracks(annotations, "drive", sequence)
    keys = key_frames(tracked, 0)
    assert list(keys) == [0, 1, 2, 4]
    assert interpolated((2, keys[2]), (4, keys[4]), sequence) == {}  # only the missing frame between


def test_kitti_tracking_goes_out_and_comes_back_in_once(annotations):
    sequence = sequence_of(NAMES)
    for number in (0, 1, 2):
        annotations.commit("drive", NAMES[number], [car(2.0 * number)], "alice", f"r{number}")
    text = export_tracking(tracks(annotations, "drive", sequence))
    assert [line.split()[:3] for line in text.splitlines()] == [
        ["0", "0", "Car"],
        ["1", "0", "Car"],
        ["2", "0", "Car"],
    ]
    data = (text + text.splitlines()[0].replace("0 0 Car", "9 0 Car", 1) + "\n").encode()
    labels = read_tracking(data, sequence)
    assert (
        list(labels.frames) == ["000000", "000001", "000002"] and labels.unknown == (9,) and labels.boxes == 3
    )
    assert commit_tracking(annotations, "other", labels, "bob") == 3
    assert commit_tracking(annotations, "other", labels, "bob") == 3  # the same file again: no new revision
    assert len(annotations.history("other", "000001")) == 1
    assert [b.center[0] for b in annotations.current("other", "000002")] == pytest.approx([4.0])


def test_a_track_id_used_twice_in_one_frame_is_refused():
    line = "0 7 Car 0 0 0 0 0 0 0 1.6 1.8 4.2 0 0 10 0\n"
    with pytest.raises(DataFormatError, match="track id 7 is used twice in frame 0"):
        read_tracking((line + line).encode(), sequence_of(NAMES), where="tracks.txt")
    with pytest.raises(DataFormatError, match="not UTF-8"):
        read_tracking(b"\xff\xfe", sequence_of(NAMES))


def test_tracking_labels_that_are_too_big_not_bytes_or_beyond_any_frame_are_refused(monkeypatch):
    import playground.core.files as files

    line = b"0 7 Car 0 0 0 0 0 0 0 1.6 1.8 4.2 0 0 10 0\n"
    with pytest.raises(DataFormatError, match="expected the file's bytes, got str"):
        read_tracking(line.decode(), sequence_of(NAMES))
    huge = b"9" * 4000 + line[1:]  # a 4000-digit frame number was listed in full as "not in this folder"
    with pytest.raises(DataFormatError, match="frame and track id must be from 0 to 2147483647") as refused:
        read_tracking(huge, sequence_of(NAMES))
    assert len(str(refused.value)) < 300
    with pytest.raises(DataFormatError, match="must be numbers \\(not NaN or infinite\\)"):
        read_tracking(line.replace(b" 10 0", b" 10 inf"), sequence_of(NAMES))
    monkeypatch.setattr(files, "MAX_TEXT_BYTES", 1000)
    with pytest.raises(DataFormatError, match="tracks.txt is 2,150 bytes; at most 1,000 are read"):
        read_tracking(line * 50, sequence_of(NAMES), where="tracks.txt")


def test_frame_names_numbered_too_far_apart_are_not_one_sequence():
    # timestamps as names: the missing numbers between them were listed one by one (minutes, gigabytes)
    with pytest.raises(DataFormatError, match="numbered 9,999,999,999 apart") as refused:
        sequence_of(["scan_0", "scan_9999999999"])
    assert "a sequence misses at most 100,000 numbers" in str(refused.value)
    assert sequence_of(["scan_0", "scan_100001"]).missing[-1] == 100_000
