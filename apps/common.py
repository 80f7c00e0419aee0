"""What every page shares: the page list, the sidebar settings, errors, cached data, preset forms
and run pickers (background jobs are in ``background.py``).

``app.py`` imports this module (Streamlit puts ``apps/`` on ``sys.path`` while the app runs,
for ``streamlit run`` and ``AppTest`` alike), draws the sidebar once per run and runs the
selected page. Pages read the sidebar with :func:`sidebar_settings`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from playground.core.config import toml_value
from playground.core.device import available_devices
from playground.core.registry import TECHNIQUES
from playground.core.runs import playground_home


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to apps/
    title: str
    icon: str
    section: str


PLAYGROUND_PAGES = [
    PageSpec("views/home.py", "Home", ":material/home:", "Playground"),
    PageSpec("views/data_explorer.py", "Data explorer", ":material/image_search:", "Playground"),
    PageSpec("views/runs.py", "Runs", ":material/history:", "Playground"),
]
ANNOTATE_PAGE = PageSpec("views/annotate.py", "Annotate", ":material/rate_review:", "Annotation")
# every technique's page comes from the one list in playground.core.registry
PAGES = [
    *PLAYGROUND_PAGES,
    *(PageSpec(t.page, t.title, t.icon, t.section) for t in TECHNIQUES if t.section == "Techniques"),
    ANNOTATE_PAGE,
    *(PageSpec(t.page, t.title, t.icon, t.section) for t in TECHNIQUES if t.section == "Annotation"),
]
PAGE_PATHS = {spec.path for spec in PAGES}


def navigation_pages() -> dict[str, list]:
    """``st.navigation``'s argument: the pages grouped by section, Home first (the default)."""
    sections: dict[str, list] = {}
    for spec in PAGES:
        page = st.Page(spec.path, title=spec.title, icon=spec.icon, default=spec.path == "views/home.py")
        sections.setdefault(spec.section, []).append(page)
    sections[PLAYGROUND_PAGES[0].section] += old_page_links()  # hidden: not listed in the navigation
    return sections


def old_page_links() -> list:
    """Hidden pages at the URL paths pages had before (``/cuboids``): bookmarks land on the new page."""
    links = []
    for technique in TECHNIQUES:
        for old in technique.old_pages:

            def follow(target: str = technique.page) -> None:
                st.switch_page(target)

            links.append(st.Page(follow, title=technique.title, url_path=old, visibility="hidden"))
    return links


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
    """Draw the shared settings in the sidebar (once per run, from ``app.py``). Once accounts exist, only
    an admin may point the app at other data or runs folders: for everyone else they stay the defaults."""
    from login import current_user  # login imports this module

    user = current_user()
    locked = user is not None and user.role != "admin"
    for key, value in _defaults().items():
        st.session_state.setdefault(f"sidebar_{key}", value)
        if locked and key in ("data_root", "runs_root"):
            st.session_state[f"sidebar_{key}"] = value
    why = " Only an admin can change it." if locked else ""
    with st.sidebar:
        st.subheader("Settings")
        st.selectbox(
            "Device",
            ["auto", *available_devices()],
            key="sidebar_device",
            help="auto picks cuda, then mps, then cpu",
        )
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="sidebar_seed")
        st.text_input(
            "Data root",
            key="sidebar_data_root",
            placeholder="default search",
            help="A torchvision-layout root for Fashion-MNIST, or an ImageFolder tree "
            "(ROOT/<class>/<image>) for the folder dataset. Empty: the default search." + why,
            disabled=locked,
        )
        st.text_input(
            "Runs root",
            key="sidebar_runs_root",
            help="Where runs are written and listed ($PLAYGROUND_HOME or ./runs by default)." + why,
            disabled=locked,
        )
    return sidebar_settings()


def sidebar_settings() -> Settings:
    """The current sidebar settings (defaults before the sidebar has been drawn)."""
    values = {key: st.session_state.get(f"sidebar_{key}", value) for key, value in _defaults().items()}
    values["runs_root"] = values["runs_root"].strip() or str(playground_home())
    return Settings(
        device=values["device"],
        seed=int(values["seed"]),
        data_root=values["data_root"],
        runs_root=values["runs_root"],
    )


# --------------------------------------------------------------------- errors


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
        for cell, image, text in zip(
            cells, images[start : start + columns], captions[start : start + columns]
        ):
            cell.image(image, caption=text, width=width)


PLAIN_TOML = re.compile(r"^[A-Za-z0-9_.\-]+$")


def toml_text(value) -> str:
    """``value`` as it would be typed after ``--set key=``."""
    if isinstance(value, str) and PLAIN_TOML.match(value):
        return value
    return toml_value(value)


class PresetForm:
    """Widget state that starts from a recipe preset and survives a visit to another page.

    Widgets use the keys ``form.key(field)``; the preset selectbox uses ``form.preset_key``
    with ``on_change=form.load``. ``values_of(preset)`` gives a preset's field values.
    """

    def __init__(self, prefix: str, values_of, fields: tuple[str, ...]) -> None:
        self.prefix, self.values_of, self.fields = prefix, values_of, fields
        self.preset_key = f"{prefix}_preset"
        self.default_preset: str | None = None  # the first preset, set by restore()

    def key(self, field: str) -> str:
        return f"{self.prefix}_{field}"

    def load(self) -> None:
        """Preset changed: put its values into the widgets."""
        for field, value in self.values_of(st.session_state[self.preset_key]).items():
            st.session_state[self.key(field)] = value

    def restore(self, presets: list[str]) -> None:
        """First visit: the URL's settings over its preset's values (a shared link opens the same
        configuration); coming back from another page: what was last chosen."""
        from url_state import restore_from_url

        saved = st.session_state.setdefault(f"{self.prefix}_saved", {})
        self.default_preset = presets[0]  # left out of the URL, like every value equal to its preset's
        keys = {"preset": self.preset_key}
        problems = restore_from_url(self.prefix, keys, {"preset": presets[0]}, {"preset": presets})
        st.session_state.setdefault(self.preset_key, saved.get("preset", presets[0]))
        values = self.values_of(st.session_state[self.preset_key])
        problems += restore_from_url(f"{self.prefix}.fields", {f: self.key(f) for f in self.fields}, values)
        for field in self.fields:
            st.session_state.setdefault(self.key(field), saved.get(field, values[field]))
        if problems:
            st.warning(f"Ignored from the link: {'; '.join(problems)}", icon=":material/link_off:")

    def values(self) -> dict:
        """The widgets' current values (remembered for the next visit and kept in the page's URL)."""
        from url_state import keep_in_url

        values = {field: st.session_state[self.key(field)] for field in self.fields}
        preset = st.session_state[self.preset_key]
        st.session_state[f"{self.prefix}_saved"] = {"preset": preset, **values}
        keep_in_url({"preset": preset, **values}, {"preset": self.default_preset, **self.values_of(preset)})
        return values

    def preset_select(self, column, presets: list[str], help: str) -> None:
        """The preset selectbox: choosing a preset loads its values into the other widgets."""
        column.selectbox("Preset", presets, key=self.preset_key, on_change=self.load, help=help)

    def train_limit_input(self, column, step: int = 1000, what: str = "training images") -> None:
        """The ``train_limit`` field: at most this many images, stratified by class (0: all)."""
        column.number_input(
            "Train limit",
            min_value=0,
            step=step,
            key=self.key("train_limit"),
            help=f"At most this many {what}, stratified by class (0: all)",
        )

    def overrides(self, values: dict) -> list[str]:
        """``key=value`` for every widget that differs from the chosen preset."""
        base = self.values_of(st.session_state[self.preset_key])
        return [
            f"{field}={toml_text(values[field])}" for field in self.fields if values[field] != base[field]
        ]


def recipe_values(recipe, fields: tuple[str, ...]):
    """A :class:`PresetForm` ``values_of``: the values of ``fields`` in one preset of ``recipe``."""
    from playground.core.config import config_value
    from playground.core.runner import config_from_recipe

    def values_of(preset: str) -> dict:
        _, config = config_from_recipe(recipe, preset)
        return {field: config_value(config, field) for field in fields}

    return values_of


REPO_ROOT = Path(__file__).resolve().parents[1]


def preset_config(recipe, preset: str, overrides: list[str], settings):
    """``(config, args)``: ``recipe``'s ``preset`` with the widgets' ``overrides`` and the sidebar's seed,
    device, data root and runs root, and the ``playground run`` arguments of the same run (what a
    background job runs; :func:`shown_command` prints them)."""
    import dataclasses

    from playground.core.runner import config_from_recipe

    _, base = config_from_recipe(recipe, preset, overrides)
    data_root = settings.data_root.strip() if hasattr(base, "data_root") else ""  # generated data has none
    config = dataclasses.replace(
        base,
        seed=settings.seed,
        device=settings.device,
        out=settings.runs_root,
        **({"data_root": data_root} if data_root else {}),
    )
    args = [str(Path(recipe).resolve()), "--preset", preset]
    for override in overrides + ([f"data_root={json.dumps(data_root)}"] if data_root else []):
        args += ["--set", override]
    if settings.seed != base.seed:
        args += ["--seed", str(settings.seed)]
    if settings.device != "auto":
        args += ["--device", settings.device]
    if Path(settings.runs_root).expanduser().resolve() != playground_home().resolve():
        args += ["--out", settings.runs_root]
    return config, args


def shown_command(args: list[str]) -> str:
    """The ``playground run`` line for a job's arguments (the recipe relative to the checkout)."""
    import shlex

    recipe = Path(args[0])
    if recipe.is_relative_to(REPO_ROOT):
        args = [str(recipe.relative_to(REPO_ROOT)), *args[1:]]
    return shlex.join(["playground", "run", *args])


def literal_choices(config_cls, field: str) -> list:
    """The allowed values of a ``Literal[...]`` config field, for a selectbox."""
    import typing

    from playground.core.config import config_fields

    return list(typing.get_args(config_fields(config_cls)[field]))


def complete_runs(runs_of, root) -> tuple[dict[str, Path], int]:
    """``({name: folder}, unfinished)``: the complete runs of ``runs_of(root)`` (newest first), then the
    shipped reference runs, and how many runs under ``root`` are running, failed or interrupted."""
    from playground.core.runs import reference_root

    runs = runs_of(root)
    complete = {info.name: info.path for info in runs if info.status.state == "complete"}
    references = {info.name: info.path for info in runs_of(reference_root()) if info.name not in complete}
    return {**complete, **references}, len(runs) - len(complete)


def run_select(shown: dict[str, Path], key: str, label: str) -> Path:
    """A selectbox over :func:`complete_runs`' runs (the newest chosen on a first visit); reference runs
    are labelled as such. Returns the chosen run's folder."""
    from playground.core.runs import is_reference

    if st.session_state.get(key) not in shown:
        st.session_state[key] = next(iter(shown))
    chosen = st.selectbox(
        label,
        list(shown),
        key=key,
        format_func=lambda name: f"{name} (reference run)" if is_reference(shown[name]) else name,
        help="Your complete runs (newest first), then the reference runs the README quotes",
    )
    if is_reference(shown[chosen]):
        st.caption(
            ":material/bookmark: A **reference run** shipped with the playground (the figures the README "
            "quotes). Your own runs are listed first."
        )
    return shown[chosen]


def job_recipes_key(run_key: str) -> str:
    """Where a page's run form leaves the recipes whose jobs :func:`choose_run` follows."""
    return f"{run_key}__recipes"


def choose_run(runs_of, root, key: str, label: str, empty_text: str, new_experiment, settings) -> Path:
    """The page's run picker: a "new experiment" expander, the job the page started (or, after a reload,
    the newest active job of its recipes), then :func:`run_select` over the complete runs and the
    reference runs. Returns the chosen run's folder; stops the page when there is none."""
    from playground.errors import PlaygroundError

    try:
        mine = runs_of(root)
    except (PlaygroundError, OSError) as err:
        show_error(err)
        st.stop()
    complete = any(info.status.state == "complete" for info in mine)
    with st.expander("Run a new experiment", expanded=not complete, icon=":material/play_circle:"):
        new_experiment(settings)
    if st.session_state.get(job_recipes_key(key)):  # the job it started, outside the (maybe closed) expander
        from background import follow_job

        follow_job(st.session_state[job_recipes_key(key)], key, settings)
    shown, unfinished = complete_runs(runs_of, root)  # a run made just now is listed too
    if unfinished:
        st.caption(f"{unfinished} run(s) here are running, failed or interrupted; the Runs page lists them.")
    if not shown:
        st.info(empty_text)
        st.stop()
    return run_select(shown, key, label)


def expected_duration(recipe, config, settings) -> str:
    """How long this exact work took before (the user's newest complete run of it, else the reference)."""
    from playground.core.config import load_recipe
    from playground.core.registry import canonical_key
    from playground.core.runs import is_reference, run_roots
    from playground.core.status import find_timed_run

    key = canonical_key(load_recipe(recipe).experiment)
    timed = find_timed_run(key, config, run_roots(settings.runs_root))
    if timed is None:
        return (
            ":material/timer: No earlier run of exactly this configuration, so its time left is unknown "
            "while it runs (an unchanged preset is timed by its reference run)."
        )
    source = "the reference run" if is_reference(timed.folder) else f"your run {timed.folder.name}"
    return f":material/timer: The same work took {timed.describe()} in {source}."


def preset_run_button(
    recipe,
    form: PresetForm,
    values: dict,
    settings,
    run_key: str,
    button_key: str,
    title: str,
    hint: str = "it runs in the background, even if you leave the page",
) -> None:
    """The ``playground run`` line for the form's preset and changed fields, and a button that starts it
    as a background job; when it finishes, ``st.session_state[run_key]`` names the new run so the run
    picker opens it."""
    from background import start_job

    from playground.errors import PlaygroundError

    preset = st.session_state[form.preset_key]
    overrides = form.overrides(values)
    try:
        config, args = preset_config(recipe, preset, overrides, settings)
    except PlaygroundError as err:
        show_error(err)
        return
    st.caption(f"Same run from the command line ({hint}):")
    st.code(shown_command(args), language="bash", wrap_lines=True)
    st.caption(expected_duration(recipe, config, settings))
    if st.button(f"Run the {preset} preset", type="primary", icon=":material/play_arrow:", key=button_key):
        start_job(args, f"{title}: {preset}", settings, run_key)
    st.session_state[job_recipes_key(run_key)] = [Path(recipe)]  # choose_run follows its jobs
