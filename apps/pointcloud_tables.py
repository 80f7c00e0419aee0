"""The pointcloud page's tables: a frame's committed boxes and open proposals (with where each
proposal comes from, as the viewer's box list says it), who committed what, and the downloads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from playground.errors import StoreError
from playground.pointcloud import points_in_box
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.export import EXPORT_FORMATS, export_file
from playground.pointcloud.viewer import FrameRef

EXPORT_NAMES = {
    "kitti": "KITTI label_2 (zip)",
    "nuscenes": "nuScenes-style JSON",
    "datumaro": "Datumaro JSON",
}
HISTORY_ROWS = 20


def boxes_table(boxes, points: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "#": k + 1,
                "label": b.label,
                "x": b.center[0],
                "y": b.center[1],
                "z": b.center[2],
                "l": b.size[0],
                "w": b.size[1],
                "h": b.size[2],
                "yaw °": np.degrees(b.yaw),
                "points inside": int(points_in_box(points, b).sum()),
            }
            for k, b in enumerate(boxes)
        ]
    )


def proposal_origin(box) -> str:
    """As the viewer's box list says it: "learned 0.82", "geometric" or "interpolated"."""
    source = box.attributes.get("source", "geometric")
    return f"learned {box.score:.2f}" if source == "learned" else source


def show_proposals(pending, points: np.ndarray) -> None:
    if not pending:
        st.caption("No open proposals on this frame.")
        return
    table = boxes_table([box for _, box in pending], points).drop(columns="#")
    table.insert(0, "from", [proposal_origin(box) for _, box in pending])
    st.dataframe(table, hide_index=True, width="stretch", key="cub_proposal_table")


def show_history(annotations: CuboidAnnotations, ref: FrameRef) -> None:
    try:
        revisions = annotations.history(ref.dataset, ref.frame, HISTORY_ROWS)
    except StoreError:
        revisions = []
    rows = [
        {
            "when (UTC)": pd.Timestamp(r.created_at, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S"),
            "annotator": r.annotator,
            "revision": r.id,
            "boxes": len(r.cuboids),
            "labels": ", ".join(f"{n} {label}" for label, n in _label_counts(r.cuboids).items()),
            "undone": "undone" if r.undone else "",
        }
        for r in revisions
    ]
    if rows:
        st.table(pd.DataFrame(rows), hide_index=True)
    else:
        st.caption("No commits on this frame yet.")


def _label_counts(boxes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for box in boxes:
        counts[box.label] = counts.get(box.label, 0) + 1
    return counts


def show_export(annotations: CuboidAnnotations, ref: FrameRef) -> None:
    frames = annotations.export(ref.dataset)
    st.caption(
        f"The current boxes of every frame of dataset **{ref.dataset}** ({len(frames)} frames with commits), "
        "in the LiDAR frame; KITTI with an identity calibration."
    )
    cells = st.columns(len(EXPORT_FORMATS))
    for cell, fmt in zip(cells, EXPORT_FORMATS):
        name, data, mime = export_file(frames, fmt, ref.dataset)
        cell.download_button(
            EXPORT_NAMES[fmt],
            data,
            file_name=name,
            mime=mime,
            icon=":material/download:",
            key=f"cub_export_{fmt}",
            disabled=not frames,
        )
