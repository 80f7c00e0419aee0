"""A page's settings in its URL, so that a link opens the same configuration (as TensorFlow Playground
does): ``/classify?preset=full&epochs=4&lr=0.001``.

:func:`restore_from_url` seeds the widgets' session state from the query string on the first draw of a
page in a browser session; :func:`keep_in_url` writes back the settings that differ from their defaults
after every draw. A value that does not parse as its setting's type is ignored and reported in one line.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st


def url_text(value: Any) -> str:
    """A setting as it appears in the URL: numbers and words plainly, lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def parse_like(text: str, default: Any) -> Any:
    """``text`` read as the type of ``default``; ValueError when it is not one."""
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError("not true or false")
        return text.lower() == "true"
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, (list, tuple)):
        value = json.loads(text)
        if not isinstance(value, list):
            raise ValueError("not a list")
        return value if isinstance(default, list) else tuple(value)
    return text


def restore_from_url(page: str, keys: dict[str, str], defaults: dict[str, Any], choices=None) -> list[str]:
    """On the first draw of ``page`` in this session, set ``st.session_state[keys[name]]`` from each URL
    parameter ``name`` (parsed like ``defaults[name]``; one of ``choices[name]`` when given). Returns one
    line per parameter that was ignored."""
    marker = f"__url_restored_{page}"
    if st.session_state.get(marker):
        return []
    st.session_state[marker] = True
    problems = []
    for name, text in st.query_params.items():
        if name not in keys:
            continue
        try:
            value = parse_like(text, defaults[name])
            if choices and name in choices and value not in choices[name]:
                raise ValueError(f"not one of {', '.join(map(str, choices[name]))}")
        except (ValueError, json.JSONDecodeError) as err:
            problems.append(f"{name}={text} ({err})")
            continue
        st.session_state[keys[name]] = value
    return problems


def keep_in_url(values: dict[str, Any], defaults: dict[str, Any], always: tuple[str, ...] = ()) -> None:
    """Put into the URL the settings in ``values`` that differ from ``defaults`` (and those in ``always``)."""
    wanted = {
        name: url_text(value)
        for name, value in values.items()
        if name in always or value != defaults.get(name)
    }
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)
