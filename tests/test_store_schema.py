"""Opening the store: SQLite files created by several stores at the same moment."""

from __future__ import annotations

import threading

from playground.store import Store


def open_at_once(url: str, count: int) -> list[Exception]:
    """``count`` threads open a Store on ``url`` at the same moment; the errors they met."""
    start, errors = threading.Barrier(count), []

    def open_store():
        start.wait()
        try:
            with Store(url) as store:
                store.queues()
        except Exception as err:  # noqa: BLE001 - collected and returned
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_stores_opened_at_once_on_a_new_sqlite_file_all_open(tmp_path):
    """Switching a new file to WAL fails at once (not after the busy timeout) while another
    connection opens it; every store must still open (4 scorers at once failed 1 run in 6)."""
    for attempt in range(12):
        errors = open_at_once(f"sqlite:///{tmp_path}/fresh-{attempt}.db", 6)
        assert errors == [], f"attempt {attempt}: {errors[0]}"
