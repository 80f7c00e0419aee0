"""The pointcloud page's Tracks tab: a folder of consecutive frames as a sequence.

The committed boxes of the folder's frames are tracked in frame-number order
(:mod:`playground.pointcloud.sequence`; a missing frame is a gap); the table shows each box's track
id. Two key-frame boxes of one object fill the frames between them with interpolated boxes, offered
in the viewer as pending proposals (accepted or rejected there, never committed here). The tracks
download as KITTI tracking labels, and such a file uploads back into the folder's frames.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from common import show_error

from playground.core.files import MAX_TEXT_BYTES
from playground.errors import PlaygroundError
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.sequence import (
    Sequence,
    commit_tracking,
    describe_missing,
    export_tracking,
    interpolated,
    read_tracking,
    sequence_of,
    track_rows,
    tracks,
)
from playground.pointcloud.viewer import FrameRef, frame_name, pending_proposals

OFFERED = "cub_interpolated"  # session state: {"dataset": ..., "boxes": {frame: box dict}}


def tracks_tab(
    annotations: CuboidAnnotations, ref: FrameRef, paths: list[Path] | None, annotator: str
) -> None:
    """The tracks of the folder's committed boxes, interpolation, and KITTI tracking out and in."""
    if paths is None:
        st.caption("Tracks follow objects over a folder of consecutive frames: choose **Folder of frames**.")
        return
    try:
        sequence = sequence_of([frame_name(p) for p in paths])
    except PlaygroundError as err:
        show_error(err)
        return
    if sequence.missing:
        st.caption(
            f":orange[In this folder {describe_missing(sequence.missing)}: the tracker treats it as a gap.]"
        )
    tracked = tracks(annotations, ref.dataset, sequence)
    rows = track_rows(tracked, sequence)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="cub_tracks")
        interpolation(rows, tracked, sequence, ref.dataset)
    else:
        st.caption("No committed boxes in this folder yet: commit some frames to see their tracks.")
    kitti_tracking(annotations, ref.dataset, tracked, sequence, annotator)


def _row_label(row: dict) -> str:
    return f"{row['frame']} · track {row['track']} · {row['label']} at ({row['x']:.1f}, {row['y']:.1f})"


def interpolation(rows: list[dict], tracked: dict, sequence: Sequence, dataset: str) -> None:
    """Pick two key-frame boxes of one object; the frames between get interpolated proposals."""
    st.markdown("**Interpolate between key frames**")
    cells = st.columns([2, 2, 1], vertical_alignment="bottom")
    first = cells[0].selectbox(
        "From", range(len(rows)), format_func=lambda i: _row_label(rows[i]), key="cub_from"
    )
    a = rows[first]
    later = [j for j, r in enumerate(rows) if r["label"] == a["label"] and r["number"] - a["number"] >= 2]
    same = [j for j in later if rows[j]["track"] == a["track"]]
    last = cells[1].selectbox(
        "To",
        later,
        index=later.index(same[0]) if same else 0 if later else None,
        format_func=lambda j: _row_label(rows[j]),
        key="cub_to",
        help="A later box of the same class, at least two frames on (its own track, or another one "
        "the tracker could not join across a long gap)",
    )
    cells[2].button(
        "Offer interpolated boxes",
        key="cub_interpolate",
        disabled=last is None,
        on_click=_offer,
        args=(_box(tracked, a), _box(tracked, rows[last]) if last is not None else None, sequence, dataset),
    )


def _box(tracked: dict[int, list[Cuboid]], row: dict) -> tuple[int, Cuboid]:
    found = [b for b in tracked[row["number"]] if b.attributes["track_id"] == row["track"]]
    return row["number"], found[0]


def _offer(first, last, sequence: Sequence, dataset: str) -> None:
    try:
        boxes = interpolated(first, last, sequence)
    except PlaygroundError as err:
        st.session_state.cub_error = err
        return
    st.session_state[OFFERED] = {"dataset": dataset, "boxes": {k: b.to_dict() for k, b in boxes.items()}}
    where = ", ".join(boxes) or "no frame (the frames between are missing)"
    st.session_state.cub_flash = f"Interpolated boxes offered on {where}: accept or reject them in the viewer"


def interpolated_pending(ref: FrameRef, committed: list[Cuboid]) -> list[tuple[int, Cuboid]]:
    """The interpolated proposal on this frame that no committed box covers yet."""
    offered = st.session_state.get(OFFERED) or {}
    record = (offered.get("boxes") or {}).get(ref.frame) if offered.get("dataset") == ref.dataset else None
    return [] if record is None else pending_proposals([Cuboid.from_dict(record)], committed)


def kitti_tracking(
    annotations: CuboidAnnotations, dataset: str, tracked: dict, sequence: Sequence, annotator: str
) -> None:
    """Download the tracks as KITTI tracking labels; upload such a file into the folder's frames."""
    st.markdown("**KITTI tracking labels**")
    cells = st.columns(2)
    cells[0].download_button(
        "Export KITTI tracking",
        export_tracking(tracked) if tracked else "",
        file_name=f"{dataset}_tracking.txt",
        mime="text/plain",
        icon=":material/download:",
        key="cub_kitti_tracking",
        disabled=not tracked,
    )
    upload = cells[1].file_uploader(
        "Import KITTI tracking",
        type=["txt"],
        key="cub_kitti_upload",
        max_upload_size=MAX_TEXT_BYTES // 2**20,
        help=f"frame track_id type ... per line; at most {MAX_TEXT_BYTES // 2**20} MB",
    )
    if upload is None:
        return
    try:
        labels = read_tracking(upload.getvalue(), sequence, where=upload.name)
    except PlaygroundError as err:
        show_error(err)
        return
    unknown = ", ".join(map(str, labels.unknown[:10])) + (
        f" and {len(labels.unknown) - 10} more" if len(labels.unknown) > 10 else ""
    )
    left_out = f"; frames {unknown} are not in this folder" if labels.unknown else ""
    st.caption(
        f"{labels.boxes} boxes on {len(labels.frames)} frames{left_out}. Importing replaces their boxes."
    )
    st.button(
        "Commit the imported boxes",
        key="cub_kitti_commit",
        disabled=not annotator or not labels.frames,
        on_click=_import,
        args=(annotations, dataset, labels, annotator),
    )


def _import(annotations: CuboidAnnotations, dataset: str, labels, annotator: str) -> None:
    try:
        count = commit_tracking(annotations, dataset, labels, annotator)
    except PlaygroundError as err:
        st.session_state.cub_error = err
        return
    st.session_state.cub_flash = f"Imported the boxes of {count} frames"
