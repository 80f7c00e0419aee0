"""Benchmark the 3D cuboid viewer in headless Chromium: how fast a frame appears, and the orbit's fps.

    .venv/bin/python scripts/bench_viewer.py                       # 100k points, 5 s orbit
    .venv/bin/python scripts/bench_viewer.py --points 20000,100000,200000 --seconds 8
    .venv/bin/python scripts/bench_viewer.py --chromium-arg=--use-angle=gl-egl   # another WebGL backend

It starts ``streamlit run apps/app.py`` on a free localhost port (with a scratch PLAYGROUND_HOME,
so no annotation database is touched), opens ``/pointcloud?cub_points=<N/1000>k`` in Debian's Chromium
(``--headless --no-sandbox --disable-gpu --disable-background-networking`` plus any
``--chromium-arg``) and reads the viewer's own counters (``window.__viewerStats``):

- ``viewer/load_ms@N``: from the viewer script's first statement to the first frame drawn with the
  points (the GPU finished), on a second visit (the server has the scene cached);
- ``viewer/load_ms_cold@N``: the same on the first visit of a fresh browser;
- ``viewer/ms_from_navigation@N``: from the page's navigation start to that first frame (second visit);
- ``viewer/orbit_fps@N``: ``window.__viewerOrbit(seconds)``: the camera circles the scene, moving
  every animation frame, as a user's orbit does: the free view draws the motion level of detail's
  adaptive sample of the points (``frontend/src/lod.js``; every point again once the camera stops),
  plus the three orthographic views and the overlay; fps = frames drawn / seconds;
  ``viewer/orbit_points_drawn@N`` is the mean number of points the free view drew per frame;
- ``viewer/orbit_fps_full_detail@N``: the same orbit drawing all N points in every frame.

It writes ``metrics.json`` (``{"metrics", "units"}``), ``context.json`` (the WebGL renderer, the
Chromium flags, the CPU count and load) and ``report.md`` to ``<runs root>/viewer-bench-<time>/``.
Software WebGL (SwiftShader, which headless Chromium uses without a GPU) is much slower than a GPU;
the renderer string says which one ran.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# run as a file, the script sees the repository only once REPO is on sys.path
from playground.core.runs import Metrics, RunDir, metrics_table  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
BASE_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SIZES = (20_000, 50_000, 100_000, 200_000)  # the page's choices


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    """``streamlit run apps/app.py`` on a free port; returns the process and its URL once it answers."""
    port = free_port()
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "apps/app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("streamlit did not start within 90 s")


def visit(page, url: str) -> tuple[object, dict, float]:
    """Open ``url``; wait for the viewer's first frame with points: (frame, stats, ms from navigation)."""
    page.goto(url)
    frame = None
    while frame is None:
        frame = next((f for f in page.frames if "cuboid_viewer" in f.url), None)
        page.wait_for_timeout(20)
    frame.wait_for_function(
        "window.__viewerStats && window.__viewerStats.firstPointsMs", polling=20, timeout=120_000
    )
    stats = frame.evaluate("window.__viewerStats")
    since_navigation = stats["timeOrigin"] + stats["firstPointsMs"] - page.evaluate("performance.timeOrigin")
    return frame, stats, since_navigation


def measure(playwright, url: str, points: int, seconds: float, args: list[str]) -> tuple[Metrics, str]:
    """Cold and warm load times and the orbit's fps for a synthetic scene of about ``points`` points."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        scene = f"{url}/pointcloud?cub_points={points // 1000}k"
        _, cold, _ = visit(page, scene)
        frame, warm, since_navigation = visit(page, scene)
        page.wait_for_timeout(500)
        orbit = frame.evaluate(f"window.__viewerOrbit({seconds}, false)")
        page.wait_for_timeout(300)
        full = frame.evaluate(f"window.__viewerOrbit({seconds}, true)")
    finally:
        browser.close()
    metrics = Metrics()
    metrics.add(f"viewer/points@{points}", warm["pointCount"], "points")
    metrics.add(f"viewer/load_ms_cold@{points}", cold["loadMs"], "ms")
    metrics.add(f"viewer/load_ms@{points}", warm["loadMs"], "ms")
    metrics.add(f"viewer/ms_from_navigation@{points}", since_navigation, "ms")
    metrics.add(f"viewer/orbit_fps@{points}", orbit["fps"], "fps")
    metrics.add(f"viewer/orbit_points_drawn@{points}", orbit["meanPointsDrawn"], "points")
    metrics.add(f"viewer/orbit_fps_full_detail@{points}", full["fps"], "fps")
    metrics.add(f"viewer/orbit_frames@{points}", orbit["frames"], "frames")
    return metrics, orbit["renderer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="100000", help=f"comma-separated scene sizes, from {SIZES}")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the scripted orbit")
    parser.add_argument(
        "--chromium-arg", action="append", default=[], help="an extra Chromium flag (repeatable)"
    )
    parser.add_argument(
        "--out", default=None, help="runs root for the result folder (default: $PLAYGROUND_HOME or ./runs)"
    )
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    sizes = [int(p) for p in options.points.split(",")]
    if not set(sizes) <= set(SIZES):
        parser.error(f"--points: the page offers the scene sizes {SIZES}")
    args = BASE_ARGS + options.chromium_arg
    metrics, renderer = Metrics(), ""
    with tempfile.TemporaryDirectory() as scratch:
        server, url = start_server(Path(scratch))
        try:
            with sync_playwright() as playwright:
                for points in sizes:
                    found, renderer = measure(playwright, url, points, options.seconds, args)
                    metrics.values.update(found.values)
                    metrics.units.update(found.units)
        finally:
            server.terminate()
            server.wait(timeout=15)
    write_results(
        metrics,
        {
            "renderer": renderer,
            "chromium_args": args,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "orbit_seconds": options.seconds,
        },
        options.out,
    )


def write_results(metrics: Metrics, context: dict, out: str | None) -> None:
    run = RunDir.create("viewer-bench", out)
    run.write_metrics(metrics)
    run.write_json("context.json", context)
    run.write_report(
        f"# Cuboid viewer benchmark\n\nWebGL renderer: `{context['renderer']}`  \n"
        f"Chromium flags: `{' '.join(context['chromium_args'])}`  \n"
        f"CPUs: {context['cpus']}, load average {context['load_average'][0]:.2f}\n\n"
        f"{metrics_table(metrics)}\n"
    )
    print(json.dumps({**metrics.to_json(), "context": context}, indent=2))
    print(f"written to {run.path}")


if __name__ == "__main__":
    main()
