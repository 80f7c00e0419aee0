"""The 3D cuboid viewer: a bidirectional Streamlit custom component (components v1) on three.js.

The frontend lives in ``frontend/src`` and is built into ``frontend/build`` (committed, so running
the app needs no node; ``scripts/build_viewer.sh`` rebuilds it). It shows a free perspective view
(orbit, pan, zoom; Q/E move down/up) over the top, side and front orthographic views of the
selected box, a side panel with numeric fields and a box list, and a toolbar.

**How the points travel: once per frame, as bytes.** The frame's points go to the browser as one
``bytes`` argument (little-endian float32 x, y, z, intensity; see
:func:`playground.pointcloud.viewer.points_buffer`), which Streamlit hands to the iframe as a
``Uint8Array`` and the viewer reads as a ``Float32Array`` without parsing. They are sent only on
the first run that shows a frame in this session: ``st.session_state["<key>__points_sent"]``
lists the last ``CACHED_FRAMES`` frames sent, which the frontend keeps by frame key in the same
order, and every other rerun sends ``points=None`` (going back to a frame it still holds sends
nothing either). If the frontend lacks the points of the frame it is told to show (the iframe was
rebuilt, e.g. after visiting another page), it asks with ``setComponentValue({"type":
"need_points"})``; the ``on_change`` callback takes that frame off the list and the rerun it
triggers sends the points again. Everything else (boxes, proposals, the ground plane) is small JSON.

**What comes back, and when.** The viewer sets its value only for
``{"type": "commit", "request_id", "frame_key", "base_revision", "boxes"}`` (Ctrl+S or Commit),
``{"type": "frame", "step": +1 | -1}`` (PageDown/PageUp, "." / ",") and ``need_points``; never per
mouse move. ``on_event(value)`` receives commits and frame steps in the callback, before the
script runs, so the answer to a commit (``commit_result``) reaches the viewer in the same rerun.

**Keyboard** (with the viewer focused; click into it first): Tab / Shift+Tab or ] / [ next /
previous box; A accept the selected proposal (with none selected, select the next one); X reject
it; Delete delete the box (or reject the proposal); N new box, then click on the ground; F focus
the camera on the selection; Q / E camera down / up; C colour by height / intensity; PageDown /
"." next frame, PageUp / "," previous; Ctrl+S commit; R reload the frame's boxes from the database
(dropping uncommitted edits; offered when someone else committed the frame meanwhile, which keeps
the edits but makes a commit a conflict); Esc cancel / deselect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.proposals import DEFAULT_SIZES
from playground.pointcloud.viewer import box_records, points_buffer, proposal_records, viewer_labels

BUILD_DIR = Path(__file__).resolve().parent / "frontend" / "build"
CACHED_FRAMES = 3  # the frontend keeps this many frames' points (CACHE_FRAMES in frontend/src/app.js)
SHORTCUTS = (
    "**Tab** / **Shift+Tab** (or **]** / **[**) next / previous box · **A** accept proposal · "
    "**X** reject it · **Delete** delete box · **N** new box, then click on the ground · "
    "**F** focus · **Q** / **E** camera down / up · **C** colour by height or intensity · "
    "**PageDown** / **.** next frame · **PageUp** / **,** previous · **Ctrl+S** commit · "
    "**R** reload the frame's boxes from the database · **Esc** cancel"
)

_component = components.declare_component("cuboid_viewer", path=str(BUILD_DIR))


@dataclasses.dataclass(frozen=True)
class ViewerFrame:
    """One frame for the viewer: a unique ``key``, a ``title`` to show and its points."""

    key: str
    title: str
    points: np.ndarray
    intensity: np.ndarray | None = None


def _sent_key(key: str) -> str:
    return f"{key}__points_sent"


def _points_to_send(frame: ViewerFrame, key: str) -> bytes | None:
    """The points buffer when the browser does not hold this frame's points, else None."""
    sent = st.session_state.setdefault(_sent_key(key), [])
    if frame.key in sent:
        return None
    sent.append(frame.key)
    del sent[:-CACHED_FRAMES]
    return points_buffer(frame.points, frame.intensity)


def _changed(key: str, on_event: Callable[[dict], None] | None) -> None:
    """The viewer set a new value: resend points it lacks, hand commits and frame steps on."""
    value = st.session_state.get(key)
    if not isinstance(value, dict):
        return
    if value.get("type") == "need_points":
        sent = st.session_state.get(_sent_key(key), [])
        st.session_state[_sent_key(key)] = [k for k in sent if k != value.get("frame_key")]
    elif on_event is not None:
        on_event(value)


def cuboid_viewer(
    frame: ViewerFrame,
    boxes: list[Cuboid],
    proposals: list[tuple[int, Cuboid]] = (),
    *,
    revision: int = 0,
    ground=(0.0, 0.0, 1.0, 0.0),
    commit_result: dict | None = None,
    on_event: Callable[[dict], None] | None = None,
    key: str = "cuboid_viewer",
    height: int = 700,
) -> dict | None:
    """Draw the viewer for ``frame`` with its committed ``boxes`` (at ``revision``) and ``proposals``
    (``(index, cuboid)`` pairs from :func:`playground.pointcloud.viewer.pending_proposals`).

    ``ground``: the plane ``(a, b, c, d)`` new boxes stand on; ``commit_result``: the answer to the
    viewer's last commit (see :func:`playground.pointcloud.viewer.commit_from_viewer`). Returns the
    viewer's last value (see the module docstring); act on it in ``on_event``.
    """
    return _component(
        frame={"key": frame.key, "title": frame.title, "count": len(frame.points)},
        points=_points_to_send(frame, key),
        boxes=box_records(boxes, "b"),
        proposals=proposal_records(list(proposals)),
        revision=int(revision or 0),
        ground=[float(v) for v in ground],
        default_sizes={k: list(v) for k, v in DEFAULT_SIZES.items()},
        labels=viewer_labels(boxes),
        commit_result=commit_result,
        height=int(height),
        key=key,
        default=None,
        on_change=partial(_changed, key, on_event),
    )
