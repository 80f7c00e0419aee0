"""End to end: a real ``streamlit run`` server driven by headless Chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.apps.conftest import REPO_ROOT
from tests.fct.test_results import tiny_fct_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, server: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else "(output not kept)"
            raise RuntimeError(f"streamlit exited with code {server.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer {url} within {timeout:.0f} s")


def start_streamlit(env: dict, port: int, output=subprocess.PIPE) -> subprocess.Popen:
    """``streamlit run apps/app.py`` on localhost:``port`` (scripts/first_touch.py uses it too; a long-lived
    server whose output nobody reads should pass ``output=subprocess.DEVNULL``)."""
    command = [sys.executable, "-m", "streamlit", "run", "apps/app.py", "--server.headless", "true"]
    command += [
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def app_url(tmp_path):
    """A streamlit server on a free localhost port, stopped after the test."""
    port = free_port()
    env = {**os.environ, "PLAYGROUND_HOME": str(tmp_path / "runs"), "PYTHONUNBUFFERED": "1"}
    server = start_streamlit(env, port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def browser_page():
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a busy 2-core machine can take a while to train or load
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def settle(page) -> None:
    """Wait until no script is running or requested (Streamlit's own signal on the app root, which
    its status widget only shows after a delay) and every image has loaded."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
    page.wait_for_function("Array.from(document.images).every(img => img.complete)")


def test_home_then_data_explorer_in_a_real_browser(app_url, browser_page, tmp_path):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Deep-learning playground")).to_be_visible()
    for technique in ("Classifier baseline", "Forward compatible training (FCT)", "3D cuboid annotation"):
        expect(page.get_by_role("heading", name=technique)).to_be_visible()
    expect(page.get_by_label("Seed")).to_be_visible()  # the shared sidebar
    expect(page).to_have_title("playground")
    settle(page)
    page.screenshot(path=str(tmp_path / "home.png"), full_page=True)

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Data explorer").click()
    expect(page.get_by_role("heading", name="Data explorer")).to_be_visible()
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
    expect(page.locator('[data-testid="stImage"] img').nth(7)).to_be_visible()
    expect(page.get_by_label("Seed")).to_be_visible()
    settle(page)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    page.screenshot(path=str(tmp_path / "data_explorer.png"), full_page=True)

    page.goto(app_url + "/classifier")  # the page's URL before it was renamed: a bookmark still works
    expect(page.get_by_role("heading", name="Classifier baseline")).to_be_visible()
    expect(page).to_have_url(app_url + "/classify")


def test_fct_page_in_a_real_browser(app_url, browser_page, tmp_path):
    from playwright.sync_api import expect

    tiny_fct_run(tmp_path / "runs")  # the server lists runs on every page run
    page = browser_page
    page.goto(app_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Forward compatible training").click()
    expect(page.get_by_role("heading", name="Forward compatible training")).to_be_visible()
    expect(page.get_by_role("heading", name="Compatibility")).to_be_visible()
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
    # compatibility, side-info trade-off, backfilling curves, adapters, edges, projection
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(6)
    expect(page.get_by_role("heading", name="Upgrade policies and partial backfill")).to_be_visible()
    expect(page.get_by_text("Speed-up")).to_be_visible()
    expect(page.locator('[data-testid="stImage"] img')).to_have_count(16)  # the query and 3 x 5 neighbours
    settle(page)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    page.screenshot(path=str(tmp_path / "fct.png"), full_page=True)


def test_uncertainty_page_in_a_real_browser(app_url, browser_page, tmp_path):
    from playwright.sync_api import expect

    from playground.uncertainty.experiment import Config, run
    from tests.apps.test_uncertainty_page import TINY_OOD

    run(Config(**TINY_OOD, out=str(tmp_path / "runs")))
    page = browser_page
    page.goto(app_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Uncertainty & OOD").click()
    expect(page.get_by_role("heading", name="Uncertainty & OOD detection")).to_be_visible()
    expect(page.get_by_role("heading", name="One image through every method")).to_be_visible()
    expect(page.get_by_role("heading", name="ROC curves")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(7)
    settle(page)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    page.screenshot(path=str(tmp_path / "uncertainty.png"), full_page=True)


def test_a_run_started_from_a_page_survives_closing_the_tab(app_url, browser_page, tmp_path):
    """Start a run, close the tab for a minute, open the page again: the run went on and nothing is lost."""
    from playwright.sync_api import expect

    from playground.core.status import read_status
    from playground.jobs import Jobs
    from playground.store import default_url

    page = browser_page
    tiny = "dataset=digits&epochs=60&train_limit=600&batch_size=8&width=16"  # a link opens this configuration
    page.goto(f"{app_url}/classify?{tiny}")
    expect(page.get_by_text("--set epochs=60")).to_be_visible()
    page.get_by_role("button", name="Run the quick preset").click()
    expect(page.get_by_text("Job 1 (Classifier: quick)")).to_be_visible()
    browser = page.context.browser
    page.close()  # the tab goes; the job must not
    time.sleep(60)
    jobs = Jobs(default_url(tmp_path / "runs"))
    [job] = jobs.list()
    assert job.status in ("running", "finished"), job.describe()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/classify")
    if jobs.get(job.id).active:  # still working: the reopened page follows it
        expect(page.get_by_text(f"Job {job.id} (Classifier: quick)")).to_be_visible()
    expect(page.get_by_text("Test accuracy", exact=True)).to_be_visible(
        timeout=300_000
    )  # then opens the new run
    done = jobs.get(job.id)
    assert done.status == "finished" and read_status(done.run_dir).state == "complete"
    settle(page)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    page.screenshot(path=str(tmp_path / "classify_after_reopening.png"), full_page=True)
