"""Signing in: once an account exists (:mod:`playground.accounts`), every page sits behind this form.

``app.py`` asks :func:`signed_out` before the navigation: with no enabled account the app is open as
on one machine; otherwise the navigation is hidden and :func:`sign_in_page` draws the form and stops
the run until a name and password match (a deep link such as ``/annotate`` opens once signed in);
then :func:`draw_account` puts "Signed in as NAME (role) · Sign out" in the sidebar. The
account lives in ``st.session_state`` only (never in the URL) and is read again on every run, so a
disabled account is signed out at its next click. The accounts are those of the server's database
(``$PLAYGROUND_DB`` or ``PLAYGROUND_HOME``'s), whatever runs root the sidebar names. A failed
sign-in says only "wrong name or password"; five in a row for one name make it wait 30 s.
"""

from __future__ import annotations

import time

import streamlit as st
from common import show_error

from playground.accounts import Accounts, Throttle, User
from playground.errors import PlaygroundError
from playground.store import Store, default_url

USER_KEY = "login_user"
THROTTLE_KEY = "login_throttle"


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_store(url: str) -> Store:
    """One store (one connection pool) per database URL, shared by every session."""
    return Store(url)


def server_store() -> Store:
    """The server's database: where the accounts are (the sidebar's runs root cannot change it)."""
    return cached_store(default_url())


def current_user() -> User | None:
    """The signed-in account; None when no account exists (then the app is open, names are free)."""
    return st.session_state.get(USER_KEY)


def sign_in(accounts: Accounts, name: str, password: str) -> None:
    """Check the name and password (the session's throttle first); the account goes into the session."""
    throttle = st.session_state.setdefault(THROTTLE_KEY, Throttle())
    name = (name or "").strip()
    throttle.check(name, time.time())
    try:
        user = accounts.authenticate(name, password)
    except PlaygroundError:
        throttle.failed(name, time.time())
        raise
    throttle.succeeded(name)
    st.session_state[USER_KEY] = user


def sign_out() -> None:
    """Forget everything this session held (the next person at this browser starts afresh)."""
    for key in list(st.session_state):
        del st.session_state[key]


def sign_in_form(accounts: Accounts) -> None:
    st.title("Sign in")
    st.caption("This playground has accounts. An admin adds them with `playground users add NAME`.")
    with st.form("login_form", clear_on_submit=True, width=420):
        name = st.text_input("Name", key="login_name", max_chars=64, autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="login_password", max_chars=1024, autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if not submitted:
        return
    try:
        sign_in(accounts, name, password)
    except PlaygroundError as err:
        show_error(err)
        return
    st.rerun()


def draw_signed_in(user: User) -> None:
    with st.sidebar, st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.caption(f"Signed in as **{user.name}** ({user.role}) ·", width="content")
        st.button("Sign out", key="login_sign_out", type="tertiary", on_click=sign_out)


def refreshed(accounts: Accounts) -> User | None:
    """The session's account as the database has it now; None (signed out) once it is disabled."""
    held = current_user()
    user = accounts.user(held.name) if held is not None else None
    if user is None or not user.enabled:
        st.session_state.pop(USER_KEY, None)
        return None
    st.session_state[USER_KEY] = user
    return user


def signed_out() -> bool:
    """Whether this session must sign in first: an account exists and none is signed in. A database
    that cannot be opened stops the run: nobody gets in unchecked."""
    try:
        accounts = Accounts(server_store())
        if not accounts.exists():
            st.session_state.pop(USER_KEY, None)
            return False
        return refreshed(accounts) is None
    except PlaygroundError as err:
        show_error(err)
        st.stop()


def sign_in_page() -> None:
    """The sign-in form and nothing else; stops the run (the page chosen stays chosen for after)."""
    sign_in_form(Accounts(server_store()))
    st.stop()


def draw_account() -> None:
    """The sidebar's "Signed in as NAME (role) · Sign out", when someone is signed in."""
    user = current_user()
    if user is not None:
        draw_signed_in(user)
