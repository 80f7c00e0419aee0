"""The sign-in gate under AppTest: with no account the app is open; with one, the sign-in form and
nothing else until a name and password match; then the Annotate page works under that account."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

import playground.accounts as accounts_module
from playground.accounts import Accounts
from playground.store import Store, default_url
from tests.apps.conftest import APP_FILE
from tests.test_store import make_items

ANNOTATE = "views/annotate.py"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts_module, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def accounts(playground_home) -> Accounts:
    """The server's database with two queues and an annotator on one of them, and an admin."""
    store = Store(default_url())
    store.enqueue("fashion", make_items(4))
    store.enqueue("birds", make_items(2, prefix="bird"))
    accounts = Accounts(store)
    accounts.add("root", "correct horse", "admin")
    accounts.add("ann", "battery staple")
    accounts.grant("ann", "fashion")
    yield accounts
    store.close()


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP_FILE), default_timeout=60).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button(key="FormSubmitter:login_form-Sign in").click().run()
    assert not at.exception, at.exception
    return at


def only_the_form(at: AppTest) -> bool:
    """The sign-in form and nothing else: no sidebar, no page."""
    return (
        [t.value for t in at.title] == ["Sign in"]
        and [t.label for t in at.text_input] == ["Name", "Password"]
        and at.text_input(key="login_password").proto.type == TextInputProto.PASSWORD
        and [b.label for b in at.button] == ["Sign in"]
        and not at.sidebar.children
        and not at.selectbox
        and not at.get("image")
    )


def test_with_no_account_the_app_is_open_as_before(playground_home):
    at = open_app(ANNOTATE)
    assert [t.value for t in at.title] == ["Annotate"]
    assert not [t for t in at.text_input if t.key.startswith("login")]


def test_with_an_account_every_page_is_the_sign_in_form_until_signed_in(accounts):
    at = open_app()
    assert only_the_form(at)
    at.switch_page(ANNOTATE).run()
    assert only_the_form(at) and not at.error


def test_a_wrong_password_and_an_unknown_name_say_the_same_one_line(accounts):
    at = open_app(ANNOTATE)
    assert [e.value for e in sign_in(at, "ann", "wrong horse").error] == ["wrong name or password"]
    assert only_the_form(at)
    assert [e.value for e in sign_in(at, "mallory", "battery staple").error] == ["wrong name or password"]
    assert only_the_form(at)


def test_after_signing_in_the_annotator_annotates_their_projects_only(accounts):
    at = sign_in(open_app(ANNOTATE), "ann", "battery staple")
    assert [t.value for t in at.title] == ["Annotate"]
    assert "Annotating as **ann**" in [m.value for m in at.markdown]
    assert [c.value for c in at.sidebar.caption][0] == "Signed in as **ann** (annotator) ·"
    assert not [t for t in at.text_input if t.key == "annotator"]  # no name to type
    assert at.selectbox(key="queue").options == ["fashion"]  # not birds
    at.button(key="ann_accept").click().run()
    assert not at.exception and not at.error
    (decision,) = accounts.store.history("fashion")
    assert (decision.annotator, decision.action) == ("ann", "accept")
    assert "ann" not in str(dict(at.query_params))  # the account never goes into the URL


def test_a_reviewer_or_admin_sees_every_project_and_an_annotator_on_none_is_told(accounts):
    at = sign_in(open_app(ANNOTATE), "root", "correct horse")
    assert at.selectbox(key="queue").options == ["birds", "fashion"]
    accounts.add("new", "long enough")
    at = sign_in(open_app(ANNOTATE), "new", "long enough")
    assert [i.value for i in at.info] == [
        "You are on no project yet. An admin adds you with `playground users grant new PROJECT`."
    ]


def test_signing_out_or_being_disabled_shows_the_form_again(accounts):
    at = sign_in(open_app(ANNOTATE), "ann", "battery staple")
    at.button(key="login_sign_out").click().run()
    assert only_the_form(at) and "login_user" not in at.session_state
    sign_in(at, "ann", "battery staple")
    assert [t.value for t in at.title] == ["Annotate"]
    accounts.disable("ann")
    at.run()
    assert only_the_form(at)
    assert [e.value for e in sign_in(at, "ann", "battery staple").error] == [
        "the account 'ann' is disabled; an admin can enable it"
    ]


def test_five_failures_make_that_name_wait(accounts):
    at = open_app()
    for _ in range(5):
        sign_in(at, "ann", "wrong horse")
    assert [e.value for e in sign_in(at, "ann", "battery staple").error] == [
        "5 failed sign-ins in a row; wait 30 s and try again"
    ]
    assert only_the_form(at)
    assert [t.value for t in sign_in(at, "root", "correct horse").title] != ["Sign in"]  # another name


def test_only_an_admin_may_move_the_runs_and_data_roots(accounts, playground_home):
    at = sign_in(open_app(ANNOTATE), "ann", "battery staple")
    runs_root = at.sidebar.text_input(key="sidebar_runs_root")
    assert runs_root.disabled and at.sidebar.text_input(key="sidebar_data_root").disabled
    assert runs_root.value == str(playground_home)
    at.session_state["sidebar_runs_root"] = "/somewhere/else"  # e.g. from an old session or a link
    at.run()
    assert at.sidebar.text_input(key="sidebar_runs_root").value == str(playground_home)
    admin = sign_in(open_app(ANNOTATE), "root", "correct horse")
    assert not admin.sidebar.text_input(key="sidebar_runs_root").disabled
