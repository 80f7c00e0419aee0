"""Checking one config value against its annotation, and showing values in error messages.

:func:`coerce` is what :mod:`playground.core.config` checks every recipe value and ``--set`` override
with: the type (widening int to float, list to tuple, a fixed-length tuple by position, a dict's keys
and values), and what no technique can use: NaN and infinities, integers beyond 64 bits, strings over
:data:`MAX_TEXT_CHARS`. :func:`check_depth` refuses tables and arrays nested more than
:data:`MAX_DEPTH` levels. Every refusal is a :class:`~playground.errors.ConfigError` of one short line.
"""

from __future__ import annotations

import math
import os
import reprlib
import types
import typing
from typing import Any

from playground.errors import ConfigError

MAX_TEXT_CHARS = 1024  # one string value (a name, a path, a model)
MAX_DEPTH = 16  # tables and arrays inside each other


def coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Check ``value`` against ``annotation``; widen int to float, list to tuple. NaN, infinities,
    integers beyond 64 bits and strings over :data:`MAX_TEXT_CHARS` are refused too."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, key, source)
            except ConfigError:
                continue
        raise _type_error(key, value, annotation, source)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(
                f"{source}: {key} = {shown(value)} is not allowed; choose one of {', '.join(map(repr, args))}"
            )
        return value
    if origin in (list, tuple):
        return _coerce_items(value, origin, args, key, source)
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, value, annotation, source)
        key_type, value_type = args or (Any, Any)
        return {
            coerce(k, key_type, key, source): coerce(v, value_type, key, source) for k, v in value.items()
        }
    if annotation is Any:
        return value
    if annotation in (int, float):
        return _number(value, annotation, key, source)
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise _type_error(key, value, annotation, source)
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        raise ConfigError(f"{source}: {key} is {len(value):,} characters long, more than {MAX_TEXT_CHARS}")
    return value


def _coerce_items(value: Any, origin: type, args: tuple, key: str, source: str) -> list | tuple:
    """A list or tuple, item by item; a fixed-length tuple (``tuple[float, float]``) by position."""
    if not isinstance(value, (list, tuple)):
        raise _type_error(key, value, origin[args] if args else origin, source)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise ConfigError(f"{source}: {key} must hold {len(args)} values, got {len(value)}")
        item_types = list(args)
    else:
        item_types = [args[0] if args else Any] * len(value)
    items = [coerce(v, t, key, source) for v, t in zip(value, item_types)]
    return tuple(items) if origin is tuple else items


def _number(value: Any, annotation: type, key: str, source: str) -> int | float:
    """An int, or a float (an int is widened); finite and within 64 bits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(key, value, annotation, source)
    if annotation is int and not isinstance(value, int):
        raise _type_error(key, value, annotation, source)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {key} must be a finite number, got {value}")
    if isinstance(value, int) and abs(value) >= 2**63:
        raise ConfigError(f"{source}: {key} = {shown(value)} is too large; give a number below 2**63")
    return float(value) if annotation is float else value


def _type_error(key: str, value: Any, annotation: Any, source: str) -> ConfigError:
    wanted = getattr(annotation, "__name__", str(annotation))
    return ConfigError(f"{source}: {key} must be {wanted}, got {type(value).__name__} {shown(value)}")


def check_depth(value: Any, source: str) -> None:
    """Refuse tables and arrays nested more than :data:`MAX_DEPTH` levels (read without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, (list, tuple)):
            stack += [(v, depth + 1) for v in item]


_SHORT_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxtuple, _SHORT_REPR.maxdict = 3, 6, 6, 4
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60


def env_count(variable: str, default: int, unit: str) -> int:
    """``$variable`` as a positive whole number of ``unit`` (``1_000`` reads as 1000), ``default`` when it
    is unset or empty; anything else is one ConfigError naming the variable."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"${variable} must be a positive whole number of {unit}, not {shown(text, 40)}")
    return value


def shown(value: Any, limit: int = 60) -> str:
    """``value``'s repr on one line, cut to ``limit`` characters (a long list or string is never
    rendered whole), for error messages."""
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def brief(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, for error messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
