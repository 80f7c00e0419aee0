"""Safe checkpoints: tensors in safetensors, metadata as JSON in the file's header.

Nothing is ever unpickled: ``safetensors`` stores raw tensors only, so loading a
checkpoint from an untrusted source cannot run code.

Every loader reads through :func:`load_checkpoint` (or :func:`read_safetensors` for plain state
dicts written elsewhere) and says what it needs: the tensors (:class:`TensorSpec`: rank, sizes,
kind of number) and the metadata keys and their types (:func:`check_fields`, which also checks the
JSON files that sit next to checkpoints). A file that lacks them, or is damaged in any way, is one
:class:`~playground.errors.CheckpointError` naming the file and the problem, never a ``KeyError``.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from playground.errors import CheckpointError

METADATA_KEY = "playground"
REDO = "re-create it by re-running the experiment that wrote it"
KINDS = ("float", "int", "number", "any")
_INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_SHORT = reprlib.Repr()  # bounded: a hostile file's names and values are cut in messages
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxlevel = 40, 40, 4, 4, 2
LISTED = 5  # names an error shows before "(+N more)"


def write_json_whole(path: str | Path, data: Any) -> Path:
    """Write ``data`` as JSON through a temporary file renamed over ``path``: whole or not at all."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    return path


def save_checkpoint(
    path: str | Path, model: torch.nn.Module | dict[str, torch.Tensor], metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s state dict (or a plain tensor dict) with JSON ``metadata``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    header = {METADATA_KEY: json.dumps(metadata or {}, default=str)}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    tmp.replace(path)  # atomic: a crash never leaves a half-written checkpoint behind
    return path


def short(value: Any) -> str:
    """``value`` as a bounded ``repr``: long strings, lists and dicts from a hostile file are cut."""
    return _SHORT.repr(value)


def listed(names: list[str], limit: int = LISTED) -> str:
    """The first ``limit`` names, each cut, then ``(+N more)``."""
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(short(n) for n in names[:limit]) + more


def cut(text: str, limit: int = 160) -> str:
    """``text`` on one line, at most ``limit`` characters (cut at the end, marked with ``...``)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reason(err: BaseException) -> str:
    """What an exception says, on one bounded line (its type's name when it says nothing)."""
    return cut(str(err)) or type(err).__name__


def _json_kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a string", list: "a list", dict: "a JSON object"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


@dataclass(frozen=True)
class TensorSpec:
    """What a tensor a loader needs must be.

    ``shape``: one entry per dimension, an ``int`` (that exact size), a ``str`` naming a size every
    tensor of the same check that names it shares (``"N"``: a gallery's rows and its labels), or None
    (any size); ``shape=None`` allows any rank. ``kind``: ``"float"`` (floating point), ``"int"``
    (an integer type), ``"number"`` (either) or ``"any"``. ``optional``: it may be absent, but when
    present it must fit."""

    shape: tuple[int | str | None, ...] | None = None
    kind: str = "float"
    optional: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown tensor kind {self.kind!r}; choose one of {', '.join(KINDS)}")

    def describe(self) -> str:
        dims = "any shape" if self.shape is None else "(" + ", ".join(_dim(d) for d in self.shape) + ")"
        return dims if self.kind == "any" else f"{self.kind} {dims}"


def _dim(size: int | str | None) -> str:
    return "*" if size is None else str(size)


def _kind_fits(kind: str, dtype: torch.dtype) -> bool:
    integer = dtype in _INTEGERS
    return {
        "float": dtype.is_floating_point,
        "int": integer,
        "number": dtype.is_floating_point or integer,
    }.get(kind, True)


def check_tensors(
    path: str | Path, tensors: Mapping[str, torch.Tensor], specs: Mapping[str, TensorSpec], hint: str = REDO
) -> None:
    """Raise one :class:`CheckpointError` (ending with ``hint``) unless every tensor of ``specs`` is in
    ``tensors`` and fits its spec (named sizes agreeing across tensors)."""
    sizes: dict[str, tuple[int, str]] = {}  # named size -> (value, the tensor that set it)
    for name, spec in specs.items():
        tensor = tensors.get(name)
        if tensor is None:
            if spec.optional:
                continue
            raise CheckpointError(
                f"checkpoint {path} lacks the tensor {short(name)} "
                f"(it holds {listed(sorted(tensors)) or 'none'}); {hint}"
            )
        problem = _tensor_problem(tensor, spec, sizes, name)
        if problem is not None:
            shape = short(tuple(tensor.shape))
            raise CheckpointError(
                f"checkpoint {path}: tensor {short(name)} is {str(tensor.dtype)[6:]} {shape}, "
                f"expected {spec.describe()}{problem}; {hint}"
            )


def _tensor_problem(tensor: torch.Tensor, spec: TensorSpec, sizes: dict, name: str) -> str | None:
    """None when ``tensor`` fits ``spec`` (recording its named sizes), else what to add to the error."""
    if not _kind_fits(spec.kind, tensor.dtype):
        return ""
    if spec.shape is None:
        return None
    if tensor.ndim != len(spec.shape):
        return ""
    for want, got in zip(spec.shape, tensor.shape):
        if isinstance(want, int) and got != want:
            return ""
        if isinstance(want, str):
            value, source = sizes.setdefault(want, (got, name))
            if value != got:
                return f" ({want} = {value}, as in {source!r})"
    return None


def _type_name(expected: Any) -> str:
    if isinstance(expected, tuple):
        return " or ".join(_type_name(e) for e in expected)
    if isinstance(expected, range):
        return f"an int in {expected.start}..{expected.stop - 1}"
    if typing.get_origin(expected) is list:
        return f"a list of {_type_name(typing.get_args(expected)[0])}"
    return {dict: "a JSON object", list: "a list", str: "a string", float: "a finite number"}.get(
        expected, getattr(expected, "__name__", str(expected))
    )


def _fits(value: Any, expected: Any) -> bool:
    """Whether JSON ``value`` is ``expected``: a type, a tuple of them, ``list[T]`` or a ``range`` of ints."""
    if isinstance(expected, tuple):
        return any(_fits(value, e) for e in expected)
    if isinstance(expected, range):
        return _fits(value, int) and value in expected
    if typing.get_origin(expected) is list:
        item = typing.get_args(expected)[0]
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:  # JSON writes 1.0 as 1
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, expected)


def check_fields(
    data: Any,
    where: str,
    required: Mapping[str, Any] | None = None,
    optional: Mapping[str, Any] | None = None,
    error: type[Exception] = CheckpointError,
    hint: str = REDO,
) -> dict[str, Any]:
    """``data`` (decoded JSON: a checkpoint's metadata or a file next to it) checked: a JSON object whose
    ``required`` keys are present and of their types and whose ``optional`` keys present are of theirs
    (types as :func:`_fits` reads them). Anything else is one ``error`` naming ``where`` and the key,
    ending with ``hint``."""
    if not isinstance(data, dict):
        shown = "" if data is None else f" ({short(data)})"
        raise error(f"{where} is {_json_kind(data)}{shown}, not a JSON object; {hint}")
    for key, expected in {**(optional or {}), **(required or {})}.items():
        if key not in data:
            if required and key in required:
                raise error(f"{where} lacks {key!r} ({_type_name(expected)}); {hint}")
            continue
        if not _fits(data[key], expected):
            raise error(f"{where}: {key!r} is {short(data[key])}, not {_type_name(expected)}; {hint}")
    return data


def read_safetensors(
    path: str | Path, what: str = "checkpoint", hint: str = REDO
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of the safetensors file ``path`` and its header's string metadata. A missing file,
    and whatever the library or torch raises on a damaged one, is one :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; check the path, or {hint}")
    try:
        with safe_open(str(path), framework="pt") as handle:  # one pass: header and tensors
            header = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError, MemoryError) as err:
        raise CheckpointError(
            f"{what} {path} is corrupt or not a safetensors file ({reason(err)}); {hint}"
        ) from None
    return tensors, header


def load_checkpoint(
    path: str | Path,
    tensors: Mapping[str, TensorSpec] | None = None,
    metadata: Mapping[str, Any] | None = None,
    optional_metadata: Mapping[str, Any] | None = None,
    hint: str = REDO,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(state_dict, metadata)``, the metadata
    always a dict. ``tensors`` (name -> :class:`TensorSpec`), ``metadata`` and ``optional_metadata``
    (key -> type, see :func:`check_fields`) say what the caller needs; a file without it is one
    :class:`CheckpointError` naming the file and the problem, ending with ``hint`` (how to fix it)."""
    state, header = read_safetensors(path, hint=hint)
    try:
        meta = json.loads(header.get(METADATA_KEY, "{}"))
    except (ValueError, RecursionError) as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a safetensors file (its metadata is not JSON: "
            f"{reason(err)}); {hint}"
        ) from None
    check_fields(meta, f"the metadata of checkpoint {path}", metadata, optional_metadata, hint=hint)
    check_tensors(path, state, tensors or {}, hint)
    return state, meta


def build_loaded(
    path: str | Path,
    state: Mapping[str, torch.Tensor],
    build: Callable[[], torch.nn.Module],
    what: str = "the model its metadata describes",
    hint: str = REDO,
) -> torch.nn.Module:
    """``build()`` with ``state`` loaded strictly. The architecture is first built on the meta device (no
    memory) and its tensor names and shapes compared with ``state``'s, so metadata that describes a huge
    model costs nothing; a mismatch is one :class:`CheckpointError` saying the file does not fit
    ``what``, naming the first differing tensor and the missing and unexpected ones."""
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in build().state_dict().items()}
    found = {name: tuple(t.shape) for name, t in state.items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [name for name in expected if name in found and found[name] != expected[name]]
    problems = [f"{short(n)} is {short(found[n])} there, {short(expected[n])} here" for n in wrong[:1]]
    problems += [f"missing {listed(missing)}"] if missing else []
    problems += [f"unexpected {listed(unexpected)}"] if unexpected else []
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit {what}: {'; '.join(problems)}; {hint}")
    model = build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # e.g. a dtype the parameter cannot take
        raise CheckpointError(f"checkpoint {path} does not fit {what}: {reason(err)}; {hint}") from None
    return model


def load_into(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (shapes must match); return its metadata."""
    state, metadata = load_checkpoint(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit this model ({reason(err)}); "
            "build the model with the config stored in the checkpoint's metadata"
        ) from None
    return metadata
