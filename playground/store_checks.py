"""Checks on what callers hand the annotation store, done once before any SQL runs: names and other
text, class lists, times, lease lengths, row ids and row limits.

Each refuses bad input with one :class:`~playground.errors.StoreError` line that shows at most
:data:`SHOWN` characters of the value, so a NaN time, a NUL byte in a name (PostgreSQL cannot store
one), a string where an id belongs or an id beyond PostgreSQL's ``INTEGER`` never reaches the database
as a raw driver error, and never lands there silently either. :mod:`playground.store_queries`,
:mod:`playground.store_records`, :mod:`playground.accounts` and :mod:`playground.jobs` use them.
"""

from __future__ import annotations

import math
import sqlite3
import time
import unicodedata
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from numbers import Integral
from typing import Any

from sqlalchemy import exc

from playground.errors import DataFormatError, StoreError

SHOWN = 80  # characters of a refused value an error message shows
MAX_ROW = 2**31 - 1  # PostgreSQL's INTEGER: no row id (and no useful row limit) lies beyond it
LATEST_TIME = 253402300799.0  # 9999-12-31 23:59:59 UTC, the last second a timestamp can be shown as
MAX_LEASE_SECONDS = 7 * 24 * 3600.0  # a lease longer than a week is a mistake, not a plan


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`SHOWN` characters (a 100,000-character name stays one short line)."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


# --------------------------------------------------------------------- text


def clean_name(value: Any, what: str, longest: int = 64) -> str:
    """``value`` stripped: text of 1 to ``longest`` characters without control characters (a NUL
    byte, a newline, an escape sequence); a clear error otherwise. None reads as empty."""
    if value is not None and not isinstance(value, str):
        raise StoreError(f"the {what} must be text, got {type(value).__name__} {shown(value)}")
    text = (value or "").strip()
    if not text or len(text) > longest:
        raise StoreError(f"the {what} must be 1 to {longest} characters long, got {shown(text)}")
    control = next((char for char in text if unicodedata.category(char) == "Cc"), None)
    if control is not None:
        raise StoreError(
            f"the {what} {shown(text)} holds the control character {control!r}; use printable characters"
        )
    return text


def lookup_name(value: Any) -> str | None:
    """``value`` stripped, to look a stored name up by; None when no stored name can equal it (not
    text, or holding a NUL byte, which PostgreSQL refuses even in a query)."""
    if not isinstance(value, str) or "\x00" in value:
        return None
    return value.strip()


def class_list(names: Any) -> list[str]:
    """A queue's class names: a list of two or more distinct :func:`clean_name` s."""
    if isinstance(names, (str, bytes, Mapping)) or not isinstance(names, Iterable):
        raise DataFormatError(f"class names must be a list of names, got {type(names).__name__}")
    cleaned = [clean_name(name, "class name") for name in names]
    if len(cleaned) < 2 or len(set(cleaned)) != len(cleaned):
        raise DataFormatError(f"a queue needs two or more distinct class names, got {shown(cleaned)}")
    return cleaned


# --------------------------------------------------------------------- numbers


def as_real(value: Any) -> float | None:
    """``value`` as a finite float; None for NaN, infinity, text, a bool, None or anything else
    ``float`` refuses (an int too large for a float included)."""
    if value is None or isinstance(value, (str, bytes, bool)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def timestamp(now: Any) -> float:
    """``now`` (seconds since the epoch), or the clock's; one before 1970, after 9999, NaN, infinite
    or not a number is refused (a lease from such a time would never end, or never start)."""
    if now is None:
        return time.time()
    value = as_real(now)
    if value is None or not 0 <= value <= LATEST_TIME:
        raise StoreError(
            f"a time must be a finite number of seconds from 0 to {LATEST_TIME:.0f} (1970 to 9999), "
            f"got {shown(now)}"
        )
    return value


def lease_length(seconds: Any) -> float:
    """A lease length in seconds: finite, at least 0 (0: expired at once) and at most
    :data:`MAX_LEASE_SECONDS` (a NaN or infinite one would lock an item for ever)."""
    value = as_real(seconds)
    if value is None or not 0 <= value <= MAX_LEASE_SECONDS:
        raise StoreError(f"a lease lasts 0 to {MAX_LEASE_SECONDS:.0f} seconds (a week), got {shown(seconds)}")
    return value


def _whole(value: Any, low: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= MAX_ROW:
        return None
    return int(value)


def row_id(value: Any, what: str) -> int:
    """A row id (an item's, a job's): a whole number from 1 to :data:`MAX_ROW` (text, a float or a bool
    is refused rather than converted: ``1.7`` is not item 1)."""
    found = _whole(value, 1)
    if found is None:
        raise StoreError(f"{what} must be a whole number from 1 to {MAX_ROW}, got {shown(value)}")
    return found


def row_limit(value: Any, what: str = "limit") -> int:
    """How many rows to read: a whole number from 0 to :data:`MAX_ROW`."""
    found = _whole(value, 0)
    if found is None:
        raise StoreError(f"the {what} must be a whole number from 0 to {MAX_ROW}, got {shown(value)}")
    return found


# --------------------------------------------------------------------- what the database says


@contextmanager
def database_errors(database: str):
    """A failure of the database (``database`` names it) as one bounded StoreError line: it cannot be
    reached or opened, the file is not a database, or it refused a value. A lost race
    (``IntegrityError``) passes on for the caller to retry, and a ``ProgrammingError`` (a bug in the
    store's SQL, not in its input) passes on as it is."""
    try:
        yield
    except (exc.IntegrityError, exc.ProgrammingError, sqlite3.IntegrityError, sqlite3.ProgrammingError):
        raise
    except exc.DBAPIError as err:
        raise StoreError(f"the annotation database {database} failed: {_first_line(err.orig)}") from None
    except sqlite3.DatabaseError as err:  # the raw connection an old SQLite file is upgraded on
        raise StoreError(f"the annotation database {database} failed: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines() or [type(err).__name__]
    return lines[0] if len(lines[0]) <= 200 else lines[0][:197] + "..."
