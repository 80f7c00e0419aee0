"""What every page shares: the page list, the sidebar settings, progress, errors, cached data.

``app.py`` imports this module (Streamlit puts ``apps/`` on ``sys.path`` while the app runs,
for ``streamlit run`` and ``AppTest`` alike), draws the sidebar once per run and runs the
selected page. Pages read the sidebar with :func:`sidebar_settings`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st

from playground.core.device import available_devices
from playground.core.progress import ProgressEvent
from playground.core.runs import playground_home


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to apps/
    title: str
    icon: str
    section: str


PAGES = [
    PageSpec("views/home.py", "Home", ":material/home:", "Playground"),
    PageSpec("views/data_explorer.py", "Data explorer", ":material/image_search:", "Playground"),
    PageSpec("views/runs.py", "Runs", ":material/history:", "Playground"),
    PageSpec("views/classifier.py", "Classifier baseline", ":material/category:", "Techniques"),
    PageSpec("views/fct.py", "Forward compatible training", ":material/upgrade:", "Techniques"),
]
PAGE_PATHS = {spec.path for spec in PAGES}


def navigation_pages() -> dict[str, list]:
    """``st.navigation``'s argument: the pages grouped by section, Home first (the default)."""
    sections: dict[str, list] = {}
    for spec in PAGES:
        page = st.Page(spec.path, title=spec.title, icon=spec.icon, default=spec.path == "views/home.py")
        sections.setdefault(spec.section, []).append(page)
    return sections


# --------------------------------------------------------------------- sidebar


@dataclass(frozen=True)
class Settings:
    """The sidebar's choices, shared by every page."""

    device: str
    seed: int
    data_root: str  # "" means the default search (Debian package, $PLAYGROUND_DATA)
    runs_root: str

    @property
    def data_root_or_none(self) -> str | None:
        return self.data_root.strip() or None


def _defaults() -> dict:
    return {"device": "auto", "seed": 0, "data_root": "", "runs_root": str(playground_home())}


def draw_sidebar() -> Settings:
    """Draw the shared settings in the sidebar (once per run, from ``app.py``)."""
    for key, value in _defaults().items():
        st.session_state.setdefault(f"sidebar_{key}", value)
    with st.sidebar:
        st.subheader("Settings")
        st.selectbox("Device", ["auto", *available_devices()], key="sidebar_device",
                     help="auto picks cuda, then mps, then cpu")
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="sidebar_seed")
        st.text_input("Data root", key="sidebar_data_root", placeholder="default search",
                      help="A torchvision-layout root for Fashion-MNIST, or an ImageFolder tree "
                           "(ROOT/<class>/<image>) for the folder dataset. Empty: the default search.")
        st.text_input("Runs root", key="sidebar_runs_root",
                      help="Where runs are written and listed ($PLAYGROUND_HOME or ./runs by default).")
    return sidebar_settings()


def sidebar_settings() -> Settings:
    """The current sidebar settings (defaults before the sidebar has been drawn)."""
    values = {key: st.session_state.get(f"sidebar_{key}", value) for key, value in _defaults().items()}
    values["runs_root"] = values["runs_root"].strip() or str(playground_home())
    return Settings(device=values["device"], seed=int(values["seed"]),
                    data_root=values["data_root"], runs_root=values["runs_root"])


# --------------------------------------------------------------------- progress and errors


def describe_event(event: ProgressEvent) -> str:
    """One status line, e.g. ``train · epoch 2 · step 40/94 · loss 0.412 · accuracy 0.861``."""
    parts = [event.stage]
    if event.epoch is not None:
        parts.append(f"epoch {event.epoch}")
    if event.total:
        parts.append(f"step {event.step}/{event.total}")
    parts += [f"{name} {value:.3g}" for name, value in event.metrics.items() if name != "batch_loss"]
    if event.message:
        parts.append(event.message)
    return " · ".join(parts)


def streamlit_progress(every: float = 0.15):
    """A progress callback drawing ``st.progress`` and a status line where it is created.

    Redraws at most every ``every`` seconds, and always when a stage finishes.
    """
    bar = st.progress(0.0, text="starting...")
    last = [0.0]

    def callback(event: ProgressEvent) -> None:
        now = time.monotonic()
        finished = event.total and event.step >= event.total
        if now - last[0] < every and not finished:
            return
        last[0] = now
        bar.progress(event.fraction, text=describe_event(event))

    callback.bar = bar
    return callback


def show_error(err: BaseException) -> None:
    """A user-facing error as one line, never a traceback."""
    st.error(str(err), icon=":material/error:")


# --------------------------------------------------------------------- data


@st.cache_resource(show_spinner="Loading dataset...", max_entries=8)
def cached_dataset(name: str, split: str, root: str | None, seed: int):
    """``load_dataset`` kept in memory (not copied) across reruns and sessions."""
    from playground.data import load_dataset

    return load_dataset(name, split, root=root, seed=seed)


def upscale(image, size: int = 96) -> np.ndarray:
    """A (C, H, W) float tensor in [0, 1] as a crisp uint8 (H', W'[, 3]) array about ``size`` wide."""
    array = image.numpy() if hasattr(image, "numpy") else np.asarray(image)
    array = np.clip(np.round(array * 255), 0, 255).astype(np.uint8)
    array = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
    factor = max(1, round(size / array.shape[0]))
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def image_grid(images: list[np.ndarray], captions: list[str], columns: int = 8, width: int = 96) -> None:
    """Images with captions in a grid of ``columns``."""
    for start in range(0, len(images), columns):
        cells = st.columns(columns)
        for cell, image, text in zip(cells, images[start:start + columns], captions[start:start + columns]):
            cell.image(image, caption=text, width=width)
