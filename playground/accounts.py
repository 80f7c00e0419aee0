"""Accounts: who may use the annotation store, in which role, on which queues.

Roles (:data:`~playground.store_schema.ROLES`): an **annotator** decides items on the queues they
are a member of (a labelling project's queue has the project's name), a **reviewer** works on every
queue and reviews, an **admin** may do everything. With no enabled account at all the playground is
a single-machine tool, as before accounts: anyone may annotate under any name (and ``playground app``
listens on localhost only). Once one exists, every page sits behind a sign-in and every decision is
made under a signed-in, enabled account (:func:`refusal`, which the store calls in its transactions).

Passwords are hashed with Argon2id (Biryukov, Dinu, Khovratovich, RFC 9106), a memory-hard hash,
through argon2-cffi's ``PasswordHasher`` (its salted ``$argon2id$v=19$m=..,t=..,p=..$salt$hash``
string is all that is stored). Signing in with an unknown name verifies against a dummy hash, so it
takes as long and fails with the same message as a wrong password; a hash made with weaker parameters
than today's is replaced on the next successful sign-in. Every account change writes an ``audit`` row
in the same transaction, and the last enabled admin can be neither disabled nor demoted.
"""

from __future__ import annotations

import getpass
import json
import math
import secrets
import time
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from playground.errors import AccessError, StoreError
from playground.store_checks import clean_name, lookup_name, shown
from playground.store_schema import ROLES, audit, members, queues, users

NEEDS = ("annotate", "review", "admin")  # what refusal() checks a name may do
PASSWORD_LENGTH = (8, 1024)
SIGN_IN_FAILED = "wrong name or password"
HASHER = PasswordHasher()  # argon2id, RFC 9106's low-memory profile (t=3, m=64 MiB, p=4)
_DUMMY_HASHES: dict[tuple, str] = {}


@dataclass(frozen=True)
class User:
    """One account as the app and the CLI see it (never its password hash)."""

    name: str
    role: str
    enabled: bool
    created_at: float
    queues: tuple[str, ...] = field(default=())  # the queues it is a member of

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_review(self) -> bool:
        return self.role in ("reviewer", "admin")


# --------------------------------------------------------------------- the rule the store applies


def _any_enabled(conn: Connection) -> bool:
    return conn.execute(select(users.c.id).where(users.c.disabled == 0).limit(1)).first() is not None


def refusal(conn: Connection, queue_id: int | None, name: str, need: str = "annotate") -> str | None:
    """Why ``name`` may not ``need`` (annotate on queue ``queue_id``, review, admin); None when allowed.

    With no enabled account everything is allowed (one machine, free names). Otherwise ``name`` must
    be an enabled account; to annotate, a member of the queue or a reviewer or admin; to review, a
    reviewer or admin; to administer, an admin. Runs inside the caller's transaction."""
    if need not in NEEDS:
        raise ValueError(f"need must be one of {NEEDS}, got {need!r}")
    if not _any_enabled(conn):
        return None
    found = lookup_name(name)
    query = select(users.c.id, users.c.role, users.c.disabled).where(users.c.name == found)
    row = None if found is None else conn.execute(query).first()
    if row is None or row.disabled:
        return f"{shown(name)} is not an enabled account (`playground users list` lists them)"
    if row.role == "admin":
        return None
    if need == "admin":
        return f"{name} has the role {row.role}; only an admin may do that"
    if row.role == "reviewer":
        return None
    if need == "review":
        return f"{name} is an annotator; only a reviewer or an admin may review"
    on_queue = conn.execute(
        select(members.c.id).where(members.c.queue_id == queue_id, members.c.user_id == row.id)
    ).first()
    if on_queue is not None:
        return None
    queue = conn.execute(select(queues.c.name).where(queues.c.id == queue_id)).scalar() or f"#{queue_id}"
    return (
        f"{name} is not on the project {queue!r}; an admin adds them: `playground users grant {name} {queue}`"
    )


def require(conn: Connection, queue_id: int | None, name: str, need: str = "annotate") -> None:
    """:func:`refusal` as an :class:`~playground.errors.AccessError` (the transaction then writes nothing)."""
    reason = refusal(conn, queue_id, name, need)
    if reason is not None:
        raise AccessError(reason)


# --------------------------------------------------------------------- passwords


def check_password(password: str) -> str:
    """``password`` when it is 8 to 1024 characters long; a clear error otherwise."""
    shortest, longest = PASSWORD_LENGTH
    if not isinstance(password, str) or not shortest <= len(password) <= longest:
        length = len(password) if isinstance(password, str) else 0
        raise StoreError(f"a password must be {shortest} to {longest} characters long, got {length}")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise StoreError(f"unknown role {shown(role)}; choose one of {', '.join(ROLES)}")
    return role


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a random password with ``hasher``'s parameters: what an unknown name is verified against."""
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len, hasher.salt_len)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASHES[key]


def _verified(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class Throttle:
    """Failed sign-ins per name: after ``limit`` in a row, that name must wait ``wait`` seconds after
    its last failure (the app keeps one per browser session)."""

    def __init__(self, limit: int = 5, wait: float = 30.0) -> None:
        self.limit, self.wait = limit, wait
        self.failures: dict[str, tuple[int, float]] = {}  # name -> (failures in a row, last one's time)

    def check(self, name: str, now: float) -> None:
        count, last = self.failures.get(name, (0, 0.0))
        left = last + self.wait - now
        if count >= self.limit and left > 0:
            raise AccessError(f"{count} failed sign-ins in a row; wait {math.ceil(left)} s and try again")

    def failed(self, name: str, now: float) -> None:
        self.failures[name] = (self.failures.get(name, (0, 0.0))[0] + 1, now)

    def succeeded(self, name: str) -> None:
        self.failures.pop(name, None)


# --------------------------------------------------------------------- accounts


def _local_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in the environment nor in the password database
        return "cli"


class Accounts:
    """The accounts in ``store``'s database.

    ``acting_as`` names the signed-in account that makes the changes (then it must be an enabled
    admin, unless no account exists yet); None means the local command line, which owns the database
    and may do anything. ``hasher`` defaults to :data:`HASHER`, looked up at each call."""

    def __init__(self, store=None, acting_as: str | None = None, hasher: PasswordHasher | None = None):
        if acting_as is not None:
            acting_as = clean_name(acting_as, "signed-in user name")
        if store is None:
            from playground.store import Store

            store = Store()
        self.store, self.acting_as, self._hasher = store, acting_as, hasher

    @property
    def hasher(self) -> PasswordHasher:
        return self._hasher or HASHER

    # ----------------------------------------------------------------- reading

    def exists(self) -> bool:
        """Whether any enabled account exists (then the app asks everyone to sign in)."""
        return self.store.read(_any_enabled)

    def has_admin(self) -> bool:
        """Whether an enabled admin exists (then the app may listen beyond localhost)."""
        query = select(users.c.id).where(users.c.disabled == 0, users.c.role == "admin").limit(1)
        return self.store.read(lambda conn: conn.execute(query).first() is not None)

    def user(self, name: str) -> User | None:
        """The account called ``name`` (enabled or not), None when there is none."""
        return self.store.read(self._user, name)

    def list(self) -> list[User]:
        """Every account, by name, with the queues it is a member of."""

        def work(conn):
            names = conn.execute(select(users.c.name).order_by(users.c.name)).scalars().all()
            return [self._user(conn, name) for name in names]

        return self.store.read(work)

    def queues_for(self, name: str) -> list[str]:
        """The queues ``name`` may work on: all for a reviewer or admin, their own for an annotator."""

        def work(conn):
            user = self._user(conn, name)
            if user is None or not user.enabled:
                raise AccessError(f"{shown(name)} is not an enabled account")
            if user.can_review:
                return list(conn.execute(select(queues.c.name).order_by(queues.c.name)).scalars())
            return list(user.queues)

        return self.store.read(work)

    def _user(self, conn: Connection, name: str) -> User | None:
        name = lookup_name(name)
        row = None if name is None else conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            return None
        on = conn.execute(
            select(queues.c.name)
            .join(members, members.c.queue_id == queues.c.id)
            .where(members.c.user_id == row.id)
            .order_by(queues.c.name)
        ).scalars()
        return User(row.name, row.role, not row.disabled, row.created_at, tuple(on))

    # ----------------------------------------------------------------- signing in

    def authenticate(self, name: str, password: str) -> User:
        """The account, when ``password`` is its password and it is enabled; an AccessError otherwise.

        An unknown name fails like a wrong password, with the same message and about the same time."""
        hasher, name = self.hasher, lookup_name(name) or ""
        dummy = _dummy_hash(hasher)
        row = self.store.read(
            lambda conn: conn.execute(
                select(users.c.id, users.c.password_hash, users.c.disabled).where(users.c.name == name)
            ).first()
        )
        password = password if isinstance(password, str) else ""
        matched = _verified(hasher, row.password_hash if row else dummy, password)
        if row is None or not matched:
            raise AccessError(SIGN_IN_FAILED)
        if row.disabled:
            raise AccessError(f"the account {name!r} is disabled; an admin can enable it")
        if hasher.check_needs_rehash(row.password_hash):
            self.store.write(self._rehash, row.id, name, hasher.hash(password))
        return self.user(name)

    def _rehash(self, conn: Connection, user_id: int, name: str, new_hash: str) -> None:
        conn.execute(update(users).where(users.c.id == user_id).values(password_hash=new_hash))
        self._audit(conn, "rehash", user_id, {"name": name}, actor=name)

    # ----------------------------------------------------------------- changing

    def add(self, name: str, password: str, role: str = "annotator") -> User:
        """A new enabled account; a clear error for a taken name, a short password or an unknown role."""
        name, role = clean_name(name, "user name"), check_role(role)
        password_hash = self.hasher.hash(check_password(password))

        def work(conn):
            self._check_actor(conn)
            if conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None:
                raise StoreError(f"an account named {name!r} exists already")
            new = conn.execute(
                insert(users).values(
                    name=name, password_hash=password_hash, role=role, disabled=0, created_at=time.time()
                )
            ).inserted_primary_key[0]
            self._audit(conn, "add", new, {"name": name, "role": role})

        self.store.write(work)
        return self.user(name)

    def disable(self, name: str) -> bool:
        """Disable ``name`` (it can no longer sign in nor decide); False when it was disabled already.
        The last enabled admin cannot be disabled."""
        return self._change(name, "disable", disabled=1)

    def enable(self, name: str) -> bool:
        """Enable ``name`` again; False when it was enabled already."""
        return self._change(name, "enable", disabled=0)

    def set_role(self, name: str, role: str) -> bool:
        """Give ``name`` another role; the last enabled admin keeps theirs."""
        return self._change(name, "role", role=check_role(role))

    def set_password(self, name: str, password: str) -> None:
        password_hash = self.hasher.hash(check_password(password))
        self._change(name, "password", password_hash=password_hash)

    def _change(self, name: str, action: str, **values) -> bool:
        """Set ``values`` on ``name``'s row; False when nothing changed. Refuses to leave no enabled admin."""

        def work(conn):
            self._check_actor(conn)
            row = self._row(conn, name)
            if all(getattr(row, key) == value for key, value in values.items()):
                return False
            still_admin = values.get("role", row.role) == "admin" and not values.get("disabled", row.disabled)
            if row.role == "admin" and not row.disabled and not still_admin:
                self._keep_an_admin(conn, row.id, name)
            conn.execute(update(users).where(users.c.id == row.id).values(**values))
            public = {key: value for key, value in values.items() if key != "password_hash"}
            self._audit(conn, action, row.id, {"name": row.name, **public})
            return True

        return self.store.write(work)

    def _keep_an_admin(self, conn: Connection, user_id: int, name: str) -> None:
        others = conn.execute(
            select(func.count())
            .select_from(users)
            .where(users.c.role == "admin", users.c.disabled == 0, users.c.id != user_id)
        ).scalar()
        if not others:
            raise AccessError(
                f"{name} is the last enabled admin; add or enable another admin first "
                "(`playground users add NAME --role admin`)"
            )

    def grant(self, name: str, queue: str) -> bool:
        """Put ``name`` on ``queue`` (a labelling project's queue); False when it was on it already."""
        return self._membership(name, queue, add=True)

    def revoke(self, name: str, queue: str) -> bool:
        """Take ``name`` off ``queue``; False when it was not on it."""
        return self._membership(name, queue, add=False)

    def _membership(self, name: str, queue: str, add: bool) -> bool:
        def work(conn):
            self._check_actor(conn)
            user, queue_id = self._row(conn, name), self.store._queue_id(conn, queue)
            user_id = user.id
            where = (members.c.queue_id == queue_id, members.c.user_id == user_id)
            present = conn.execute(select(members.c.id).where(*where)).first() is not None
            if present == add:
                return False
            if add:
                conn.execute(
                    insert(members).values(queue_id=queue_id, user_id=user_id, created_at=time.time())
                )
            else:
                conn.execute(delete(members).where(*where))
            detail = {"name": user.name, "queue": lookup_name(queue)}
            self._audit(conn, "grant" if add else "revoke", user_id, detail)
            return True

        return self.store.write(work)

    # ----------------------------------------------------------------- inside a transaction

    def _check_actor(self, conn: Connection) -> None:
        if self.acting_as is not None:
            require(conn, None, self.acting_as, "admin")

    def _row(self, conn: Connection, name: str):
        found = lookup_name(name)
        row = None if found is None else conn.execute(select(users).where(users.c.name == found)).first()
        if row is None:
            raise StoreError(f"no account named {shown(name)}; `playground users list` shows them")
        return row

    def _audit(
        self, conn: Connection, action: str, user_id: int, detail: dict, actor: str | None = None
    ) -> None:
        conn.execute(
            insert(audit).values(
                at=time.time(),
                actor=actor or self.acting_as or _local_actor(),
                action=action,
                entity="user",
                entity_id=user_id,
                detail=json.dumps(detail),
            )
        )
