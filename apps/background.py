"""Runs started from a page, as background jobs (:mod:`playground.jobs`): start, follow, cancel.

A page never trains in its own script: a Run button queues ``playground run ...`` as a job, whose
worker process outlives the page, the browser tab and the app. :func:`follow_job` draws the job a
page started (or, after a reload or in a new tab, the newest job of the page's recipe) and refreshes
itself every two seconds; when the job finishes, the page's run picker opens the new run.
:func:`draw_job_list` is the sidebar's list of recent jobs.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st
from common import show_error

from playground.errors import PlaygroundError
from playground.jobs import Job, Jobs, log_path
from playground.store import default_url

ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/autorenew:",
    "finished": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
    "interrupted": ":material/warning:",
}


@st.cache_resource(max_entries=4, show_spinner=False)
def _jobs(url: str) -> Jobs:
    return Jobs(url)


def open_jobs(runs_root: str) -> Jobs:
    """The job list in the project's database under ``runs_root`` (or ``$PLAYGROUND_DB``)."""
    return _jobs(default_url(runs_root))


def jobs_at(url: str) -> Jobs:
    """The job list in the database at ``url``: a page working on one store starts its jobs there."""
    return _jobs(url)


def start_job(args: list[str], title: str, settings, run_key: str) -> None:
    """Queue the run; the page's :func:`follow_job` shows it from the next draw on."""
    try:
        job = open_jobs(settings.runs_root).submit(args, title)
    except PlaygroundError as err:
        show_error(err)
        return
    st.session_state[_job_key(run_key)] = job.id


def _job_key(run_key: str) -> str:
    return f"{run_key}__job"


def follow_job(recipes: Path | list[Path], run_key: str, settings) -> None:
    """The job this page started (or the newest active job of one of ``recipes``, after a reload or in
    another tab), refreshed every 2 s; when it finishes, ``st.session_state[run_key]`` names the new run."""
    recipes = {Path(r).resolve() for r in (recipes if isinstance(recipes, list) else [recipes])}
    try:
        jobs = open_jobs(settings.runs_root)
        listed = jobs.list(50)
    except PlaygroundError as err:
        show_error(err)
        return
    job_id = st.session_state.get(_job_key(run_key))
    if job_id is None:
        mine = (j for j in listed if j.active and j.args and Path(j.args[0]).resolve() in recipes)
        job_id = next((j.id for j in mine), None)
        if job_id is None:
            return
        st.session_state[_job_key(run_key)] = job_id
    try:
        job = jobs.get(job_id)
    except PlaygroundError:  # another database (the runs root changed)
        st.session_state.pop(_job_key(run_key), None)
        return
    opened = f"{run_key}__opened_{job.id}"
    if job.status == "finished" and job.run_dir and not st.session_state.get(opened):
        st.session_state[opened] = True
        st.session_state[run_key] = Path(job.run_dir).name  # the run picker opens the new run

    @st.fragment(run_every=2.0 if job.active else None)  # refresh only while it works
    def draw() -> None:
        now = jobs.get(job_id)
        draw_job(now, jobs, f"{run_key}_cancel")
        if job.active and not now.active:
            st.rerun(scope="app")  # it has just ended: draw the page again, with the new run

    draw()


def draw_job(job: Job, jobs: Jobs, cancel_key: str) -> None:
    """One job: a bar with stage k of N, elapsed and time left while it works; how it ended after."""
    if job.active:
        snapshot = job.progress
        fraction = snapshot.get("fraction")
        if fraction is None and snapshot.get("total"):
            fraction = snapshot["step"] / snapshot["total"]  # no earlier run to time it by: this stage
        st.progress(min(1.0, fraction or 0.0), text=f"Job {job.id} ({job.title}): {job.describe()}")
        left, right = st.columns([4, 1])
        left.caption(
            "Runs in the background: leave the page or close the tab, it goes on; the sidebar lists it. "
            f"Same run from the command line: `{job.command}`"
        )
        right.button(
            "Cancel", key=cancel_key, icon=":material/stop_circle:", on_click=cancel, args=(jobs, job.id)
        )
        return
    text = f"Job {job.id} ({job.title}) {job.describe()}"
    if job.status == "finished":
        st.success(text, icon=ICONS["finished"])
    elif job.status == "failed":
        st.error(f"{text}. Its log: `{log_path(job.id)}`", icon=ICONS["failed"])
    else:
        st.warning(text, icon=ICONS[job.status])


def cancel(jobs: Jobs, job_id: int) -> None:
    """A Cancel button's callback: runs before the page is drawn again, so the page shows the result."""
    st.toast(jobs.cancel(job_id))


def draw_job_list(settings, limit: int = 6) -> None:
    """The sidebar's recent jobs, refreshed every 3 s while any is active."""
    try:
        jobs = open_jobs(settings.runs_root)
    except PlaygroundError:
        return  # the Annotate page shows database errors; the sidebar stays quiet

    try:
        active = any(job.active for job in jobs.list(limit))
    except PlaygroundError:
        return

    @st.fragment(run_every=3.0 if active else None)  # refresh only while something works
    def draw() -> None:
        listed = jobs.list(limit)
        if not listed:
            return
        if active and not any(job.active for job in listed):
            st.rerun(scope="app")
        st.subheader("Jobs")
        now = time.time()
        for job in listed:
            st.caption(f"{ICONS[job.status]} **{job.id} · {job.title}**: {job.describe(now)}")
            if job.active:
                key = f"sidebar_cancel_{job.id}"
                st.button(
                    "Cancel", key=key, icon=":material/stop_circle:", on_click=cancel, args=(jobs, job.id)
                )

    with st.sidebar:
        draw()
