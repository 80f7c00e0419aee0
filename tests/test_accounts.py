"""Accounts: argon2id hashes, sign-in that says nothing about which names exist, roles and the
store's refusal rule, the last admin, the audit trail, and the ``playground users`` / ``app`` commands."""

from __future__ import annotations

import io
import json
import subprocess

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

import playground.accounts as accounts_module
from playground.accounts import SIGN_IN_FAILED, Accounts, Throttle, refusal
from playground.cli import ROLE_CHOICES, main
from playground.errors import AccessError, StoreError
from playground.store import Store, default_url
from playground.store_schema import ROLES, audit, queues, users
from tests.test_store import make_items

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # argon2id too, fast for tests


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts_module, "HASHER", CHEAP)


@pytest.fixture
def store(store_url):
    with Store(store_url) as opened:
        opened.enqueue("fashion", make_items(2))
        opened.enqueue("birds", make_items(2, prefix="bird"))
        yield opened


@pytest.fixture
def accounts(store) -> Accounts:
    return Accounts(store)


def count(store: Store, table) -> int:
    return store.read(lambda conn: conn.execute(select(func.count()).select_from(table)).scalar())


def audit_rows(store: Store) -> list[tuple[str, str, dict]]:
    rows = store.read(
        lambda conn: conn.execute(
            select(audit.c.actor, audit.c.action, audit.c.detail)
            .where(audit.c.entity == "user")
            .order_by(audit.c.id)
        ).all()
    )
    return [(actor, action, json.loads(detail)) for actor, action, detail in rows]


def stored_hash(store: Store, name: str) -> str:
    query = select(users.c.password_hash).where(users.c.name == name)
    return store.read(lambda conn: conn.execute(query).scalar())


def queue_id(store: Store, name: str) -> int:
    return store.read(lambda conn: conn.execute(select(queues.c.id).where(queues.c.name == name)).scalar())


# --------------------------------------------------------------------- passwords and signing in


def test_the_stored_hash_is_argon2id_with_todays_parameters_never_the_password(store):
    accounts = Accounts(store, hasher=PasswordHasher())
    accounts.add("alice", "correct horse", "admin")
    stored = stored_hash(store, "alice")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and "correct horse" not in stored
    user = accounts.authenticate("alice", "correct horse")
    assert (user.name, user.role, user.enabled) == ("alice", "admin", True)
    assert stored_hash(store, "alice") == stored  # no rehash needed


def test_a_wrong_password_and_an_unknown_name_fail_alike(accounts, store):
    accounts.add("alice", "correct horse")
    errors = []
    for name, password in (("alice", "wrong horse"), ("mallory", "correct horse"), ("", "")):
        with pytest.raises(AccessError) as err:
            accounts.authenticate(name, password)
        errors.append(str(err.value))
    assert errors == [SIGN_IN_FAILED] * 3
    assert [action for _, action, _ in audit_rows(store)] == ["add"]  # failures write nothing


def test_a_weaker_hash_is_replaced_at_the_next_sign_in(accounts, store):
    accounts.add("alice", "correct horse")
    assert "m=8,t=1,p=1" in stored_hash(store, "alice")
    stronger = Accounts(store, hasher=PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    stronger.authenticate("alice", "correct horse")
    assert "$argon2id$v=19$m=16,t=2,p=1$" in stored_hash(store, "alice")
    assert audit_rows(store)[-1] == ("alice", "rehash", {"name": "alice"})
    assert accounts.authenticate("alice", "correct horse").name == "alice"  # the new hash verifies


def test_a_disabled_account_cannot_sign_in_until_enabled(accounts):
    accounts.add("alice", "correct horse")
    assert accounts.disable("alice") and not accounts.disable("alice")  # the second changes nothing
    with pytest.raises(AccessError, match="'alice' is disabled"):
        accounts.authenticate("alice", "correct horse")
    with pytest.raises(AccessError, match=SIGN_IN_FAILED):  # without the password: nothing told
        accounts.authenticate("alice", "wrong horse")
    assert accounts.enable("alice")
    assert accounts.authenticate("alice", "correct horse").enabled


@pytest.mark.parametrize(
    "name, password, role, message",
    [
        ("alice", "short", "annotator", "a password must be 8 to 1024 characters long, got 5"),
        ("alice", "x" * 1025, "annotator", "got 1025"),
        ("alice", "long enough", "boss", "unknown role 'boss'; choose one of annotator, reviewer, admin"),
        ("  ", "long enough", "annotator", "the user name must be 1 to 64 characters long"),
        ("a" * 65, "long enough", "annotator", "the user name must be 1 to 64"),
    ],
)
def test_bad_accounts_are_refused_and_nothing_is_written(accounts, store, name, password, role, message):
    with pytest.raises(StoreError, match=message):
        accounts.add(name, password, role)
    assert count(store, users) == 0 and audit_rows(store) == []


def test_a_name_is_taken_once(accounts, store):
    accounts.add("alice", "correct horse")
    with pytest.raises(StoreError, match="an account named 'alice' exists already"):
        accounts.add(" alice ", "another one", "admin")
    assert [(u.name, u.role) for u in accounts.list()] == [("alice", "annotator")]


def test_set_password_replaces_the_old_one(accounts):
    accounts.add("alice", "correct horse")
    accounts.set_password("alice", "battery staple")
    with pytest.raises(AccessError, match=SIGN_IN_FAILED):
        accounts.authenticate("alice", "correct horse")
    assert accounts.authenticate("alice", "battery staple").name == "alice"
    with pytest.raises(StoreError, match="no account named 'bob'"):
        accounts.set_password("bob", "battery staple")


# --------------------------------------------------------------------- roles, projects, the last admin


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(accounts):
    accounts.add("root", "correct horse", "admin")
    with pytest.raises(AccessError, match="root is the last enabled admin"):
        accounts.disable("root")
    with pytest.raises(AccessError, match="last enabled admin"):
        accounts.set_role("root", "reviewer")
    accounts.add("second", "correct horse", "admin")
    assert accounts.disable("root")
    with pytest.raises(AccessError, match="second is the last enabled admin"):
        accounts.set_role("second", "annotator")
    assert accounts.set_role("root", "reviewer")  # a disabled admin may be demoted
    assert [(u.name, u.role, u.enabled) for u in accounts.list()] == [
        ("root", "reviewer", False),
        ("second", "admin", True),
    ]
    assert accounts.has_admin()


def test_grant_and_revoke_decide_which_projects_an_annotator_sees(accounts, store):
    for name, role in (("ann", "annotator"), ("rev", "reviewer"), ("boss", "admin")):
        accounts.add(name, "correct horse", role)
    assert accounts.queues_for("ann") == [] and accounts.queues_for("rev") == ["birds", "fashion"]
    assert accounts.grant("ann", "fashion") and not accounts.grant("ann", "fashion")
    assert accounts.queues_for("ann") == ["fashion"] and accounts.queues_for("boss") == ["birds", "fashion"]
    assert accounts.user("ann").queues == ("fashion",)
    assert accounts.revoke("ann", "fashion") and not accounts.revoke("ann", "fashion")
    assert accounts.queues_for("ann") == []
    with pytest.raises(StoreError, match=r"no annotation queue named 'cats' \(queues: birds, fashion\)"):
        accounts.grant("ann", "cats")
    accounts.disable("ann")
    with pytest.raises(AccessError, match="'ann' is not an enabled account"):
        accounts.queues_for("ann")


def test_every_account_change_is_audited_without_the_password(accounts, store):
    accounts.add("ann", "correct horse")
    accounts.grant("ann", "fashion")
    accounts.revoke("ann", "fashion")
    accounts.set_role("ann", "reviewer")
    accounts.set_password("ann", "battery staple")
    accounts.disable("ann")
    accounts.enable("ann")
    rows = audit_rows(store)
    assert [action for _, action, _ in rows] == [
        "add",
        "grant",
        "revoke",
        "role",
        "password",
        "disable",
        "enable",
    ]
    assert rows[1][2] == {"name": "ann", "queue": "fashion"} and rows[3][2] == {
        "name": "ann",
        "role": "reviewer",
    }
    assert all(actor.startswith("cli") for actor, _, _ in rows)
    assert "argon2" not in json.dumps(rows) and "staple" not in json.dumps(rows)


def test_a_signed_in_account_changes_accounts_only_as_an_admin(store):
    Accounts(store).add("boss", "correct horse", "admin")
    Accounts(store).add("ann", "correct horse")
    before = (count(store, users), count(store, audit))
    as_annotator = Accounts(store, acting_as="ann")
    for change in (
        lambda: as_annotator.add("eve", "correct horse", "admin"),
        lambda: as_annotator.set_role("ann", "admin"),
        lambda: as_annotator.grant("ann", "fashion"),
    ):
        with pytest.raises(AccessError, match="ann has the role annotator; only an admin may do that"):
            change()
    assert (count(store, users), count(store, audit)) == before  # nothing written
    Accounts(store, acting_as="boss").grant("ann", "fashion")
    assert audit_rows(store)[-1] == ("boss", "grant", {"name": "ann", "queue": "fashion"})


# --------------------------------------------------------------------- the store's rule


def test_refusal_allows_everything_while_no_account_is_enabled(accounts, store):
    fashion = queue_id(store, "fashion")
    check = lambda name, need: store.read(refusal, fashion, name, need)  # noqa: E731
    assert [check("anyone", need) for need in ("annotate", "review", "admin")] == [None] * 3
    accounts.add("ann", "correct horse")
    assert accounts.exists() and check("anyone", "annotate") is not None
    accounts.disable("ann")  # no enabled account left: names are free again
    assert not accounts.exists() and check("anyone", "admin") is None


def test_refusal_applies_each_role_rule(accounts, store):
    for name, role in (("ann", "annotator"), ("rev", "reviewer"), ("boss", "admin"), ("gone", "admin")):
        accounts.add(name, "correct horse", role)
    accounts.grant("ann", "fashion")
    accounts.disable("gone")
    fashion, birds = queue_id(store, "fashion"), queue_id(store, "birds")

    def check(queue: int, name: str, need: str) -> str | None:
        return store.read(refusal, queue, name, need)

    assert check(fashion, "ann", "annotate") is None
    assert check(birds, "ann", "annotate") == (
        "ann is not on the project 'birds'; an admin adds them: `playground users grant ann birds`"
    )
    assert check(fashion, "ann", "review") == "ann is an annotator; only a reviewer or an admin may review"
    assert check(fashion, "ann", "admin") == "ann has the role annotator; only an admin may do that"
    assert [check(birds, "rev", need) for need in ("annotate", "review")] == [None, None]
    assert check(birds, "rev", "admin") == "rev has the role reviewer; only an admin may do that"
    assert [check(birds, "boss", need) for need in ("annotate", "review", "admin")] == [None] * 3
    for stranger in ("gone", "mallory"):
        assert check(fashion, stranger, "annotate") == (
            f"{stranger!r} is not an enabled account (`playground users list` lists them)"
        )
    with pytest.raises(ValueError, match="need must be one of"):
        check(fashion, "boss", "delete")


def test_exists_means_an_enabled_account(accounts):
    assert not accounts.exists() and not accounts.has_admin()
    accounts.add("ann", "correct horse")
    assert accounts.exists() and not accounts.has_admin()


def test_the_throttle_makes_a_name_wait_after_five_failures():
    throttle = Throttle(limit=5, wait=30.0)
    for second in range(5):
        throttle.check("alice", 100.0 + second)
        throttle.failed("alice", 100.0 + second)
    with pytest.raises(AccessError, match="5 failed sign-ins in a row; wait 30 s"):
        throttle.check("alice", 104.0)
    with pytest.raises(AccessError, match="wait 1 s"):
        throttle.check("alice", 133.5)
    throttle.check("alice", 134.0)  # the wait is over
    throttle.check("bob", 104.0)  # other names are not held up
    throttle.succeeded("alice")
    assert throttle.failures == {}


# --------------------------------------------------------------------- the CLI


def users_cli(monkeypatch, capsys, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["users", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_users_add_list_disable_grant_from_the_command_line(monkeypatch, capsys, playground_home):
    with Store(default_url()) as store:
        store.enqueue("fashion", make_items(2))
    cli = lambda *argv, **kw: users_cli(monkeypatch, capsys, *argv, **kw)  # noqa: E731
    assert cli("list")[1].startswith("no accounts: the app is open to anyone on this machine")
    assert cli("add", "root", "--role", "admin", "--password-stdin", stdin="correct horse\n") == (
        0,
        "added root (admin)\n",
        "",
    )
    assert (
        cli("add", "ann", "--password-stdin", stdin="battery staple\r\nignored\n")[1]
        == "added ann (annotator)\n"
    )
    assert cli("grant", "ann", "fashion")[1] == "ann is now on fashion\n"
    assert cli("grant", "ann", "fashion")[1] == "ann is already on fashion\n"
    assert cli("disable", "ann")[1] == "ann disabled\n"
    rows = [line.split() for line in cli("list")[1].splitlines()]
    assert rows == [["ann", "annotator", "disabled", "fashion"], ["root", "admin", "enabled", "all"]]
    assert cli("disable", "root") == (
        2,
        "",
        "error: root is the last enabled admin; add or enable another admin first "
        "(`playground users add NAME --role admin`)\n",
    )
    code, _, err = cli("add", "bob", "--password-stdin", stdin="short\n")
    assert (code, err) == (2, "error: a password must be 8 to 1024 characters long, got 5\n")
    code, _, err = cli("add", "bob")  # stdin is no terminal: no prompt
    assert code == 2 and "give the password on stdin with --password-stdin" in err
    accounts = Accounts(Store(default_url()))
    assert [u.name for u in accounts.list()] == ["ann", "root"]
    assert accounts.authenticate("root", "correct horse").is_admin
    accounts.enable("ann")
    assert accounts.authenticate("ann", "battery staple").queues == ("fashion",)  # the line end is dropped


def test_a_password_is_never_an_argument(monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["users", "add", "root", "--password", "correct horse"])
    assert stop.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_the_password_prompt_asks_twice(monkeypatch, capsys, playground_home):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    typed = iter(["correct horse", "correct hose"])
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    assert main(["users", "add", "root"]) == 2
    assert "the two passwords differ; nothing was changed" in capsys.readouterr().err
    assert Accounts(Store(default_url())).list() == []


def test_the_cli_role_choices_are_the_stores_roles():
    assert ROLE_CHOICES == ROLES


# --------------------------------------------------------------------- playground app --address


@pytest.fixture
def started(monkeypatch) -> list:
    """The commands ``playground app`` would start (nothing is started)."""
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda command, **kw: calls.append(command) or 0)
    return calls


def test_the_app_listens_beyond_localhost_only_with_an_admin_account(capsys, started, playground_home):
    assert main(["app", "--address", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the app would listen on 0.0.0.0, where other machines can reach it")
    assert "`playground users add NAME --role admin`" in err and err.count("\n") == 1
    assert started == []
    accounts = Accounts(Store(default_url()))
    accounts.add("ann", "correct horse")  # an annotator is not enough
    assert main(["app", "--address", "0.0.0.0"]) == 2 and started == []
    accounts.add("root", "correct horse", "admin")
    assert main(["app", "--address", "0.0.0.0", "--port", "8600"]) == 0
    (command,) = started
    assert command[command.index("--server.address") + 1] == "0.0.0.0"
    assert command[command.index("--server.port") + 1] == "8600"


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]"])
def test_the_app_listens_on_localhost_without_accounts(address, started):
    assert main(["app", "--address", address]) == 0 and len(started) == 1
