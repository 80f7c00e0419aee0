"""Where output goes: a folder or file the user named, checked before any work is done.

A command that writes (a run folder under ``--out``, a backfilled gallery, an export) calls one of
these first, so a path that cannot be written fails at once with one clear
:class:`~playground.errors.ConfigError` instead of a traceback after the data has loaded. Nothing
is created here: the check only looks at what already exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from playground.errors import ConfigError

MAX_PATH_CHARS = 4096  # Linux's PATH_MAX; a longer path cannot be opened anywhere


def check_output_folder(path: str | Path, what: str) -> Path:
    """``path`` as a folder that exists or can be made: refused when it, or a folder above it, is a
    file, or when the nearest folder that exists is not writable. ``what`` names the option (``--out``)
    in the error."""
    path = _checked_path(path, what)
    existing = _nearest_existing(path, what)
    _check_is_folder(existing, path, what)
    _check_writable(existing, path, what)
    return path


def check_output_file(path: str | Path, what: str) -> Path:
    """``path`` as a file that can be written: refused when it is a folder, when a folder above it is
    a file, or when the folder it goes in is not writable."""
    path = _checked_path(path, what)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a file name, e.g. {path / 'labels.csv'}")
    check_output_folder(path.parent, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {path} is not writable; give another file")
    return path


def _checked_path(path: str | Path, what: str) -> Path:
    text = str(path)
    if "\0" in text:
        raise ConfigError(f"{what} {text!r} holds a NUL character; give a plain path")
    if len(text) > MAX_PATH_CHARS:
        raise ConfigError(
            f"{what} is {len(text)} characters long, more than {MAX_PATH_CHARS}; give a shorter path"
        )
    return Path(text).expanduser()


def _nearest_existing(path: Path, what: str) -> Path:
    """``path`` or the closest folder above it that exists (a broken link counts as existing)."""
    existing = path
    try:
        while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
            existing = existing.parent
    except OSError as err:  # a name too long for the file system, a loop of links...
        raise ConfigError(f"{what} {path} cannot be used: {err.strerror or err}") from None
    return existing


def _check_is_folder(existing: Path, path: Path, what: str) -> None:
    if existing.is_dir():
        return
    kind = "a broken link" if existing.is_symlink() and not existing.exists() else "a file"
    if existing == path:
        raise ConfigError(f"{what} {path} is {kind}, not a folder; give a folder")
    raise ConfigError(f"{what} {path} cannot be made: {existing} is {kind}, not a folder; give a folder")


def _check_writable(existing: Path, path: Path, what: str) -> None:
    if not os.access(existing, os.W_OK | os.X_OK):
        inside = "" if existing == path else f" (the nearest folder that exists, {existing}, is read-only)"
        raise ConfigError(f"{what} {path} is not writable{inside}; give a folder you can write to")
