"""Reading a file someone handed the playground (an import, an upload, a run folder copied from
elsewhere) with one clear error naming the file: missing, a folder, unreadable, larger than the
reader takes, not UTF-8, or JSON that is damaged or nested beyond what the parser can follow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from playground.errors import DataFormatError, DataNotFoundError

MAX_TEXT_BYTES = 64 * 2**20  # an imported label or JSON file; real ones are a few MB at most


def text_bytes(data: bytes, where: str, limit: int | None = None) -> str:
    """``data`` (an upload's bytes) as UTF-8 text; a clear error for another type, a size over
    ``limit`` bytes (default :data:`MAX_TEXT_BYTES`) or bytes that are not UTF-8."""
    limit = MAX_TEXT_BYTES if limit is None else limit
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataFormatError(f"{where}: expected the file's bytes, got {type(data).__name__}")
    if len(data) > limit:
        raise DataFormatError(f"{where} is {len(data):,} bytes; at most {limit:,} are read")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{where} is not UTF-8 text (byte {err.start}: {err.reason})") from None


def read_text(path: str | Path, limit: int | None = None) -> str:
    """The UTF-8 text of the file ``path``: DataNotFoundError when there is none, DataFormatError when
    it is a folder, cannot be read, is over ``limit`` bytes (default :data:`MAX_TEXT_BYTES`) or is not
    UTF-8."""
    path, limit = Path(path), MAX_TEXT_BYTES if limit is None else limit
    if not path.exists():
        raise DataNotFoundError(f"{path} does not exist")
    if not path.is_file():
        raise DataFormatError(f"{path} is not a file")
    try:
        size = path.stat().st_size
        if size > limit:
            raise DataFormatError(f"{path} is {size:,} bytes; at most {limit:,} are read")
        data = path.read_bytes()
    except OSError as err:
        raise DataFormatError(f"{path} cannot be read ({err.strerror or err})") from None
    return text_bytes(data, str(path), limit)


def parse_json(text: str, where: str) -> Any:
    """``text`` parsed as JSON; a DataFormatError naming ``where`` when it is not valid JSON or nests
    deeper than Python's parser can follow (``[[[[...`` raised a RecursionError)."""
    try:
        return json.loads(text)
    except ValueError as err:
        raise DataFormatError(f"{where} is not valid JSON ({err})") from None
    except RecursionError:
        raise DataFormatError(f"{where} nests its JSON too deeply to read") from None


def read_json_file(path: str | Path, limit: int | None = None) -> Any:
    """:func:`read_text` then :func:`parse_json`."""
    return parse_json(read_text(path, limit), str(path))


def expect_object(value: Any, where: str, what: str = "a JSON object") -> dict:
    """``value`` when it is a dict (a JSON object); a DataFormatError naming ``where`` otherwise."""
    if not isinstance(value, dict):
        raise DataFormatError(f"{where} must hold {what}, not {type(value).__name__}")
    return value


def json_object_text(meta: Any, where: str) -> str:
    """Metadata stored as JSON text: a dict (None: empty) of JSON-able values, else one DataFormatError
    naming ``where`` ("a frame's meta", "item 'x1': meta")."""
    if meta is not None and not isinstance(meta, Mapping):
        raise DataFormatError(f"{where} must be a dict, got {type(meta).__name__}")
    try:
        return json.dumps(dict(meta or {}))
    except (TypeError, ValueError) as err:
        raise DataFormatError(f"{where} must be JSON-able ({err})") from None
