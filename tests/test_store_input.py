"""Hostile input to every public entry point of the annotation store, its accounts and its job list,
on SQLite and PostgreSQL: NUL bytes and control characters in names, text or floats where ids belong,
NaN, infinite or huge numbers, wrong types, probabilities that do not sum to 1. Each is refused with
one bounded error line before any SQL runs (a raw psycopg or sqlite3 error, a TypeError or an
OverflowError escaped before), and the refusal leaves the database as it was."""

from __future__ import annotations

import numpy as np
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, insert, select

import playground.accounts as accounts_module
import playground.store_records as store_records
from playground.accounts import SIGN_IN_FAILED, Accounts
from playground.errors import AccessError, DataFormatError, PlaygroundError, StoreError
from playground.jobs import Jobs
from playground.store import QueueItem, Store
from playground.store_schema import annotators, audit, decisions, jobs, queues, samples
from tests.test_store import make_items

CLASSES = ["cat", "dog", "bird"]
NUL, CONTROL, LONG = "a\x00b", "a\x1b[2Jb", "y" * 100_000


def item(name, probs=(0.2, 0.3, 0.5), **change) -> QueueItem:
    fields = dict(image=np.zeros((4, 4), np.uint8), probs=list(probs), uncertainty=0.5, class_names=CLASSES)
    return QueueItem(name, **{**fields, **change})


@pytest.fixture
def store(store_url):
    with Store(store_url) as opened:
        opened.enqueue("q", [item("x1"), item("x2")])
        yield opened


def count(store: Store, table) -> int:
    return store.read(lambda conn: conn.execute(select(func.count()).select_from(table)).scalar())


def refused(error, call, *args, match: str = "", **kwargs) -> str:
    """``call(*args, **kwargs)`` raises ``error`` with one short line containing ``match``."""
    with pytest.raises(error) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert match in message and "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.parametrize("name", [NUL, CONTROL, "tab\there", 5, ["alice"]])
def test_a_name_with_a_nul_byte_or_a_control_character_or_not_text_is_refused_everywhere(store, name):
    why = "control character" if isinstance(name, str) else "must be text"
    item_id = store.lease_next("q", "ann").escalation_id
    refused(StoreError, store.register_annotator, name, match=why)
    refused(StoreError, store.lease_next, "q", name, match=why)
    refused(StoreError, store.submit, "r1", item_id, name, "accept", match=why)
    refused(StoreError, store.submit, name, item_id, "ann", "accept", match=why)
    refused(StoreError, store.undo_last, "q", name, match=why)
    refused(StoreError, store.enqueue, name, [item("x3")], match=why)
    refused(StoreError, store.enqueue, "q", [item(name)], match=why)
    refused(StoreError, store.enqueue, "q", [item("x4")], model=name, match=why)
    refused(StoreError, store.create_queue, "new", ["cat", name], match=why)
    refused(StoreError, Accounts(store).add, name, "password123", match=why)
    refused(StoreError, Accounts, store, acting_as=name, match=why)
    assert store.annotators() == ["ann"] and store.queues() == ["q"] and count(store, samples) == 2


@pytest.mark.parametrize("name", [NUL, LONG, 5, ["q"], None])
def test_looking_up_a_name_no_row_can_have_says_not_found(store, name):
    for call in (store.class_names, store.progress, store.history, store.labels, store.queue_items):
        refused(StoreError, call, name, match="no annotation queue named")
    refused(StoreError, store.set_redundancy, name, 2, match="no annotation queue named")
    refused(StoreError, store.reprioritise, name, {"x1": 1.0}, match="no annotation queue named")
    accounts = Accounts(store)
    accounts.add("admin", "password123", "admin")
    assert accounts.user(name) is None
    refused(AccessError, accounts.queues_for, name, match="is not an enabled account")
    refused(AccessError, accounts.authenticate, name, "password123", match=SIGN_IN_FAILED)
    refused(StoreError, accounts.disable, name, match="no account named")
    refused(StoreError, accounts.grant, name, "q", match="no account named")
    refused(StoreError, accounts.grant, "admin", name, match="no annotation queue named")
    assert store.reprioritise("q", {name if isinstance(name, str) else "x9": 1.0}) == 0
    assert accounts.grant("admin", " q ") and accounts.user("admin").queues == ("q",)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts_module, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def test_a_password_that_is_not_text_signs_nobody_in(store):
    accounts = Accounts(store)
    accounts.add("alice", "12345678")
    refused(AccessError, accounts.authenticate, "alice", 12345678, match=SIGN_IN_FAILED)
    refused(AccessError, accounts.authenticate, "alice", None, match=SIGN_IN_FAILED)
    assert accounts.authenticate(" alice ", "12345678").name == "alice"


BAD_IDS = [float("nan"), float("inf"), 1.7, "1", True, None, 0, -1, 2**31, 10**30, [1]]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_an_item_or_job_id_must_be_a_whole_number_in_range(store, bad):
    leased = store.lease_next("q", "ann")
    refused(StoreError, store.item, bad, match="an item id must be a whole number from 1 to 2147483647")
    refused(StoreError, store.submit, "r", bad, "ann", "accept", match="an item id must be")
    job_list = Jobs(store=store)
    refused(StoreError, job_list.get, bad, match="a job id must be a whole number")
    refused(StoreError, job_list.cancel, bad, match="a job id must be a whole number")
    assert count(store, audit) == 3  # enqueue, register ann, lease: the refusals wrote nothing
    assert store.item(np.int64(leased.escalation_id)).status == "leased"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, 10**30, 1e300, "5", None, True])
def test_a_row_limit_must_be_a_whole_number_in_range(store, bad):
    refused(StoreError, store.history, "q", limit=bad, match="the limit must be a whole number from 0")
    refused(StoreError, store.audit_trail, limit=bad, match="the limit must be")
    refused(StoreError, Jobs(store=store).list, limit=bad, match="the limit must be")
    assert store.history("q", limit=0) == [] and len(store.audit_trail(limit=1)) == 1


@pytest.mark.parametrize("bad", [1e30, -1.0, 2.6e11, "100", True, float("nan")])
def test_a_time_outside_1970_to_9999_or_not_a_number_is_refused(store, bad):
    message = "a time must be a finite number of seconds from 0 to 253402300799"
    refused(StoreError, store.enqueue, "q", [item("x3")], now=bad, match=message)
    refused(StoreError, store.lease_next, "q", "ann", now=bad, match=message)
    refused(StoreError, store.submit, "r", 1, "ann", "accept", now=bad, match=message)
    refused(StoreError, store.reprioritise, "q", {"x1": 2.0}, now=bad, match=message)
    refused(StoreError, store.progress, "q", now=bad, match=message)
    refused(StoreError, Jobs(store=store).reap, now=bad, match=message)
    refused(StoreError, store.lease_next, "q", "ann", lease_seconds=bad, match="a lease lasts")
    # nothing was leased for ever: two annotators still get the two items
    assert {store.lease_next("q", who).external_id for who in ("ann", "bob")} == {"x1", "x2"}
    assert [row["label"] for row in store.labels("q")] == []


@pytest.mark.parametrize(
    "items, message",
    [
        (None, "enqueue takes a list of QueueItem records, got NoneType"),
        ("x3", "enqueue takes a list"),
        ({"external_id": "x3"}, "enqueue takes a list"),
        ([None], "a queue takes QueueItem records, got NoneType"),
        ([{"external_id": "x3"}], "got dict"),
        ([item("x3", probs=(1, 1, 1))], "class probabilities must sum to 1, these sum to 3"),
        ([item("x3", probs=(0, 0, 0))], "sum to 0"),
        ([item("x3", class_names="abc")], "class names must be a list of names, got str"),
        ([item("x3", class_names=["cat", "dog", "cat"])], "two or more distinct class names"),
        ([item("x3", meta=[1, 2])], "meta must be a dict, got list"),
        ([item("x3", uncertainty=None)], "uncertainty and disagreement must be finite numbers"),
        ([item("x3", uncertainty="0.5")], "must be finite numbers"),
        ([item("x3", disagreement=10**400)], "must be finite numbers"),
        ([item("x3", image=np.zeros((4, 4), complex))], "real pixel values, got dtype complex128"),
        ([item("x3", image="pixels")], "real pixel values"),
        ([item("x3", image=np.zeros((64, 64), np.float32))], "takes 16,384 bytes; at most 10,000 are stored"),
    ],
)
def test_enqueue_refuses_what_is_not_a_list_of_good_items_and_adds_nothing(
    store, monkeypatch, items, message
):
    monkeypatch.setattr(store_records, "MAX_IMAGE_BYTES", 10_000)  # a 64x64 float image is 16,384 bytes
    refused(DataFormatError, store.enqueue, "q", items, match=message)
    assert count(store, samples) == 2
    assert store.enqueue("q", [item("x3", probs=np.float32([0.1, 0.2, 0.7]))]) == 1  # float32 rounding


def test_class_lists_priorities_and_exports_get_one_clear_error(store, tmp_path):
    refused(DataFormatError, store.create_queue, "new", None, match="class names must be a list")
    refused(DataFormatError, store.create_queue, "new", "ab", match="got str")
    refused(DataFormatError, store.reprioritise, "q", None, match="priorities must map external ids")
    refused(DataFormatError, store.reprioritise, "q", [("x1", 2.0)], match="got list")
    for bad in (None, "2", float("nan"), True):
        refused(DataFormatError, store.reprioritise, "q", {"x1": bad}, match="finite numbers")
    assert store.queues() == ["q"] and store.queue_items("q")[0]["priority"] == 0.5
    refused(StoreError, store.export_csv, "q", tmp_path, match=f"cannot write the labels to {tmp_path}")
    refused(StoreError, store.export_json, "q", tmp_path / "no" / "labels.json", match="No such file")


def test_a_job_needs_text_without_nul_bytes_and_starts_nothing_otherwise(store):
    job_list = Jobs(store=store)
    for args, title in ((["run.toml"], None), (["run.toml"], NUL), (["a\x00b"], "t"), ("run.toml", "t")):
        refused(PlaygroundError, job_list.submit, args, title)
    assert count(store, jobs) == 0


def test_a_value_the_server_still_refuses_is_one_store_error(store):
    """The last line of defence: a value that got past the checks and that the database refuses."""
    write = insert(annotators).values(name=NUL, created_at=0.0)
    if store.engine.dialect.name == "sqlite":  # SQLite keeps a NUL byte
        store.write(lambda conn: conn.execute(write))
        assert count(store, annotators) == 1
    else:
        refused(StoreError, store.write, lambda conn: conn.execute(write), match="NUL")
        assert count(store, annotators) == 0


def test_a_file_that_is_not_a_database_is_one_store_error(tmp_path):
    path = tmp_path / "labels.db"
    path.write_bytes(b"these are not the droids you are looking for" * 100)
    refused(StoreError, Store, f"sqlite:///{path}", match="failed: file is not a database")
    refused(StoreError, Store, f"sqlite:///{tmp_path}/a\x00b.db", match="it holds a NUL byte")


@pytest.mark.parametrize(
    "url",
    ["nodb+nodriver://alice:s3cret@host/db", "postgresql://alice:s3cret@host:port/db", "alice:s3cret@host"],
)
def test_a_database_url_that_cannot_be_used_is_one_error_that_never_shows_its_password(url):
    from playground.store_schema import open_engine

    with pytest.raises(StoreError, match="cannot use the database URL") as caught:
        open_engine(url)
    assert "s3cret" not in str(caught.value) and "alice:***@" in str(caught.value)


@pytest.mark.parametrize("length", [float("nan"), float("inf"), -5.0, 8 * 24 * 3600.0])
def test_a_lease_that_would_never_end_or_never_start_is_refused(store, length):
    store.enqueue("q", make_items(2))
    with pytest.raises(StoreError, match="a lease lasts 0 to 604800 seconds"):
        store.lease_next("q", "ann", lease_seconds=length)
    with pytest.raises(StoreError, match="a lease lasts"):
        store.undo_last("q", "ann", lease_seconds=length)
    with pytest.raises(StoreError, match="a time must be a finite number"):
        store.lease_next("q", "ann", now=float("nan"))
    item = store.lease_next("q", "ann", lease_seconds=60.0)  # nothing was locked by the refusals
    other = store.lease_next("q", "bob", lease_seconds=60.0)
    assert item is not None and other.escalation_id != item.escalation_id


def test_a_queue_is_found_by_the_name_it_was_made_with_and_unknown_names_get_a_bounded_error(store):
    store.enqueue("  spaced  ", make_items(1))
    assert store.lease_next(" spaced", "ann") is not None  # stripped on lookup as on creation
    with store.engine.begin() as conn:  # names an older playground let in: a newline, 70 characters
        for index in range(12):
            name = f"odd\nname {index:02d} " + "x" * 60
            conn.execute(insert(queues).values(name=name, class_names='["a", "b"]', created_at=0.0))
    with pytest.raises(StoreError) as refused:
        store.lease_next("nope", "ann")
    message = str(refused.value)
    hidden = len(store.queues()) - 10  # ten names are listed
    assert "\n" not in message and f"and {hidden} more" in message and len(message) < 700


@pytest.mark.parametrize(
    "action, label, message",
    [
        ("correct", None, "class index from 0 to 2"),
        ("correct", 3, "got 3"),
        ("correct", -1, "got -1"),
        ("correct", True, "got True"),
        ("correct", "1", "got '1'"),
        ("approve", None, "unknown action 'approve'"),
    ],
)
def test_bad_actions_and_labels_are_refused_with_a_clear_error(store, action, label, message):
    store.enqueue("q", make_items(1))
    item = store.lease_next("q", "alice")
    with pytest.raises(StoreError, match=message):
        store.submit("r", item.escalation_id, "alice", action, label=label)
    assert count(store, decisions) == 0 and store.item(item.escalation_id).status == "leased"


def test_unknown_queues_items_and_empty_names_are_clear_errors(store):
    store.enqueue("q", make_items(1))
    with pytest.raises(StoreError, match="no annotation queue named 'nope' \\(queues: q\\)"):
        store.lease_next("nope", "alice")
    with pytest.raises(StoreError, match="no escalated item with id 99"):
        store.submit("r", 99, "alice", "accept")
    with pytest.raises(StoreError, match="annotator name must be 1 to 64"):
        store.register_annotator("   ")
    with pytest.raises(StoreError, match="annotator name"):
        store.lease_next("q", "x" * 65)
    assert store.register_annotator("  zoe ") == "zoe" and store.annotators() == ["zoe"]
