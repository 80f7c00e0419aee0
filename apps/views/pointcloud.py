"""3D cuboid annotation: label objects in point clouds with 3D boxes, in a three.js viewer.

A frame comes from a synthetic LiDAR scene, an uploaded file or a folder of files. The library
proposes cuboids (``playground.pointcloud.propose``); the annotator accepts, adjusts or rejects
them and places new ones in the viewer (``apps/components/cuboid_viewer``), then commits. A commit
stores the frame's boxes in the annotation database as one revision, under a request id made in
the viewer, so a replayed commit stores nothing twice; undo, the history and the KITTI /
nuScenes-style / Datumaro downloads work on those revisions.

A trained detector's boxes join the proposals as learned pre-labels; a folder's frames can be
scored and taken most uncertain first (``apps/pointcloud_prelabels.py``), and its committed boxes
tracked over the sequence, interpolated between key frames and exchanged as KITTI tracking labels
(``apps/pointcloud_sequence.py``). The tables below the viewer are in ``apps/pointcloud_tables.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import streamlit as st
from common import show_error, sidebar_settings
from components.cuboid_viewer import SHORTCUTS, ViewerFrame, cuboid_viewer
from login import current_user
from pointcloud_prelabels import (
    close_queue_item,
    detector_controls,
    learned_pending,
    order_paths,
    queue_controls,
)
from pointcloud_sequence import interpolated_pending, tracks_tab
from pointcloud_tables import boxes_table, show_export, show_history, show_proposals

from playground.errors import PlaygroundError
from playground.pointcloud import SceneSpec, make_scene, propose, read_cloud, read_cloud_bytes
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.proposals import ground_plane
from playground.pointcloud.viewer import (
    FrameRef,
    commit_from_viewer,
    frame_name,
    list_frames,
    pending_proposals,
    synthetic_frame_name,
    with_source,
)
from playground.store import Store, default_url

MAX_UPLOAD_MB = 64
CLOUD_TYPES = ["pcd", "ply", "xyz", "bin", "npy"]
SOURCES = ("Synthetic scene", "Upload a file", "Folder of frames")
POINT_COUNTS = [20_000, 50_000, 100_000, 200_000]
VIEWER_KEY = "cub_viewer"


@dataclasses.dataclass(frozen=True)
class Frame:
    """The frame on screen: where its annotations live, a title, and its points."""

    ref: FrameRef
    title: str
    points: np.ndarray
    intensity: np.ndarray | None
    cache_key: str  # changes whenever the points could
    paths: list[Path] | None = None  # a folder's frames, in the picker's order


# --------------------------------------------------------------------- cached library calls


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_annotations(url: str) -> CuboidAnnotations:
    """One annotation store per database URL, shared by every session."""
    return CuboidAnnotations(Store(url))


@st.cache_data(max_entries=8, show_spinner="Generating the scene...")
def synthetic_cloud(
    seed: int, target_points: int, cars: int, pedestrians: int
) -> tuple[np.ndarray, np.ndarray]:
    scene = make_scene(SceneSpec(seed=seed, target_points=target_points, cars=cars, pedestrians=pedestrians))
    return scene.points, scene.intensity


@st.cache_data(max_entries=16, show_spinner="Reading the point cloud...")
def file_cloud(path: str, modified: float, drop_invalid: bool) -> tuple[np.ndarray, np.ndarray | None]:
    cloud = read_cloud(path, drop_invalid=drop_invalid)
    return cloud.points, cloud.intensity


@st.cache_data(max_entries=8, show_spinner="Reading the upload...")
def upload_cloud(
    file_id: str, name: str, drop_invalid: bool, _data: bytes
) -> tuple[np.ndarray, np.ndarray | None]:
    """An upload's points, cached by its upload id (so the bytes are not hashed on every rerun)."""
    cloud = read_cloud_bytes(_data, name, drop_invalid=drop_invalid, max_bytes=MAX_UPLOAD_MB * 2**20)
    return cloud.points, cloud.intensity


@st.cache_data(max_entries=16, show_spinner="Proposing cuboids...")
def proposals_and_ground(cache_key: str, _points: np.ndarray) -> tuple[list, list[float], str]:
    """The frame's cuboid proposals, its ground plane and why there are no proposals ("" when there
    are); computed once per frame, keyed by ``cache_key``."""
    ground = [float(v) for v in ground_plane(_points)]
    try:
        return propose(_points), ground, ""
    except PlaygroundError as err:
        return [], ground, f"No proposals for this frame: {err}"


# --------------------------------------------------------------------- frame sources


def points_label(count: int) -> str:
    return f"{count // 1000}k"


def synthetic_frame() -> Frame:
    cells = st.columns(4)
    bound = {"bind": "query-params"}  # a scene has a link: /pointcloud?cub_seed=3&cub_points=200k
    seed = cells[0].number_input(
        "Scene seed", min_value=0, max_value=2**31 - 1, step=1, key="cub_seed", **bound
    )
    count = cells[1].selectbox(
        "Points",
        POINT_COUNTS,
        index=POINT_COUNTS.index(100_000),
        key="cub_points",
        format_func=points_label,
        **bound,
    )
    cars = cells[2].number_input("Cars", min_value=0, max_value=40, step=1, key="cub_cars", **bound)
    walkers = cells[3].number_input(
        "Pedestrians", min_value=0, max_value=40, step=1, key="cub_pedestrians", **bound
    )
    spec = SceneSpec(seed=int(seed), target_points=int(count), cars=int(cars), pedestrians=int(walkers))
    points, intensity = synthetic_cloud(spec.seed, spec.target_points, spec.cars, spec.pedestrians)
    name = synthetic_frame_name(spec)
    return Frame(
        FrameRef("synthetic", name),
        f"synthetic · seed {spec.seed} · {len(points):,} points",
        points,
        intensity,
        f"synthetic/{name}",
    )


def uploaded_frame() -> Frame | None:
    upload = st.file_uploader(
        "A point-cloud file",
        type=CLOUD_TYPES,
        key="cub_upload",
        max_upload_size=MAX_UPLOAD_MB,
        help=f".pcd, .ply, .xyz, KITTI .bin (x, y, z, reflectance) or .npy ((N, 3) or (N, 4)); "
        f"at most {MAX_UPLOAD_MB} MB",
    )
    drop = st.checkbox("Drop points with NaN or inf values", key="cub_drop_upload")
    if upload is None:
        st.info("Upload a point cloud to annotate it.", icon=":material/upload_file:")
        return None
    points, intensity = upload_cloud(upload.file_id, upload.name, drop, upload.getvalue())
    name = frame_name(upload.name)
    return Frame(
        FrameRef("uploads", name),
        f"{upload.name} · {len(points):,} points",
        points,
        intensity,
        f"upload/{upload.file_id}/{drop}",
    )


def folder_frame(annotations: CuboidAnnotations, choice, annotator: str) -> Frame | None:
    folder = st.text_input(
        "Folder",
        key="cub_folder",
        placeholder="/path/to/velodyne",
        help="A folder of point-cloud files, one frame each, in name order",
    )
    if not folder.strip():
        st.info(
            "Type a folder of point-cloud files (.pcd .ply .xyz .bin .npy).", icon=":material/folder_open:"
        )
        return None
    paths = list_frames(folder.strip())
    dataset = frame_name(Path(folder.strip()).expanduser().resolve().name or "frames")
    drop = bool(st.session_state.get("cub_drop_folder", False))
    queue_controls(annotations, dataset, paths, drop, choice, annotator)
    paths, labels = order_paths(
        annotations, dataset, paths, st.session_state.get("cub_uncertain_first", False)
    )
    names = [frame_name(p) for p in paths]
    cells = st.columns([3, 1])
    index = cells[0].selectbox(
        "Frame",
        range(len(paths)),
        index=frame_index(names),
        format_func=lambda i: labels[str(paths[i])],
        key="cub_frame_pick",
    )
    st.session_state.cub_frame_index = index
    drop = cells[1].checkbox("Drop NaN/inf points", key="cub_drop_folder")
    path = paths[index]
    st.session_state.cub_frame_name = names[index]
    points, intensity = file_cloud(str(path), path.stat().st_mtime, drop)
    title = f"{path.name} ({index + 1} of {len(paths)}) · {len(points):,} points"
    version = f"file/{path.resolve()}/{path.stat().st_mtime}/{drop}"
    return Frame(FrameRef(dataset, names[index]), title, points, intensity, version, paths)


def frame_index(names: list[str]) -> int:
    """Where the frame picker stands: on the frame asked for by name ("next most uncertain frame", or
    the frame on screen when the order changes), else where it was."""
    goto = st.session_state.pop("cub_frame_goto", None)
    if goto in names:
        st.session_state.cub_frame_index = names.index(goto)
        st.session_state.pop("cub_frame_pick", None)
    return min(int(st.session_state.get("cub_frame_index", 0)), len(names) - 1)


def step_frame(step: int) -> None:
    """Next or previous frame (the viewer's PageDown / PageUp): the next seed, or the next file."""
    source = st.session_state.get("cub_source", SOURCES[0])
    if source == SOURCES[0]:
        st.session_state.cub_seed = max(0, int(st.session_state.get("cub_seed", 0)) + step)
    elif source == SOURCES[2]:
        st.session_state.cub_frame_index = max(0, int(st.session_state.get("cub_frame_index", 0)) + step)
        st.session_state.pop("cub_frame_pick", None)
    else:
        st.session_state.cub_flash = "An upload is a single frame: upload another file to move on."


# --------------------------------------------------------------------- actions


def viewer_event_handler(annotations: CuboidAnnotations, ref: FrameRef, annotator: str):
    """What to do when the viewer commits or steps frames (runs before the next script run)."""

    def handle(value: dict) -> None:
        if value.get("type") == "commit":
            result = commit_from_viewer(annotations, ref, annotator, value)
            st.session_state.cub_commit_result = result
            if result["ok"]:
                close_queue_item(annotations, ref, annotator, value)
        elif value.get("type") == "frame":
            step = value.get("step", 1)  # from the browser: anything but a negative number steps forward
            step_frame(-1 if isinstance(step, (int, float)) and step < 0 else 1)

    return handle


def undo(annotations: CuboidAnnotations, ref: FrameRef, annotator: str) -> None:
    try:
        undone = annotations.undo_last(ref.dataset, ref.frame, annotator)
    except PlaygroundError as err:
        st.session_state.cub_error = err
        return
    st.session_state.cub_flash = (
        "Nothing to undo on this frame"
        if undone is None
        else f"Undone revision {undone.id} ({len(undone.cuboids)} boxes)"
    )


def annotator_name() -> str:
    """The signed-in account's name once accounts exist (no name to type); otherwise a free name."""
    user = current_user()
    if user is not None:
        st.caption(f"Committing as **{user.name}** (signed in)")
        return user.name
    name = st.text_input(
        "Your name",
        key="annotator",
        bind="query-params",
        persist_state="session",
        max_chars=64,
        placeholder="who is annotating",
        help="Commits are recorded under this name",
    )
    return (name or "").strip()


def show_messages() -> None:
    if "cub_error" in st.session_state:
        show_error(st.session_state.pop("cub_error"))
    if "cub_flash" in st.session_state:
        st.toast(st.session_state.pop("cub_flash"), icon=":material/check_circle:")


# --------------------------------------------------------------------- drawing


def show_viewer(annotations: CuboidAnnotations, frame: Frame, annotator: str, with_proposals: bool, choice):
    """The viewer with the frame's committed boxes and open proposals (geometric, learned with the
    detector ``choice``, interpolated); returns the committed boxes and the open proposals."""
    head = annotations.head(frame.ref.dataset, frame.ref.frame)
    committed = list(head.cuboids) if head else []
    proposals, ground, why_none = proposals_and_ground(frame.cache_key, frame.points)
    pending = interpolated_pending(frame.ref, committed)
    with (
        st.container()
    ):  # one element whatever it holds (notes, a detector's error), so the viewer keeps its place
        if with_proposals:
            geometric = pending_proposals(with_source(proposals, "geometric"), committed)
            pending = [*geometric, *learned_pending(frame, committed, choice), *pending]
        if why_none and with_proposals:
            st.caption(why_none)
    cuboid_viewer(
        ViewerFrame(frame.ref.key, frame.title, frame.points, frame.intensity),
        committed,
        pending,
        revision=head.id if head else 0,
        ground=ground,
        commit_result=st.session_state.get("cub_commit_result"),
        on_event=viewer_event_handler(annotations, frame.ref, annotator),
        key=VIEWER_KEY,
        height=720,
    )
    return committed, pending


def load_frame(source: str, annotations: CuboidAnnotations, choice, annotator: str) -> Frame | None:
    if source == SOURCES[2]:
        return folder_frame(annotations, choice, annotator)
    return synthetic_frame() if source == SOURCES[0] else uploaded_frame()


def page() -> None:
    st.title("3D cuboid annotation")
    st.caption(
        "Accept or adjust the proposed cuboids, place new ones, then commit. Click into the viewer for the "
        "keys: " + SHORTCUTS
    )
    annotations = cached_annotations(default_url(sidebar_settings().runs_root))
    top = st.columns([1, 2, 1], vertical_alignment="bottom")
    with top[0]:
        annotator = annotator_name()
    source = top[1].radio("Source", SOURCES, key="cub_source", horizontal=True)
    with_proposals = top[2].toggle(
        "Proposals", value=True, key="cub_proposals", help="Show the automatic proposals"
    )
    with st.container():  # one element whatever it holds, so the viewer below keeps its place
        if not annotator:
            st.caption(":orange[Type your name to commit; you can look around and edit without it.]")
        show_messages()
    choice = detector_controls(sidebar_settings().runs_root)
    try:
        frame = load_frame(source, annotations, choice, annotator)
    except PlaygroundError as err:
        show_error(err)
        return
    if frame is None:
        return
    committed, pending = show_viewer(annotations, frame, annotator, with_proposals, choice)
    st.button(
        "Undo my last commit on this frame",
        icon=":material/undo:",
        key="cub_undo",
        on_click=undo,
        args=(annotations, frame.ref, annotator or "?"),
        disabled=not annotator,
    )
    show_tabs(annotations, frame, committed, pending, annotator)


def show_tabs(annotations: CuboidAnnotations, frame: Frame, committed: list, pending: list, annotator: str):
    tabs = st.tabs(["Committed boxes", "Proposals", "Who did what", "Export", "Tracks"])
    with tabs[0]:
        if committed:
            st.dataframe(boxes_table(committed, frame.points), hide_index=True, width="stretch")
        else:
            st.caption("Nothing committed on this frame yet.")
    with tabs[1]:
        show_proposals(pending, frame.points)
    with tabs[2]:
        show_history(annotations, frame.ref)
    with tabs[3]:
        show_export(annotations, frame.ref)
    with tabs[4]:
        tracks_tab(annotations, frame.ref, frame.paths, annotator)


st.session_state.setdefault("cub_seed", 0)
st.session_state.setdefault("cub_cars", 12)
st.session_state.setdefault("cub_pedestrians", 10)
try:
    page()
except PlaygroundError as err:  # e.g. the database became unreachable
    show_error(err)
