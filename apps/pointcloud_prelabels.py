"""The pointcloud page's learned pre-labels and uncertain-frames-first panel.

A detector saved by a pointcloud run (``detector.safetensors``, the newest by default) boxes the
frame on screen; its boxes at or above the chosen confidence join the geometric proposals as
pending proposals tagged ``learned`` (:mod:`playground.pointcloud.prelabels`). For a folder of
frames, the detector scores every frame's uncertainty into the store's queue
(:mod:`playground.pointcloud.frame_queue`): the picker can list the most uncertain frame first,
"Next most uncertain frame" leases one to the annotator, and a commit closes its item.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st
from common import show_error

from playground.core.progress import ProgressEvent
from playground.errors import PlaygroundError
from playground.pointcloud import read_cloud
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.detector import PillarNet, load_detector
from playground.pointcloud.frame_queue import enqueue_frames, mark_committed, next_frame, queued_frames
from playground.pointcloud.learned import DetectorConfig
from playground.pointcloud.prelabels import (
    FLOOR_SCORE,
    detector_files,
    intensity_note,
    learned_prelabels,
    score_frames,
)
from playground.pointcloud.viewer import FrameRef, frame_name, pending_proposals

NONE = "none"
DEFAULT_SCORE = DetectorConfig.prelabel_score


@dataclasses.dataclass(frozen=True)
class DetectorChoice:
    """The detector picked on the page (its file and modification time) and the least confidence shown."""

    path: Path
    mtime: float
    min_confidence: float
    others: tuple[Path, ...] = ()  # the other detectors found, for an ensemble

    @property
    def key(self) -> str:
        return f"{self.path.resolve()}@{self.mtime}"


@st.cache_resource(max_entries=4, show_spinner="Loading the detector...")
def cached_detector(path: str, mtime: float) -> PillarNet:
    """The detector at ``path``, loaded once per file version (``mtime``) and shared by sessions."""
    return load_detector(path)


@st.cache_data(max_entries=32, show_spinner="Detecting objects...")
def cached_detections(cache_key: str, detector_key: str, _model: PillarNet, _cloud) -> list[Cuboid]:
    """The detector's boxes on one frame down to ``FLOOR_SCORE``, computed once per frame and detector."""
    return learned_prelabels(_model, _cloud, FLOOR_SCORE)


def detector_controls(runs_root: str) -> DetectorChoice | None:
    """Pick a detector (newest first, or none) and the least confidence of its boxes shown."""
    files = detector_files(runs_root)
    cells = st.columns([2, 1], vertical_alignment="bottom")
    options = [NONE, *(str(p) for p in files)]
    chosen = cells[0].selectbox(
        "Learned pre-labels",
        options,
        index=1 if files else 0,
        key="cub_detector",
        format_func=lambda o: "none" if o == NONE else f"detector of run {Path(o).parent.name}",
        help="A detector saved by a pointcloud run (detector.safetensors); its boxes join the proposals",
    )
    least = cells[1].slider(
        "Least confidence", 0.05, 0.95, DEFAULT_SCORE, 0.05, key="cub_min_confidence", disabled=chosen == NONE
    )
    if chosen == NONE or not Path(chosen).is_file():
        return None
    others = tuple(p for p in files if str(p) != chosen)
    return DetectorChoice(Path(chosen), Path(chosen).stat().st_mtime, float(least), others)


def load_model(path: Path) -> PillarNet | None:
    """The detector at ``path``, or None after an error naming the file and the problem."""
    try:
        return cached_detector(str(path), path.stat().st_mtime)
    except (PlaygroundError, OSError) as err:
        st.error(f"Cannot use the detector {path}: {err}", icon=":material/error:")
        return None


def learned_pending(
    frame, committed: list[Cuboid], choice: DetectorChoice | None
) -> list[tuple[int, Cuboid]]:
    """The detector's open boxes on ``frame`` at or above the chosen confidence, as ``(index, box)``
    (the index into all its boxes on the frame, so an id survives moving the slider)."""
    model = None if choice is None else load_model(choice.path)
    if model is None:
        return []
    note = intensity_note(model, frame.intensity)
    if note:
        st.caption(f":orange[{note}]")
    boxes = cached_detections(frame.cache_key, choice.key, model, frame)
    return [(k, b) for k, b in pending_proposals(boxes, committed) if b.score >= choice.min_confidence]


# --------------------------------------------------------------------- uncertain frames first


def order_paths(annotations: CuboidAnnotations, dataset: str, paths: list[Path], uncertain_first: bool):
    """``paths`` most uncertain first when asked (unscored frames after, in name order), and a label
    per path for the frame picker (its uncertainty and who holds it)."""
    queued = {q.frame: q for q in queued_frames(annotations.store, dataset)}
    if uncertain_first and queued:
        paths = sorted(
            paths, key=lambda p: -queued[frame_name(p)].uncertainty if frame_name(p) in queued else 1
        )
    return paths, {str(p): _picker_label(p, queued.get(frame_name(p))) for p in paths}


def _picker_label(path: Path, queued) -> str:
    """``000003.npy · U 0.62 · with bob`` (``done`` once committed; the name alone when unscored)."""
    if queued is None:
        return path.name
    held = " · done" if queued.status == "done" else f" · with {queued.leased_by}" if queued.leased_by else ""
    return f"{path.name} · U {queued.uncertainty:.2f}{held}"


def queue_controls(
    annotations: CuboidAnnotations, dataset: str, paths: list[Path], drop: bool, choice, annotator: str
) -> None:
    """Score the folder into its queue (with the chosen detector, and any others as an ensemble), and
    lease the next most uncertain frame."""
    cells = st.columns([1, 2, 1, 1], vertical_alignment="bottom")
    cells[0].toggle("Most uncertain first", key="cub_uncertain_first", on_change=_keep_frame)
    others = cells[1].multiselect(
        "Ensemble (optional)",
        choice.others if choice else [],
        key="cub_ensemble",
        format_func=lambda p: f"detector of run {p.parent.name}",
        help="Other detectors whose disagreement with the chosen one also counts as uncertainty",
    )
    score = cells[2].button("Score frames by uncertainty", key="cub_score", disabled=choice is None)
    cells[3].button(
        "Next most uncertain frame",
        key="cub_next_uncertain",
        on_click=_lease_next,
        args=(annotations, dataset, annotator),
        disabled=not annotator,
        help="Takes the most uncertain frame no one else holds; committing it closes it",
    )
    if score:
        with st.container():  # one element whatever it holds, so the viewer below keeps its place
            _score(annotations, dataset, paths, drop, [choice.path, *others])


def _keep_frame() -> None:
    if "cub_frame_name" in st.session_state:
        st.session_state.cub_frame_goto = st.session_state.cub_frame_name


def _lease_next(annotations: CuboidAnnotations, dataset: str, annotator: str) -> None:
    try:
        frame = next_frame(annotations.store, dataset, annotator)
    except PlaygroundError as err:
        st.session_state.cub_error = err
        return
    if frame is None:
        st.session_state.cub_flash = (
            "No frame left to take: score the folder, or every frame is done or taken."
        )
    else:
        st.session_state.cub_frame_goto = frame


def _score(annotations: CuboidAnnotations, dataset: str, paths: list[Path], drop: bool, detectors) -> None:
    models = [load_model(path) for path in detectors]
    if any(model is None for model in models):
        return
    bar = st.progress(0.0, text="Scoring frames...")

    def progress(event: ProgressEvent) -> None:
        bar.progress(event.fraction, text=f"Scoring frames: {event.step} of {event.total}")

    clouds = {frame_name(p): (lambda p=p: read_cloud(p, drop_invalid=drop)) for p in paths}
    try:
        scores, skipped = score_frames(clouds, models, progress=progress)
        added, moved = enqueue_frames(
            annotations.store, dataset, scores, model=detectors[0].parent.name[:128]
        )
    except PlaygroundError as err:
        show_error(err)
        return
    bar.empty()
    st.success(f"Scored {len(scores)} frames: {added} new in the queue, {moved} re-ordered.")
    for name, why in skipped.items():
        st.warning(f"Frame {name} was not scored: {why}")


def close_queue_item(annotations: CuboidAnnotations, ref: FrameRef, annotator: str, value: dict) -> None:
    """After a commit: mark the frame's queue item done (a message when someone else holds it)."""
    try:
        boxes = annotations.current(ref.dataset, ref.frame)
        mark_committed(annotations.store, ref.dataset, ref.frame, boxes, annotator, str(value["request_id"]))
    except PlaygroundError as err:
        st.session_state.cub_error = PlaygroundError(f"Committed, but the frame stays in the queue: {err}")
