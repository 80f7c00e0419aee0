"""Hostile checkpoint files for the loader tests: damaged bytes, and valid safetensors files whose
metadata or tensors are not what a loader expects (issue 25).

``plant`` writes a well-formed safetensors file with any metadata text; ``DAMAGED`` holds byte strings
that are no safetensors file at all; ``mutated`` and the hypothesis strategy ``mutations`` damage a
real checkpoint the way a bad disk, a cut download or a hand edit would.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import torch
from hypothesis import strategies as st
from safetensors.torch import save_file

from playground.core.checkpoint import METADATA_KEY


def plant(path: Path, tensors: dict[str, torch.Tensor] | None = None, metadata: str | None = "{}") -> Path:
    """A valid safetensors file holding ``tensors`` whose playground metadata is the text ``metadata``
    (None: no playground metadata at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = None if metadata is None else {METADATA_KEY: metadata}
    save_file(tensors if tensors is not None else {"w": torch.ones(2)}, str(path), metadata=header)
    return path


def replant(path: Path, tensors: dict | None = None, metadata: dict | str | None = None, **changes) -> Path:
    """``path`` (a project checkpoint) written again with some tensors or metadata replaced: ``tensors``
    and keyword ``changes`` update the old ones (a value None drops the tensor), ``metadata`` (a dict is
    dumped as JSON, a str kept as is) replaces the metadata."""
    from playground.core.checkpoint import load_checkpoint

    state, meta = load_checkpoint(path)
    state = {**state, **(tensors or {}), **changes}
    state = {k: v for k, v in state.items() if v is not None}
    text = json.dumps(meta if metadata is None else metadata) if not isinstance(metadata, str) else metadata
    return plant(path, state, text)


def raw_file(header: bytes, data: bytes = b"", length: int | None = None) -> bytes:
    """A file with ``header`` after the 8-byte little-endian header length (``length``: a lying one)."""
    return struct.pack("<Q", len(header) if length is None else length) + header + data


DAMAGED = {
    "empty": b"",
    "random bytes": random.Random(25).randbytes(300),
    "huge header length": raw_file(b"{}", length=(1 << 63) + 5),
    "header longer than the file": raw_file(b'{"w": {}}', length=5000),
    "header not JSON": raw_file(b"{not json}"),
    "tensor past the end": raw_file(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', b"\0" * 4),
    "unknown dtype": raw_file(b'{"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "metadata not strings": raw_file(b'{"__metadata__":{"playground":3}}'),
}


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def header_end(data: bytes) -> int:
    """Where the JSON header of the safetensors bytes ``data`` ends (8 when it cannot be read)."""
    return 8 + struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else 8


def mutated(data: bytes, kind: str, position: float, payload: bytes) -> bytes:
    """``data`` damaged: ``flip`` xors ``payload`` in at ``position`` (a fraction of the header, where a
    change matters most, past 1.0 into the tensors), ``truncate`` cuts it there, ``extend`` appends
    ``payload``, ``length`` rewrites the header length as ``payload`` read as a number."""
    end = min(header_end(data), len(data))
    at = min(len(data) - 1, int(position * end)) if data else 0
    if kind == "flip":
        flipped = bytearray(data)
        for offset, byte in enumerate(payload or b"\x01"):
            if at + offset < len(flipped):
                flipped[at + offset] ^= byte or 1
        return bytes(flipped)
    if kind == "truncate":
        return data[:at]
    if kind == "extend":
        return data + payload
    number = int.from_bytes((payload + bytes(8))[:8], "little")
    return struct.pack("<Q", number) + data[8:]


def mutations():
    """A hypothesis strategy of ``(kind, position, payload)`` for :func:`mutated`."""
    return st.tuples(
        st.sampled_from(["flip", "flip", "truncate", "extend", "length"]),
        st.floats(0.0, 1.5),
        st.binary(min_size=1, max_size=8),
    )


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def edited(draw, real):
    """``real`` (decoded JSON) with some values kept, some dropped or replaced by any JSON, nested
    objects edited the same way; sometimes any JSON at all instead."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    if not isinstance(real, dict):
        return real if draw(st.booleans()) else draw(JSON_VALUES)
    out = {}
    for key, value in real.items():
        choice = draw(st.sampled_from(["keep", "keep", "edit", "drop", "replace"]))
        if choice != "drop":
            out[key] = (
                value if choice == "keep" else draw(edited(value)) if choice == "edit" else draw(JSON_VALUES)
            )
    return out


def edited_metadata(real: dict):
    """JSON texts of :func:`edited` metadata: what a hand-edited or foreign checkpoint may hold."""
    return edited(real).map(json.dumps)
