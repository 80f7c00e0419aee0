"""A folder of consecutive frames as a sequence: frame numbers from file names, missing frames,
tracks over the committed boxes, key-frame interpolation offered as proposals, and KITTI tracking
labels in and out of the annotation store.

A frame's number is the last run of digits in its name (``000123`` -> 123, ``scan_07`` -> 7). A
number absent between two present ones is a *missing frame*: the tracker
(:func:`~playground.pointcloud.tracking.track_sequence`) takes it as a gap of that many frames,
and interpolation (:func:`~playground.pointcloud.tracking.fill_track`) places nothing there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

from playground.core.files import text_bytes
from playground.errors import DataFormatError
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.tracking import fill_track, from_kitti_tracking, to_kitti_tracking, track_sequence
from playground.pointcloud.viewer import with_source

DIGITS = re.compile(r"(\d+)(?!.*\d)")
MAX_MISSING = 100_000  # more missing frame numbers than this: not one sequence (e.g. timestamps as names)


@dataclasses.dataclass(frozen=True)
class Sequence:
    """Frame name -> number (in number order) and the numbers missing between the first and last."""

    numbers: dict[str, int]
    missing: tuple[int, ...]

    @property
    def names(self) -> dict[int, str]:
        return {number: name for name, number in self.numbers.items()}


def frame_number(name: str) -> int | None:
    """The last run of digits in ``name`` as a number; None when it has none."""
    found = DIGITS.search(name)
    return None if found is None else int(found.group(1))


def sequence_of(names: list[str]) -> Sequence:
    """``names`` numbered and put in number order; a :class:`DataFormatError` for a name without a
    number or two names with one number."""
    numbers: dict[str, int] = {}
    seen: dict[int, str] = {}
    for name in names:
        number = frame_number(name)
        if number is None:
            raise DataFormatError(
                f"frame {name!r} has no number in its name, so it has no place in a sequence"
            )
        if number in seen:
            raise DataFormatError(f"frames {seen[number]!r} and {name!r} both have number {number}")
        numbers[name], seen[number] = number, name
    ordered = dict(sorted(numbers.items(), key=lambda item: item[1]))
    present = set(seen)
    if present and max(present) - min(present) + 1 - len(present) > MAX_MISSING:
        raise DataFormatError(
            f"frames {seen[min(present)][:80]!r} and {seen[max(present)][:80]!r} are numbered "
            f"{max(present) - min(present):,} apart with {len(present):,} frames between them; a sequence "
            f"misses at most {MAX_MISSING:,} numbers (are these frames one sequence?)"
        )
    missing = tuple(n for n in range(min(present), max(present) + 1) if n not in present) if present else ()
    return Sequence(ordered, missing)


def describe_missing(missing: tuple[int, ...], limit: int = 8) -> str:
    """``"frame 3 is missing"`` / ``"frames 3, 7, 8 are missing"`` ("" when none)."""
    if not missing:
        return ""
    shown = ", ".join(str(n) for n in missing[:limit]) + (
        f" and {len(missing) - limit} more" if len(missing) > limit else ""
    )
    return f"frame {shown} is missing" if len(missing) == 1 else f"frames {shown} are missing"


# --------------------------------------------------------------------- tracks


def committed_boxes(
    annotations: CuboidAnnotations, dataset: str, sequence: Sequence
) -> dict[int, list[Cuboid]]:
    """Frame number -> the frame's committed boxes, for the frames with a commit."""
    stored = annotations.export(dataset)
    return {number: stored[name] for name, number in sequence.numbers.items() if stored.get(name)}


def tracks(annotations: CuboidAnnotations, dataset: str, sequence: Sequence) -> dict[int, list[Cuboid]]:
    """The committed boxes tracked in number order (:func:`track_sequence`; a missing or uncommitted
    frame is a gap), each with ``attributes["track_id"]``."""
    return track_sequence(committed_boxes(annotations, dataset, sequence))


def track_rows(tracked: dict[int, list[Cuboid]], sequence: Sequence) -> list[dict]:
    """One row per tracked box: frame, number, track id, label, centre x, y, z."""
    names = sequence.names
    return [
        {
            "frame": names.get(number, str(number)),
            "number": number,
            "track": int(box.attributes["track_id"]),
            "label": box.label,
            "x": box.center[0],
            "y": box.center[1],
            "z": box.center[2],
        }
        for number in sorted(tracked)
        for box in tracked[number]
    ]


def key_frames(tracked: dict[int, list[Cuboid]], track_id: int) -> dict[int, Cuboid]:
    """Frame number -> the track's committed box, on the frames where it has one."""
    return {
        number: box
        for number in sorted(tracked)
        for box in tracked[number]
        if box.attributes["track_id"] == track_id
    }


def interpolated(
    first: tuple[int, Cuboid], last: tuple[int, Cuboid], sequence: Sequence
) -> dict[str, Cuboid]:
    """Frame name -> the box interpolated between key frames ``first`` and ``last`` (``(number, box)``,
    one object on both, e.g. one track's boxes, or two tracks the tracker could not join across a
    long gap), on the frames strictly between them that exist; tagged ``source = "interpolated"``."""
    (start, box_a), (end, box_b) = first, last
    if end - start < 2:
        raise DataFormatError(f"key frames {start} and {end} have no frame between them to fill")
    if box_a.label != box_b.label:
        raise DataFormatError(f"cannot interpolate a {box_a.label} into a {box_b.label}")
    filled = fill_track({start: box_a, end: box_b})
    names = sequence.names
    return {
        names[n]: with_source([filled[n].with_(score=None)], "interpolated")[0]
        for n in range(start + 1, end)
        if n in names
    }


# --------------------------------------------------------------------- KITTI tracking


def export_tracking(tracked: dict[int, list[Cuboid]]) -> str:
    """The tracked boxes as KITTI tracking labels (frame = the frame's number)."""
    return to_kitti_tracking(tracked)


@dataclasses.dataclass(frozen=True)
class TrackingImport:
    """Parsed KITTI tracking labels against a sequence: boxes per frame name, numbers not in it."""

    frames: dict[str, list[Cuboid]]
    unknown: tuple[int, ...]
    digest: str

    @property
    def boxes(self) -> int:
        return sum(len(b) for b in self.frames.values())


def read_tracking(data: bytes, sequence: Sequence, where: str = "tracking labels") -> TrackingImport:
    """KITTI tracking labels (refused, with a :class:`DataFormatError`, when a track id is used twice in
    one frame or a line is malformed) matched to the sequence's frames by number."""
    where = str(where)[:120]
    parsed = from_kitti_tracking(text_bytes(data, where), where=where)
    names = sequence.names
    frames = {names[n]: boxes for n, boxes in sorted(parsed.items()) if n in names}
    unknown = tuple(sorted(n for n in parsed if n not in names))
    return TrackingImport(frames, unknown, hashlib.sha256(data).hexdigest()[:16])


def commit_tracking(
    annotations: CuboidAnnotations, dataset: str, labels: TrackingImport, annotator: str
) -> int:
    """Commit the imported boxes as each frame's current boxes (one revision per frame, keyed by the
    file's digest, so importing the same file again stores nothing twice); returns the frames."""
    for name, boxes in labels.frames.items():
        frame = hashlib.sha256(name.encode()).hexdigest()[:16]
        annotations.commit(dataset, name, boxes, annotator, f"kitti-tracking/{labels.digest}/{frame}")
    return len(labels.frames)
