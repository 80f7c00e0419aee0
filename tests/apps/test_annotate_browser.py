"""End to end: an annotator makes three decisions from the keyboard in a real browser, reloads the
page, and finds them stored and listed (the server fixtures come from ``test_browser``)."""

from __future__ import annotations

import numpy as np
import pytest

from playground.store import QueueItem, Store, default_url
from tests.apps.test_browser import app_url, browser_page, settle  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress"]
SCREENSHOT = "/tmp/annotate_shot.png"


def ring(radius: float, size: int = 28) -> np.ndarray:
    """A soft grey ring on black, as a (size, size) float image."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    return np.clip(1.5 - np.abs(np.hypot(yy, xx) - radius), 0, 1)


def seed_queue(count: int = 6) -> Store:
    """``count`` 28x28 items in the server's store; item-(count-1) is the most uncertain."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        probs = rng.dirichlet(np.ones(len(CLASSES)))
        items.append(
            QueueItem(
                f"item-{i}",
                ring(4 + 1.5 * i),
                probs,
                uncertainty=0.1 * (i + 1),
                disagreement=0.05 * i,
                reason="ood" if i == count - 2 else "uncertain",
                class_names=CLASSES,
            )
        )
    store = Store(default_url())
    store.enqueue("fashion-uncertain", items, model="ensemble")
    return store


def press(page, key: str, next_item: str) -> None:
    """Once no script runs, press ``key`` and wait until ``next_item`` is on screen."""
    from playwright.sync_api import expect

    settle(page)
    page.keyboard.press(key)
    expect(page.get_by_test_id("stImage").get_by_text(next_item, exact=True)).to_be_visible()
    settle(page)


def test_three_keyboard_decisions_survive_a_reload(app_url, browser_page, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    store = seed_queue()
    page = browser_page
    page.goto(app_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Annotate").click()
    expect(page.get_by_text("Type your name to start annotating.")).to_be_visible()
    page.get_by_role("textbox", name="Your name").fill("alice")
    page.get_by_role("textbox", name="Your name").press("Enter")
    expect(page.get_by_test_id("stImage").get_by_text("item-5", exact=True)).to_be_visible()
    settle(page)
    page.get_by_role("heading", name="Annotate").click()  # keys go to the page, not the name field
    expect(page.get_by_role("textbox", name="Your name")).not_to_be_focused()
    press(page, "a", "item-4")  # accept
    press(page, "o", "item-3")  # flag item-4 as OOD
    press(page, "2", "item-2")  # correct item-3 to Trouser
    decided = [(d.external_id, d.annotator, d.action) for d in reversed(store.history("fashion-uncertain"))]
    assert decided == [
        ("item-5", "alice", "accept"),
        ("item-4", "alice", "ood"),
        ("item-3", "alice", "correct"),
    ]
    assert store.labels("fashion-uncertain")[-1]["class_name"] == "Trouser"

    page.reload()
    expect(page.get_by_role("textbox", name="Your name")).to_have_value("alice")  # kept in the URL
    settle(page)
    page.get_by_text("Who decided what", exact=True).click()  # drawn once opened
    table = page.get_by_test_id("stTable")
    for item in ("item-5", "item-4", "item-3"):
        expect(table.get_by_text(item, exact=True)).to_be_attached()
    expect(page.get_by_test_id("stImage").get_by_text("item-2", exact=True)).to_be_visible()  # still alice's
    expect(page.get_by_text("3 of 6 decided")).to_be_visible()
    settle(page)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert len(store.history("fashion-uncertain")) == 3
    page.set_viewport_size({"width": 1400, "height": 1700})  # the app scrolls inside its own container
    settle(page)
    page.screenshot(path=SCREENSHOT, full_page=True)
    page.screenshot(path=str(tmp_path / "annotate.png"), full_page=True)
