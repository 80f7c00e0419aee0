"""End to end: the 3D cuboid viewer in headless Chromium (the server and browser fixtures come from
``test_browser``).

The round trip of issue 7: load a scene, accept a proposal, place a new cuboid, resize it by dragging
a handle in the top view (a real mouse drag inside the component's iframe), commit, reload, and find
both cuboids with the right dimensions in the database. The speed targets (a 100k-point frame on screen
within 2 s, a scripted orbit at >= 30 fps) are measured by ``scripts/bench_viewer.py``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from playground.pointcloud import SceneSpec, make_scene, points_in_box, propose
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.cuboid import to_local
from playground.pointcloud.proposals import DEFAULT_SIZES, ground_plane
from playground.pointcloud.viewer import synthetic_frame_name
from playground.store import Store, default_url
from tests.apps.test_browser import app_url, browser_page, settle  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SPEC = SceneSpec()  # the page's default scene: seed 0, about 100k points
FRAME = synthetic_frame_name(SPEC)
SCREENSHOT = "/tmp/pointcloud_page.png"
DRAG_PX = 48


def open_viewer(page, url: str | None):
    """Go to the page (reload it when ``url`` is None); return the viewer's frame once it has drawn
    the points, and the wall seconds that took."""
    began = time.perf_counter()
    page.goto(f"{url}/pointcloud") if url else page.reload()
    frame = page.wait_for_selector('iframe[src*="cuboid_viewer"]', timeout=120_000).content_frame()
    frame.wait_for_function("window.__viewerStats && window.__viewerStats.firstPointsMs", polling=20)
    return frame, time.perf_counter() - began


def state(frame) -> dict:
    return frame.evaluate("window.__viewerDebug.state()")


def iframe_origin(page) -> tuple[float, float]:
    box = page.locator('iframe[src*="cuboid_viewer"]').bounding_box()
    return box["x"], box["y"]


def press(page, frame, key: str, until: str) -> dict:
    """Press ``key`` in the viewer and wait until the JS condition ``until`` (on ``s``, the state) holds."""
    page.keyboard.press(key)
    frame.wait_for_function(f"(s => {until})(window.__viewerDebug.state())")
    return state(frame)


def free_ground_spot(frame, page, selected_center) -> tuple[float, float, float, float, float]:
    """A ground point away from every object and on screen in the free view, away from the gizmo:
    ``(x, y, z, page_x, page_y)``."""
    scene = make_scene(SPEC)
    plane = ground_plane(scene.points)
    things = scene.cuboids + propose(scene.points)
    gizmo = frame.evaluate("c => window.__viewerDebug.project(c)", list(selected_center))
    ox, oy = iframe_origin(page)
    free = frame.evaluate(
        "(() => { const r = document.getElementById('free').getBoundingClientRect();"
        " return [r.width, r.height]; })()"
    )
    for x in np.arange(-6.0, 20.0, 1.0):
        for y in np.arange(-12.0, 12.0, 1.0):
            if min(footprint_distance(x, y, b) for b in things) < 3.0:
                continue
            z = -(plane[0] * x + plane[1] * y + plane[3]) / plane[2]
            at = frame.evaluate("c => window.__viewerDebug.project(c)", [x, y, z])
            inside = 0.15 * free[0] < at["x"] < 0.85 * free[0] and 0.2 * free[1] < at["y"] < 0.85 * free[1]
            if at["visible"] and inside and math.hypot(at["x"] - gizmo["x"], at["y"] - gizmo["y"]) > 100:
                return float(x), float(y), float(z), ox + at["x"], oy + at["y"]
    raise AssertionError("no free ground spot on screen")


def footprint_distance(x: float, y: float, box) -> float:
    """How far (x, y) is from ``box``'s footprint (0 inside it)."""
    u, v, _ = to_local(np.array([[x, y, box.center[2]]]), box)[0]
    return math.hypot(max(abs(u) - box.size[0] / 2, 0.0), max(abs(v) - box.size[1] / 2, 0.0))


def next_frames(frame, count: int = 2) -> None:
    """Wait until the viewer's page has drawn ``count`` more animation frames (its render loop ran)."""
    frame.evaluate(
        "n => new Promise(done => { const step = k => k ? requestAnimationFrame(() => step(k - 1))"
        " : done(); step(n); })",
        count,
    )


def drag(page, start: tuple[float, float], dx: float, dy: float) -> None:
    """A real mouse drag: press at ``start``, move in steps, release ``(dx, dy)`` pixels away."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + dx, start[1] + dy, steps=8)
    page.mouse.up()


def place_and_resize(page, frame, accepted: dict) -> tuple[dict, float]:
    """N, click on free ground: a car of the default size stands there; then drag its front edge in
    the top view DRAG_PX to the right. Returns the resized box and its expected length."""
    ox, oy = iframe_origin(page)
    x, y, z, px, py = free_ground_spot(frame, page, accepted["center"])
    press(page, frame, "n", "s.placing === 'car'")
    page.mouse.click(px, py)
    placed = frame.wait_for_function(
        "(s => s.boxes.length === 2 && s.boxes[1])(window.__viewerDebug.state())"
    )
    placed = placed.json_value()
    assert placed["label"] == "car" and placed["size"] == list(DEFAULT_SIZES["car"])
    assert math.hypot(placed["center"][0] - x, placed["center"][1] - y) < 0.2
    assert placed["center"][2] == pytest.approx(z + DEFAULT_SIZES["car"][2] / 2, abs=0.01)

    next_frames(frame)  # the render loop fits the top view to the new box: read its handles after that
    handle = frame.evaluate(
        "window.__viewerDebug.handle('top', '+a')"
    )  # the front edge, heading to the right
    scale = frame.evaluate("window.__viewerDebug.scale('top')")  # pixels per metre
    drag(page, (round(ox + handle["x"]), round(oy + handle["y"])), DRAG_PX, 0)
    next_frames(frame)
    resized = state(frame)["boxes"][1]
    length = DEFAULT_SIZES["car"][0] + DRAG_PX / scale
    assert resized["size"] == pytest.approx([length, 1.8, 1.6], abs=1e-6)
    return resized, length


def check_after_reload(page, chosen: dict, resized: dict, length: float):
    """Reload the page: both boxes are in the database and back in the viewer, unchanged; returns the
    viewer's new frame."""
    from playwright.sync_api import expect

    frame, _ = open_viewer(page, None)  # reload: the name stays in the URL
    expect(page.get_by_role("textbox", name="Your name")).to_have_value("alice")
    reloaded = state(frame)
    assert len(reloaded["boxes"]) == 2 and not reloaded["dirty"]
    stored = CuboidAnnotations(Store(default_url())).current("synthetic", FRAME)
    # the accepted box is the proposal the page showed, unchanged
    assert stored[0].center == pytest.approx(chosen["center"]) and stored[0].size == pytest.approx(
        chosen["size"]
    )
    assert stored[0].yaw == pytest.approx(chosen["yaw"]) and stored[0].label == chosen["label"]
    assert stored[1].label == "car" and stored[1].size == pytest.approx((length, 1.8, 1.6), abs=1e-6)
    assert stored[1].yaw == pytest.approx(0.0)
    assert stored[1].center[:2] == pytest.approx((resized["center"][0], resized["center"][1]), abs=1e-9)
    shown = next(
        b for b in reloaded["boxes"] if b["label"] == "car" and b["size"][0] == pytest.approx(length)
    )
    counted = int(points_in_box(make_scene(SPEC).points, stored[1]).sum())
    assert abs(shown["inside"] - counted) <= max(
        2, 0.01 * counted
    )  # the viewer's count agrees with the library's
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    return frame


def test_accept_place_resize_commit_reload(app_url, browser_page):  # noqa: F811
    page = browser_page
    page.set_viewport_size({"width": 1500, "height": 1400})  # the whole viewer on screen, no scrolling
    frame, _ = open_viewer(page, app_url)
    page.get_by_role("textbox", name="Your name").fill("alice")
    page.get_by_role("textbox", name="Your name").press("Enter")
    settle(page)
    ox, oy = iframe_origin(page)
    page.mouse.click(ox + 8, oy + 60)  # focus the viewer (the free view's corner: nothing there)

    proposal = press(
        page, frame, "a", "s.selectedId && s.selectedId.startsWith('p')"
    )  # A: show the next proposal
    chosen = next(p for p in proposal["proposals"] if p["id"] == proposal["selectedId"])
    accepted = press(page, frame, "a", "s.boxes.length === 1")["boxes"][0]  # A again: accept it
    assert accepted["fromProposal"] == chosen["id"] and accepted["size"] == chosen["size"]

    resized, length = place_and_resize(page, frame, accepted)

    page.keyboard.press("Control+s")
    frame.wait_for_function("window.__viewerDebug.state().status.startsWith('Committed revision')")
    annotations = CuboidAnnotations(Store(default_url()))
    stored = annotations.current("synthetic", FRAME)
    assert len(stored) == 2 and annotations.head("synthetic", FRAME).annotator == "alice"

    frame = check_after_reload(page, chosen, resized, length)
    page.mouse.click(ox + 8, oy + 60)
    press(page, frame, "Tab", "s.selectedId !== null")
    press(page, frame, "Tab", "s.selectedId === s.boxes[1].id")  # the resized car, with its handles
    settle(page)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_a_100k_point_frame_loads_and_the_scripted_orbits_report_what_they_drew(app_url, browser_page):  # noqa: F811
    """The measurement hooks the benchmark relies on. The speed targets themselves (on screen within
    2 s, orbit >= 30 fps) are measured by ``scripts/bench_viewer.py`` into metrics.json and its report,
    not asserted here: timings on a shared CI machine do not make a test."""
    frame, _ = open_viewer(browser_page, app_url)
    stats = frame.evaluate("window.__viewerStats")
    full = frame.evaluate("window.__viewerOrbit(1, true)")
    assert stats["pointCount"] >= 100_000 and full["points"] == stats["pointCount"]
    assert 0 < stats["loadMs"] and stats["firstPointsMs"] > 0
    assert full["frames"] > 0 and full["fps"] > 0 and full["renderer"]
    assert full["meanPointsDrawn"] == stats["pointCount"]  # full detail: every point in every frame
    moving = frame.evaluate("window.__viewerOrbit(1)")  # the motion level of detail: a sample while moving
    assert 5000 <= moving["meanPointsDrawn"] <= stats["pointCount"] and moving["frames"] > 0
    next_frames(frame)
    still = frame.evaluate("window.__viewerDebug.pointsDrawn()")
    assert still == stats["pointCount"]  # every point again once the camera stops
