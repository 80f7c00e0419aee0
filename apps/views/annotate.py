"""Annotate: review the samples the model was unsure about, one at a time, from the keyboard.

The active-learning loop escalates uncertain or likely out-of-distribution samples to a queue in
the annotation store (``playground.store``): the recipe preset that fills a queue, a background job
filling one now and the run that filled it come from :mod:`playground.active.handoff`, with links to
the Active learning page. Each annotator is lent one item at a time; it goes back to the queue if they
leave it for five minutes. Every decision is saved at once, under a request id made for the item on
screen, so a rerun or a double key press never records it twice. The 3D page's frame queues are not here.
Once accounts exist (``playground users``), the signed-in account annotates (no name to type) and
the queue list holds only the projects it is on (every queue for a reviewer or an admin).
Keys: a accept · 1-9, 0 correct to that class · e save the chosen correction · s skip ·
o flag as OOD · u undo.

A key press reruns only the item area (an ``st.fragment``: progress, the item, its buttons, the
history while open), kept small: the image comes in the same message at its own size (the browser
enlarges it), the exports are built on click. ``scripts/bench_annotate.py`` times the wait (issue 21).
"""

import base64
import functools
import io
import uuid

import numpy as np
import pandas as pd
import streamlit as st
from background import open_jobs
from common import show_error, sidebar_settings
from login import cached_store, current_user, server_store
from PIL import Image

from playground.accounts import Accounts, User
from playground.active.handoff import (
    describe_recipes,
    fill_command,
    filling_jobs,
    job_queue,
    queue_recipes,
    source_runs,
)
from playground.errors import PlaygroundError
from playground.pointcloud.frame_queue import is_frame_queue
from playground.store import Decision, Item, Store, default_url

IMAGE_WIDTH = 224
PIXELATED = "<style>.st-key-ann_area [data-testid='stImage'] img {image-rendering: pixelated}</style>"
TOP_K = 5
HISTORY_ROWS = 15
REASONS = {
    "uncertain": ("uncertain", "orange", ":material/help:"),
    "ood": ("likely OOD", "red", ":material/explore_off:"),
}
DONE = {"accept": "Accepted", "correct": "Corrected", "skip": "Skipped", "ood": "Flagged as OOD"}


def open_store(runs_root: str, user: User | None) -> Store:
    """The store in the runs root's database (or ``$PLAYGROUND_DB``), or with a signed-in user the
    server's (where the accounts are); stops the page on an error."""
    try:
        return cached_store(default_url(runs_root)) if user is None else server_store()
    except PlaygroundError as err:
        show_error(err)
        st.stop()


def annotator_name(store: Store) -> str:
    """The annotator's name (kept in the URL and the session); "" until a valid one is given."""
    raw = st.text_input(
        "Your name",
        key="annotator",
        bind="query-params",
        persist_state="session",
        placeholder="who is annotating",
        max_chars=64,
        help="Decisions are recorded under this name; nothing happens until it is given",
    )
    if not (raw or "").strip():
        st.info("Type your name to start annotating.", icon=":material/badge:")
        return ""
    try:
        return store.register_annotator(raw)
    except PlaygroundError as err:
        show_error(err)
        return ""


def signed_in_annotator(user: User) -> str:
    """The signed-in account annotates: no name to type."""
    st.markdown(f"Annotating as **{user.name}**", help="Decisions are recorded under your account")
    return user.name


def allowed_queues(store: Store, user: User | None) -> list[str]:
    """The image queues: every one when no account exists, else the account's."""
    queues = store.queues() if user is None else Accounts(store).queues_for(user.name)
    return [queue for queue in queues if not is_frame_queue(queue)]


def show_no_project(user: User) -> None:
    grant = f"playground users grant {user.name} PROJECT"
    st.info(f"You are on no project yet. An admin adds you with `{grant}`.", icon=":material/group_off:")


def choose_queue(queues: list[str]) -> str:
    return st.selectbox("Queue", queues, key="queue", bind="query-params", persist_state="session")


# --------------------------------------------------------------------- where queues come from


def show_how_to_fill(runs_root: str, queue: str | None) -> None:
    """Which recipe preset fills ``queue`` (any queue when None), a link to the Active learning page
    that runs it, the same run from a terminal, and the background jobs filling it now."""
    recipes = queue_recipes()
    command = fill_command(queue, recipes) if queue else (recipes[0].command if recipes else "")
    if queue is None:
        which = describe_recipes(recipes) or "an active-learning run with `queue` set fills one"
        text = (
            "No annotation queue yet. The active-learning loop escalates the samples its model is unsure "
            f"about, and those that look out of distribution, to a queue: {which}."
        )
    else:
        text = f"To add more to **{queue}**, run active learning again: each run adds its own escalations."
    st.info(text, icon=":material/inbox:")
    show_filling_jobs(runs_root, queue)
    st.page_link("views/active.py", label="Run it on the Active learning page", icon=":material/school:")
    if command:
        st.caption("Or from a terminal:")
        st.code(command, language="bash", wrap_lines=True)


def active_filling_jobs(runs_root: str, queue: str | None) -> list:
    try:
        return filling_jobs(open_jobs(runs_root).list(50), queue)
    except PlaygroundError as err:
        show_error(err)
        return []


def show_filling_jobs(runs_root: str, queue: str | None) -> None:
    """The queued or running active-learning jobs that fill ``queue`` (any when None), refreshed every
    3 s; when the last one ends the page is drawn again, with what it filled."""
    if not active_filling_jobs(runs_root, queue):
        return

    @st.fragment(run_every=3.0)
    def draw() -> None:
        jobs = active_filling_jobs(runs_root, queue)
        for job in jobs:
            st.info(
                f"On its way: job {job.id} ({job.title}) fills queue **{job_queue(job.args)}**: "
                f"{job.describe()}",
                icon=":material/autorenew:",
            )
        if not jobs:
            st.rerun(scope="app")

    draw()


def show_source(store: Store, queue: str, runs_root: str) -> None:
    """The active-learning run that last filled ``queue`` (when its model name is known), linked."""
    runs = source_runs(store, queue, runs_root)
    if not runs:
        return
    newest, earlier = runs[0], len(runs) - 1
    more = f" (and {earlier} earlier run{'s' if earlier > 1 else ''})" if earlier else ""
    if newest.path is None:
        st.caption(
            f"Filled by `{newest.name}`{more}; no active-learning run of that name under `{runs_root}`."
        )
        return
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(
            f"{newest.items:,} items from active-learning run **{newest.name}**{more}.", width="content"
        )
        st.page_link(
            "views/active.py",
            label="See that run",
            icon=":material/school:",
            query_params={"run": newest.name},
        )


# --------------------------------------------------------------------- actions (button callbacks)


def fresh_request() -> None:
    """A new request id for the next decision; the one just used stays with its decision."""
    st.session_state.ann_request = uuid.uuid4().hex


def describe(decision: Decision, class_names: list[str]) -> str:
    label = "" if decision.label is None else f" as {class_names[decision.label]}"
    return f"{DONE[decision.action]} {decision.external_id}{label}"


def decide(
    store: Store, item: Item, annotator: str, request_id: str, action: str, label: int | None = None
) -> None:
    """Submit one decision; replaying ``request_id`` (a stale second click) records nothing new."""
    try:
        decision = store.submit(request_id, item.escalation_id, annotator, action, label)
    except PlaygroundError as err:
        st.session_state.ann_error = err
        return
    st.session_state.ann_flash = describe(decision, item.class_names)
    fresh_request()


def correct_to_chosen(store: Store, item: Item, annotator: str, request_id: str) -> None:
    decide(store, item, annotator, request_id, "correct", st.session_state[f"ann_label_{item.escalation_id}"])


def undo(store: Store, queue: str, annotator: str) -> None:
    try:
        undone = store.undo_last(queue, annotator)
    except PlaygroundError as err:
        st.session_state.ann_error = err
        return
    st.session_state.ann_flash = (
        "Nothing to undo" if undone is None else f"Undone: {describe(undone, store.class_names(queue))}"
    )
    fresh_request()


def show_messages() -> None:
    """What the last click did (a toast) or why it did not (an error)."""
    if "ann_error" in st.session_state:
        show_error(st.session_state.pop("ann_error"))
    if "ann_flash" in st.session_state:
        st.toast(st.session_state.pop("ann_flash"), icon=":material/check_circle:")


# --------------------------------------------------------------------- drawing


def show_progress(store: Store, queue: str) -> None:
    counts = store.progress(queue)
    done, total = counts["done"], counts["total"]
    st.progress(done / total if total else 1.0, text=f"{done} of {total} decided")
    st.caption(
        f"{counts['open']} waiting · {counts['leased']} in review · {done} decided · "
        f"{counts['by_action'].get('ood', 0)} flagged OOD"
    )


def image_url(image: np.ndarray) -> str:
    """A (H, W[, C]) uint8 or [0, 1] image as a PNG data URL, at most ``IMAGE_WIDTH`` wide: it comes in
    the page's own message (no second request) and the browser enlarges it, pixel for pixel."""
    pixels = image if image.dtype == np.uint8 else np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels)
    if picture.width > IMAGE_WIDTH:
        picture = picture.resize((IMAGE_WIDTH, max(1, round(picture.height * IMAGE_WIDTH / picture.width))))
    png = io.BytesIO()
    picture.save(png, format="PNG")
    return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")


def top_k_table(item: Item) -> str:
    """The ``TOP_K`` most probable classes, with their keys, as a markdown table."""
    rows = [
        f"| {f'`{(index + 1) % 10}`' if index < 10 else ''} | {name} | {p:.2f} |"
        for index, name, p in item.top_k(TOP_K)
    ]
    return "\n".join(["| key | class | probability |", "|:-:|---|--:|", *rows])


def show_item(item: Item) -> None:
    left, right = st.columns([1, 2], gap="large")
    left.image(image_url(item.image), caption=item.external_id, width=IMAGE_WIDTH)
    with right:
        text, colour, icon = REASONS.get(item.reason, (item.reason, "gray", None))
        st.badge(text, color=colour, icon=icon)
        st.markdown(
            f"The model says **{item.predicted_name}** ({item.probs[item.predicted]:.0%}).\n\n"
            f"Uncertainty **{item.uncertainty:.3f}** (the score that put it in the queue) · member "
            f"disagreement **{item.disagreement:.3f}** (how much the ensemble members disagree)\n\n"
            + top_k_table(item)
        )


def action_buttons(store: Store, item: Item, annotator: str) -> None:
    """Accept, skip, OOD and undo; a correction by digit key or by the chosen class."""
    request = st.session_state.setdefault("ann_request", uuid.uuid4().hex)
    on_item = (store, item, annotator, request)
    with st.container(horizontal=True):
        st.button(
            "Accept",
            key="ann_accept",
            shortcut="a",
            type="primary",
            icon=":material/check:",
            on_click=decide,
            args=(*on_item, "accept"),
        )
        st.button(
            "Skip",
            key="ann_skip",
            shortcut="s",
            icon=":material/skip_next:",
            on_click=decide,
            args=(*on_item, "skip"),
        )
        st.button(
            "Flag OOD",
            key="ann_ood",
            shortcut="o",
            icon=":material/explore_off:",
            on_click=decide,
            args=(*on_item, "ood"),
        )
        undo_button(store, item.queue, annotator)
    st.caption("Correct to:")
    with st.container(horizontal=True):
        for index, name in enumerate(item.class_names[:10]):
            st.button(
                name,
                key=f"ann_digit_{index}",
                shortcut=str((index + 1) % 10),
                on_click=decide,
                args=(*on_item, "correct", index),
            )
    with st.container(horizontal=True, vertical_alignment="bottom"):
        choices = list(range(len(item.class_names)))
        st.selectbox(
            "Another class",
            choices,
            index=item.top_k(2)[-1][0],
            format_func=item.class_names.__getitem__,
            key=f"ann_label_{item.escalation_id}",
            width=260,
        )
        st.button(
            "Save correction",
            key="ann_correct",
            shortcut="e",
            icon=":material/edit:",
            on_click=correct_to_chosen,
            args=on_item,
        )


def undo_button(store: Store, queue: str, annotator: str) -> None:
    st.button(
        "Undo",
        key="ann_undo",
        shortcut="u",
        icon=":material/undo:",
        on_click=undo,
        args=(store, queue, annotator),
        help="Take back your last decision in this queue",
    )


def show_history(store: Store, queue: str) -> None:
    names = store.class_names(queue)
    rows = [
        {
            "when (UTC)": pd.Timestamp(d.created_at, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S"),
            "annotator": d.annotator,
            "item": d.external_id,
            "action": d.action,
            "label": "" if d.label is None else names[d.label],
            "undone": "undone" if d.undone else "",
        }
        for d in store.history(queue, HISTORY_ROWS)
    ]
    if rows:
        st.table(pd.DataFrame(rows), hide_index=True)
    else:
        st.caption("No decisions yet.")


def show_export(store: Store, queue: str) -> None:
    st.caption(
        f"The current label of every decided item (an item flagged OOD has no label), from "
        f"`{store.location}`."
    )
    files = (("csv", store.labels_csv, "text/csv"), ("json", store.labels_json, "application/json"))
    with st.container(horizontal=True):
        for kind, build, mime in files:  # built when its button is clicked, not on every key press
            st.download_button(
                f"Labels as {kind.upper()}",
                functools.partial(build, queue),
                file_name=f"{queue}-labels.{kind}",
                mime=mime,
                icon=":material/download:",
                key=f"ann_{kind}",
                on_click="ignore",
            )


@st.fragment
def item_area(store: Store, queue: str, annotator: str, runs_root: str) -> None:
    """Everything a decision changes; a key press or a click here reruns only this."""
    try:  # a rerun of this alone does not pass through page()'s handler
        show_messages()
        item = store.lease_next(queue, annotator)
        show_progress(store, queue)
        if item is None:
            st.success("Nothing left to review in this queue.", icon=":material/task_alt:")
            undo_button(store, queue, annotator)
            show_how_to_fill(runs_root, queue)
        else:
            show_item(item)
            action_buttons(store, item, annotator)
        history = st.expander("Who decided what", key="ann_history", on_change="rerun")
        if history.open:  # drawn only while it is open
            with history:
                show_history(store, queue)
    except PlaygroundError as err:
        show_error(err)


def page() -> None:
    st.title("Annotate")
    st.caption(
        "Review what the model was unsure about. Keys: **a** accept · **1-9, 0** correct to that class · "
        "**e** save the chosen correction · **s** skip · **o** flag as OOD · **u** undo."
    )
    runs_root, user = sidebar_settings().runs_root, current_user()
    store = open_store(runs_root, user)
    queues = allowed_queues(store, user)
    if not queues and user is not None and not user.can_review:
        show_no_project(user)
        return
    if not queues:
        show_how_to_fill(runs_root, None)
        return
    top = st.columns(2)
    with top[0]:
        annotator = annotator_name(store) if user is None else signed_in_annotator(user)
    if not annotator:
        return  # not st.stop() (here and above): the sidebar's job list is drawn after the page
    with top[1]:
        queue = choose_queue(queues)
    show_source(store, queue, runs_root)
    st.html(PIXELATED)
    with st.container(key="ann_area"):
        item_area(store, queue, annotator, runs_root)
    with st.expander("Export labels"):
        show_export(store, queue)


try:
    page()
except PlaygroundError as err:  # e.g. the database became unreachable
    show_error(err)
