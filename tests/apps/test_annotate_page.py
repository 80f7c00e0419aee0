"""The Annotate page under AppTest: name first, then one leased item at a time, decisions saved once."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from playground.store import Store, default_url
from tests.apps.conftest import APP_FILE
from tests.test_store import make_items

PAGE = "views/annotate.py"


@pytest.fixture
def store(playground_home):
    """The store the page opens (the runs root's database), with four items; img-3 is the most uncertain."""
    with Store(default_url()) as opened:
        opened.enqueue("fashion", make_items(4))
        yield opened


def open_page(name: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(str(APP_FILE), default_timeout=60)
    at.query_params.update(query)
    at.run()
    at.switch_page(PAGE).run()
    if name:
        at.text_input(key="annotator").input(name).run()
    assert not at.exception
    return at


def shown(at: AppTest) -> str:
    """The external id of the item on screen (the image caption)."""
    return at.image[0].captions[0]


def test_nothing_happens_until_a_name_is_given_and_an_empty_store_says_so(playground_home):
    at = open_page()
    assert "Type your name" in at.info[0].value and not at.main.selectbox
    at.text_input(key="annotator").input("alice").run()
    assert not at.exception
    assert "No annotation queue yet" in at.info[0].value and not at.main.button


def test_accept_is_saved_once_and_the_next_item_is_shown(store):
    at = open_page("alice")
    assert at.selectbox(key="queue").value == "fashion" and shown(at) == "img-3"
    assert at.metric[0].label == "Waiting" and at.metric[0].value == "3"  # one is leased to alice
    at.button(key="ann_accept").click().run()
    assert not at.exception and not at.error
    (decision,) = store.history("fashion")
    assert (decision.external_id, decision.annotator, decision.action, decision.label) == (
        "img-3",
        "alice",
        "accept",
        0,
    )
    assert at.toast[0].value == "Accepted img-3 as cat"
    assert shown(at) == "img-2" and "1 of 4 decided" in at.get("progress")[0].proto.text
    at.run()  # a rerun records nothing new
    assert len(store.history("fashion")) == 1
    table = at.table[0].value
    assert list(table["item"]) == ["img-3"] and list(table["annotator"]) == ["alice"]


def test_correct_skip_ood_and_undo_from_the_buttons(store):
    at = open_page("bob")
    at.button(key="ann_digit_2").click().run()  # img-3 corrected to bird
    at.selectbox(key="ann_label_3").select(1).run()
    at.button(key="ann_correct").click().run()  # img-2 corrected to dog
    at.button(key="ann_skip").click().run()  # img-1 back to the queue
    at.button(key="ann_ood").click().run()  # img-0 flagged
    assert not at.exception and not at.error
    assert [(d.external_id, d.action, d.label) for d in reversed(store.history("fashion"))] == [
        ("img-3", "correct", 2),
        ("img-2", "correct", 1),
        ("img-1", "skip", None),
        ("img-0", "ood", None),
    ]
    assert shown(at) == "img-1"  # only the skipped item is left
    at.button(key="ann_undo").click().run()
    assert not at.exception
    assert shown(at) == "img-0" and at.toast[0].value == "Undone: Flagged as OOD img-0"
    assert store.history("fashion")[0].undone and store.progress("fashion")["done"] == 2


def test_the_name_and_queue_come_from_the_url_and_a_finished_queue_says_so(store):
    for _ in range(4):
        item = store.lease_next("fashion", "carol")
        store.submit(f"r-{item.external_id}", item.escalation_id, "carol", "accept")
    at = open_page(annotator="dave", queue="fashion")
    assert at.text_input(key="annotator").value == "dave"
    assert "Nothing left to review" in at.success[0].value and not at.image
    assert len(at.table[0].value) == 4
    at.button(key="ann_undo").click().run()
    assert at.toast[0].value == "Nothing to undo"


def test_a_decision_on_an_item_taken_by_someone_else_is_a_one_line_error(store):
    at = open_page("alice")
    assert shown(at) == "img-3"
    later = time.time() + 3600  # alice's lease has run out and erin took the item
    taken = store.lease_next("fashion", "erin", now=later)
    store.submit("erin-1", taken.escalation_id, "erin", "ood", now=later)
    at.button(key="ann_accept").click().run()
    assert not at.exception
    assert "already decided (ood) by erin" in at.error[0].value and "\n" not in at.error[0].value
    assert [d.annotator for d in store.history("fashion")] == ["erin"]


def test_a_blank_name_is_no_name_and_a_name_is_stripped(store):
    at = open_page(" ")
    assert "Type your name" in at.info[0].value and not at.main.button
    at.text_input(key="annotator").input("  alice ").run()
    at.button(key="ann_accept").click().run()
    assert not at.exception and [d.annotator for d in store.history("fashion")] == ["alice"]
    assert store.annotators() == ["alice"]
