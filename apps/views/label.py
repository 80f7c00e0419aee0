"""The labelling loop: where each labelling project stands, and its next round or retrain started.

For reviewers and admins (an annotator gets one line instead; with no accounts everyone sees it).
Per project (:func:`playground.label.summary.project_summary`): the pool, each round's routes
(labelled, auto-labelled, escalated, OOD, deferred) as a table and stacked bars, each model version's
held-out accuracy, every annotator's throughput and estimated accuracy, the agreement between them
(Krippendorff's alpha, overall and per class) and the items awaiting a reviewer. "Start round" and
"Retrain" queue ``playground label round NAME`` / ``label retrain NAME`` as background jobs
(:mod:`playground.jobs`) whose "k of N" progress the page follows; both wait while a job or a round
of the project is running. Tables and figures come from :mod:`playground.label.charts`.
"""

from __future__ import annotations

import shlex

import pandas as pd
import streamlit as st
from background import draw_job, jobs_at
from common import show_error, sidebar_settings
from login import cached_store, current_user, server_store

from playground.errors import PlaygroundError
from playground.jobs import Job, Jobs, is_label_job
from playground.label.charts import (
    agreement_rows,
    annotator_rows,
    annotators_figure,
    round_rows,
    rounds_figure,
    version_rows,
    versions_figure,
)
from playground.label.project import open_project, project_names
from playground.label.summary import project_summary
from playground.store import Store, default_url

ACTIONS = {"round": "Start round", "retrain": "Retrain"}
PERCENT = st.column_config.NumberColumn(format="percent")
SHARE = st.column_config.NumberColumn(format="%.3f")


def open_store(runs_root: str) -> Store:
    """The Annotate page's store: the runs root's database, or the server's once someone signs in."""
    try:
        return cached_store(default_url(runs_root)) if current_user() is None else server_store()
    except PlaygroundError as err:
        show_error(err)
        st.stop()


def refuse_annotators() -> None:
    user = current_user()
    if user is not None and not user.can_review:
        st.info(
            "Only reviewers and admins see the loop. Your items are on the Annotate page.",
            icon=":material/lock:",
        )
        st.page_link("views/annotate.py", label="Annotate", icon=":material/rate_review:")
        st.stop()


def choose_project(store: Store) -> str:
    names = project_names(store)
    if not names:
        st.info(
            "No labelling project yet: create one from a folder of your images with "
            '`playground label init NAME --images DIR --classes "a,b,c"`, then start its first round here.',
            icon=":material/folder_open:",
        )
        st.stop()
    return st.selectbox("Project", names, key="label_project", bind="query-params")


# --------------------------------------------------------------------- jobs


def project_jobs(jobs: Jobs, name: str) -> list[Job]:
    """The project's label jobs, newest first."""
    return [job for job in jobs.list(50) if is_label_job(job.args) and job.args[2:3] == [name]]


def blocker(summary: dict, active: Job | None) -> str:
    """Why nothing can start now ("" when both buttons may): a job or a round of the project runs."""
    if active is not None:
        return f"job {active.id} ({active.title}) is {active.status}: wait for it, or cancel it"
    running = [r for r in summary["rounds"] if r["status"] == "running"]
    if running:
        return f"round {running[-1]['number']} is running (started from the command line): wait for it"
    return ""


def round_blocker(summary: dict) -> str:
    """Without a model, a new round would only pick another seed set: not while one waits for people."""
    waiting = summary["queue"]["open"]
    if not summary["versions"] and summary["rounds"] and waiting:
        return f"{waiting} seed items still wait for people: label them, then retrain"
    return ""


def start(jobs: Jobs, name: str, action: str) -> None:
    try:
        job = jobs.submit(["label", action, name], f"label {action} {name}")
    except PlaygroundError as err:
        show_error(err)
        return
    st.session_state[f"label_job_{name}"] = job.id
    st.rerun()


def draw_actions(jobs: Jobs, name: str, summary: dict) -> None:
    listed = project_jobs(jobs, name)
    active = next((job for job in listed if job.active), None)
    reasons = {
        "round": blocker(summary, active) or round_blocker(summary),
        "retrain": blocker(summary, active),
    }
    with st.container(horizontal=True, vertical_alignment="center"):
        for action, label in ACTIONS.items():
            icon = ":material/play_arrow:" if action == "round" else ":material/model_training:"
            clicked = st.button(
                label,
                key=f"label_{action}",
                icon=icon,
                disabled=bool(reasons[action]),
                help=reasons[action] or None,
            )
            if clicked:
                start(jobs, name, action)
    if active is None:  # else the job's own bar below says what runs (the buttons' help says why)
        for reason in sorted({reason for reason in reasons.values() if reason}):
            st.caption(f":material/block: {reason}")
    followed = active.id if active else st.session_state.get(f"label_job_{name}")
    if followed is not None and any(job.id == followed for job in listed):
        follow(jobs, followed)
    quoted = shlex.quote(name)
    st.caption("The same from the command line:")
    st.code(
        f"playground label round {quoted}     # score the pool, auto-label, queue for people\n"
        f"playground label retrain {quoted}   # the next model version from people's labels\n"
        f"playground label status {quoted}\n"
        f"playground label export {quoted} --format csv --out labels.csv",
        language=None,
    )


def follow(jobs: Jobs, job_id: int) -> None:
    """The job's bar, refreshed every 2 s while it works; the whole page is drawn again when it ends."""
    began_active = jobs.get(job_id).active

    @st.fragment(run_every=2.0 if began_active else None)
    def draw() -> None:
        job = jobs.get(job_id)
        draw_job(job, jobs, f"label_cancel_{job_id}")
        if began_active and not job.active:
            st.rerun(scope="app")

    draw()


# --------------------------------------------------------------------- what the project looks like


def draw_overview(summary: dict) -> None:
    versions = summary["versions"]
    newest = versions[-1] if versions else None
    model = "none yet"
    if newest is not None:
        accuracy = newest.get("accuracy")
        model = f"v{newest['version']}" + ("" if accuracy is None else f" · {accuracy:.0%}")
    figures = [
        ("Pool", summary["pool"], "images in the project"),
        ("Labelled by people", summary["labelled"], "items with a consensus or a reviewer's label"),
        ("Awaiting a reviewer", summary["awaiting_review"], "items whose labels disagree"),
        ("Open in the queue", summary["queue"]["open"], "items waiting for an annotator"),
        ("Newest model", model, "with its held-out accuracy"),
    ]
    with st.container(horizontal=True):
        for label, value, help_text in figures:
            st.metric(label, value, help=help_text, border=True)
    if summary["awaiting_review"]:
        st.page_link(
            "views/annotate.py",
            label=f"{summary['awaiting_review']} item(s) await a reviewer: review them on the Annotate page",
            icon=":material/rate_review:",
        )


def draw_rounds(summary: dict) -> None:
    st.subheader("Rounds")
    if not summary["rounds"]:
        st.info("No round yet: **Start round** picks a diverse seed set for people to label.")
        return
    st.plotly_chart(rounds_figure(summary["rounds"]), width="stretch", key="label_rounds_chart")
    table = pd.DataFrame(round_rows(summary["rounds"]))
    if not table["error"].astype(bool).any():
        table = table.drop(columns="error")
    st.dataframe(table, hide_index=True, key="label_rounds_table")
    st.caption(
        "Per round, where each image stood: labelled by people before it, auto-labelled (the threshold λ "
        "certifies error ≤ α with probability 1 - δ on held-out labels; none is certified while too few "
        "held-out images are labelled or no confidence level meets the bound), escalated to people "
        "(uncertain, seed and calibration picks), likely OOD, deferred, or not scored (queued earlier, or no "
        "model yet)."
    )


def draw_versions(summary: dict) -> None:
    st.subheader("Model versions")
    if not summary["versions"]:
        st.info("No model version yet: **Retrain** once people have labelled the seed set.")
        return
    st.plotly_chart(versions_figure(summary["versions"]), width="stretch", key="label_versions_chart")
    st.dataframe(
        pd.DataFrame(version_rows(summary["versions"])),
        hide_index=True,
        column_config={"held-out accuracy": PERCENT},
        key="label_versions_table",
    )


def draw_people(summary: dict) -> None:
    st.subheader("Annotators")
    if not summary["annotators"]:
        st.info("Nobody has labelled anything in this project yet.")
        return
    st.plotly_chart(annotators_figure(summary["annotators"]), width="stretch", key="label_people_chart")
    left, right = st.columns(2)
    left.dataframe(
        pd.DataFrame(annotator_rows(summary["annotators"])),
        hide_index=True,
        column_config={"estimated accuracy": PERCENT},
        key="label_people_table",
    )
    rows = agreement_rows(summary["agreement"])
    alpha = summary["agreement"].get("alpha")
    shown = "-" if alpha is None or alpha != alpha else f"{alpha:.3f}"
    right.markdown(f"**Agreement** (Krippendorff's alpha; 1 perfect, 0 chance): **{shown}**")
    if rows:
        right.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            column_config={"alpha": SHARE, "percent agreement": PERCENT},
            key="label_agreement_table",
        )


# --------------------------------------------------------------------- the page

st.title("Labelling loop")
st.caption(
    "A labelling project on your own images: each round the model auto-labels what a calibrated threshold "
    "certifies and queues what it is unsure of; people label it on the Annotate page; retraining learns "
    "from their labels."
)
refuse_annotators()
settings = sidebar_settings()
store = open_store(settings.runs_root)
name = choose_project(store)
try:
    summary = project_summary(store, open_project(store, name))
except PlaygroundError as err:
    show_error(err)
    st.stop()
draw_overview(summary)
draw_actions(jobs_at(store.url), name, summary)
draw_rounds(summary)
draw_versions(summary)
draw_people(summary)
