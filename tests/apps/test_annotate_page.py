"""The Annotate page under AppTest: name first, then one leased item at a time, decisions saved once."""

from __future__ import annotations

import base64
import io
import json
import socket
import time

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from playground.store import QueueItem, Store, default_url
from tests.apps.conftest import APP_FILE
from tests.conftest import REPO
from tests.test_store import make_items

PAGE = "views/annotate.py"


@pytest.fixture
def store(playground_home):
    """The store the page opens (the runs root's database), with four items; img-3 is the most uncertain."""
    with Store(default_url()) as opened:
        opened.enqueue("fashion", make_items(4))
        yield opened


def open_page(name: str | None = None, history: bool = False, **query) -> AppTest:
    """The page, with the name typed in and the "Who decided what" expander open when asked."""
    at = AppTest.from_file(str(APP_FILE), default_timeout=60)
    at.query_params.update(query)
    at.run()
    at.session_state["ann_history"] = history
    at.switch_page(PAGE).run()
    if name:
        at.text_input(key="annotator").input(name).run()
    assert not at.exception
    return at


def shown(at: AppTest) -> str:
    """The external id of the item on screen (the image caption)."""
    return at.image[0].captions[0]


QUICK = "playground run recipes/active_fashion.toml --preset quick"


def page_links(at: AppTest) -> list:
    return at.main.get("page_link")


def test_an_empty_store_says_which_preset_fills_a_queue_with_a_link_and_the_command(playground_home):
    at = open_page()
    hint = at.info[0].value
    assert hint.startswith("No annotation queue yet") and "`recipes/active_fashion.toml`" in hint
    assert "**quick**" in hint and "queue **fashion**" in hint
    (link,) = page_links(at)
    assert link.proto.page == "active" and "Active learning" in link.proto.label
    assert [c.value for c in at.code] == [QUICK]
    assert not at.main.text_input and not at.main.selectbox and not at.main.button  # nothing to annotate


def test_nothing_happens_until_a_name_is_given(store):
    at = open_page()
    assert "Type your name" in at.info[0].value and not at.main.selectbox and not at.main.button
    at.text_input(key="annotator").input("alice").run()
    assert not at.exception and at.selectbox(key="queue").value == "fashion"


def running_job(args: list[str]) -> int:
    """A running job row (no worker: its heartbeat is fresh and it has no process to check)."""
    from playground.jobs import Jobs
    from playground.store_schema import jobs

    now = time.time()
    values = dict(
        title="Active learning: quick",
        args=json.dumps(args),
        status="running",
        host=socket.gethostname(),
        error="",
        progress=json.dumps(
            {"stage": "bald (scratch)", "stages": 4, "index": 2, "elapsed": 30.0, "left": 60.0}
        ),
        cancel_requested=0,
        created_at=now,
        started_at=now,
        heartbeat_at=now + 600,  # stays fresh while the test runs
    )
    store = Jobs().store
    return store.write(lambda conn: conn.execute(insert(jobs).values(**values)).inserted_primary_key[0])


def test_an_active_learning_job_on_its_way_is_shown_with_its_progress(playground_home):
    from playground.jobs import Jobs

    job_id = running_job([str(REPO / "recipes" / "active_fashion.toml"), "--preset", "quick"])
    running_job([str(REPO / "recipes" / "classify_fashion.toml"), "--preset", "quick"])  # fills no queue
    at = open_page()
    (line,) = [i.value for i in at.info if i.value.startswith("On its way")]
    assert line == (
        f"On its way: job {job_id} (Active learning: quick) fills queue **fashion**: "
        f"{Jobs().get(job_id).describe()}"
    )
    assert "bald (scratch) · stage 2 of 4" in line


def test_accept_is_saved_once_and_the_next_item_is_shown(store):
    at = open_page("alice", history=True)
    assert at.selectbox(key="queue").value == "fashion" and shown(at) == "img-3"
    counts = "3 waiting · 1 in review · 0 decided · 0 flagged OOD"  # one is leased to alice
    assert counts in [c.value for c in at.caption]
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
    at = open_page(history=True, annotator="dave", queue="fashion")
    assert at.text_input(key="annotator").value == "dave"
    assert "Nothing left to review" in at.success[0].value and not at.image
    assert len(at.table[0].value) == 4
    assert "To add more to **fashion**" in at.info[0].value and [c.value for c in at.code] == [QUICK]
    assert [link.proto.page for link in page_links(at)] == ["active"]
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


def test_a_queue_filled_by_an_active_learning_run_links_back_to_it(playground_home):
    from playground.active.experiment import Config, run
    from tests.active.test_experiment import TINY

    result = run(Config(**TINY))  # fills queue digits-review, its items under the run folder's name
    at = open_page("alice", queue="digits-review")
    assert at.selectbox(key="queue").value == "digits-review"
    back = [c.value for c in at.caption if "from active-learning run" in c.value]
    total = Store().progress("digits-review")["total"]
    assert back == [f"{total} items from active-learning run **{result.run_dir.name}**."]
    (link,) = [link for link in page_links(at) if link.proto.page == "active"]
    assert link.proto.label == "See that run" and link.proto.query_string == f"run={result.run_dir.name}"


def test_a_queue_filled_by_an_unknown_model_names_it_without_a_link(playground_home):
    with Store(default_url()) as store:
        store.enqueue("fashion", make_items(2), model="someone-elses-model")
    at = open_page("alice")
    assert any("Filled by `someone-elses-model`" in c.value for c in at.caption)
    assert not page_links(at)


def shown_pixels(at: AppTest) -> np.ndarray:
    """The image on screen, decoded from the data URL it comes in."""
    url = at.image[0].proto.imgs[0].url
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_the_image_comes_at_its_own_size_in_the_message_and_the_browser_enlarges_it(store):
    big = np.random.default_rng(0).random((300, 450, 3))  # float RGB wider than shown: sent 224 wide
    store.enqueue(
        "photos", [QueueItem("photo", big, [0.5, 0.3, 0.2], uncertainty=1.0, class_names=list("abc"))]
    )
    at = open_page("alice", queue="fashion")
    assert np.array_equal(shown_pixels(at), make_items(4)[3].image)  # the 8x8 pixels, not enlarged
    at.selectbox(key="queue").select("photos").run()
    assert shown(at) == "photo" and shown_pixels(at).shape == (149, 224, 3)


def test_the_history_is_drawn_only_while_open_and_the_exports_only_on_click(store, monkeypatch):
    built = []
    monkeypatch.setattr(Store, "labels_csv", lambda self, queue: built.append(queue) or "")
    monkeypatch.setattr(Store, "labels_json", lambda self, queue: built.append(queue) or "")
    at = open_page("alice")
    at.button(key="ann_accept").click().run()
    assert [e.label for e in at.expander] == ["Who decided what", "Export labels"]
    assert not at.table and not [c for c in at.caption if c.value == "No decisions yet."]
    assert len(at.get("download_button")) == 2 and built == []  # not built on a rerun
    assert len(store.history("fashion")) == 1


def test_the_3d_pages_frame_queues_are_not_listed_here(store):
    from playground.pointcloud.frame_queue import queue_name

    store.enqueue(queue_name("velodyne"), make_items(2))
    at = open_page("ann")
    assert at.selectbox(key="queue").options == ["fashion"]
