"""How long a newcomer waits for a first result on each page: a fresh home folder, no runs of their own,
a real ``streamlit run`` server and headless Chromium.

    .venv/bin/python scripts/first_touch.py OUT_DIR [--pages classify,fct,...]

For each page, twice (the first visit pays the page's imports, once per server): open its URL in a new
tab and wait until its script has run and a result is drawn (a chart, a table, a metric or an image; an
exception fails the page). Writes ``OUT_DIR/first_touch.json`` (seconds per page and visit),
``OUT_DIR/<page>-<visit>.png`` and prints a Markdown table.
The target is under 5 s a page on 2 CPU cores, from the shipped reference runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.apps.test_browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    start_streamlit,
    wait_for_http,
)

RESULT = ", ".join(
    f'[data-testid="{kind}"]'
    for kind in ("stPlotlyChart", "stDataFrame", "stMetric", "stImage", "stTable", "stCustomComponentV1")
)


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("PLAYGROUND_REFERENCE", None)  # the checkout's reference runs
    return start_streamlit(env, port, output=subprocess.DEVNULL)  # minutes of logs nobody reads


def time_page(browser, url: str, shot: Path) -> dict:
    """Seconds from opening ``url`` in a new tab until the script has run and a result is drawn."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("[data-testid=stMain] h1")  # the page's own script has started
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    try:
        page.wait_for_selector(RESULT, state="attached", timeout=60_000)
    except Exception:  # no result at all: reported as such
        pass
    seconds = time.perf_counter() - start
    results = page.locator(RESULT).count()
    errors = page.locator('[data-testid="stException"]').count()
    page.screenshot(path=str(shot))
    page.close()
    return {"seconds": round(seconds, 2), "results_on_screen": results, "exceptions": errors}


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    from playground.core.registry import TECHNIQUES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", help="comma-separated URL paths (default: every technique page)")
    args = parser.parse_args(argv)
    pages = args.pages.split(",") if args.pages else [t.key for t in TECHNIQUES]
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        server = start_server(Path(home) / "runs", port)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/_stcore/health", server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                time_page(browser, url, args.out / "home.png")  # the server's first import of the app
                timings = {}
                for visit in ("first", "again"):  # a first visit pays each page's imports, once per server
                    for name in pages:
                        row = time_page(browser, f"{url}/{name}", args.out / f"{name}-{visit}.png")
                        timings.setdefault(name, {})[visit] = row
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    (args.out / "first_touch.json").write_text(json.dumps(timings, indent=1), encoding="utf-8")
    print("| page | first visit (s) | again (s) | results on screen | exceptions |\n|---|---|---|---|---|")
    for name, visits in timings.items():
        first, again = visits["first"], visits["again"]
        print(
            f"| {name} | {first['seconds']} | {again['seconds']} | {again['results_on_screen']} "
            f"| {first['exceptions'] + again['exceptions']} |"
        )
    rows = [row for visits in timings.values() for row in visits.values()]
    return 0 if all(row["results_on_screen"] and not row["exceptions"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
