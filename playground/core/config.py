"""Typed experiment configs, TOML recipes and ``--set key=value`` overrides.

Every experiment declares a ``Config`` dataclass. A recipe (``recipes/NAME.toml``) names the
experiment, a shared ``[config]`` table and one table per preset::

    experiment = "classify"
    description = "Small CNN on Fashion-MNIST"
    [config]
    dataset = "fashion_mnist"
    [presets.quick]
    epochs = 2
    [presets.full]
    epochs = 15

Values are checked against the dataclass: an unknown key or a value of the wrong type is a
:class:`~playground.errors.ConfigError` naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

from playground.core.registry import OLD_RECIPES
from playground.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RECIPE_KEYS = {"experiment", "description", "config", "presets"}


@dataclasses.dataclass
class Recipe:
    """A parsed recipe file: its experiment name, shared values and presets."""

    name: str
    path: Path
    experiment: str
    description: str
    base: dict[str, Any]
    presets: dict[str, dict[str, Any]]

    def values(self, preset: str | None) -> dict[str, Any]:
        """The shared values with ``preset``'s values laid over them."""
        if preset is None:
            return dict(self.base)
        if preset not in self.presets:
            known = ", ".join(self.presets) or "none"
            raise ConfigError(f"recipe {self.path} has no preset {preset!r}; presets: {known}")
        return {**self.base, **self.presets[preset]}


def load_recipe(path: str | Path) -> Recipe:
    """Read and structurally check a recipe TOML file."""
    path = _renamed_recipe(Path(path))
    if not path.is_file():
        raise ConfigError(f"recipe file {path} does not exist; list recipes with `ls recipes/`")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"recipe {path} is not valid TOML: {err}") from None
    unknown = set(data) - RECIPE_KEYS
    if unknown:
        raise ConfigError(
            f"unknown key {sorted(unknown)[0]!r} at the top of recipe {path}; "
            f"allowed: {', '.join(sorted(RECIPE_KEYS))}"
        )
    if not isinstance(data.get("experiment"), str):
        raise ConfigError(f'recipe {path} must name its experiment, e.g. experiment = "classify"')
    presets = data.get("presets", {})
    if not all(isinstance(v, dict) for v in presets.values()):
        raise ConfigError(f"recipe {path}: every entry under [presets] must be a table like [presets.quick]")
    return Recipe(
        path.stem, path, data["experiment"], data.get("description", ""), data.get("config", {}), presets
    )


def _renamed_recipe(path: Path) -> Path:
    """``path``, or the recipe it was renamed to when each technique got one name (with a notice)."""
    new_name = OLD_RECIPES.get(path.name)
    if path.is_file() or new_name is None or not (path.parent / new_name).is_file():
        return path
    print(f"note: {path.name} is now {new_name}; the old name goes in the next release", file=sys.stderr)
    return path.parent / new_name


def config_fields(config_cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a config dataclass."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls) if f.init}


# config keys renamed when every technique got the one save flag; the old keys work for one release
RENAMED_KEYS = {"save_checkpoint": "save_models", "save_checkpoints": "save_models"}


def renamed_key(key: str, source: str) -> str:
    """``key``, or its new name (with a notice) when it was renamed."""
    if key in RENAMED_KEYS:
        print(
            f"note: {key} in {source} is now {RENAMED_KEYS[key]}; the old key goes in the next release",
            file=sys.stderr,
        )
        return RENAMED_KEYS[key]
    return key


def build_config(config_cls: type, values: dict[str, Any], source: str = "config"):
    """Instantiate ``config_cls`` from ``values``, checking every key and type."""
    fields = config_fields(config_cls)
    checked = {}
    for key, value in values.items():
        key = renamed_key(key, source)
        if key not in fields:
            raise ConfigError(f"unknown key {key!r} in {source}; known keys: {', '.join(fields)}")
        checked[key] = coerce(value, fields[key], key, source)
    try:
        config = config_cls(**checked)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{source}: {err}") from None
    return config


def coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Check ``value`` against ``annotation``; widen int to float, list to tuple."""
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
                f"{source}: {key} = {value!r} is not allowed; choose one of {', '.join(map(repr, args))}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(key, value, annotation, source)
        item_type = args[0] if args else Any
        items = [coerce(v, item_type, key, source) for v in value]
        return tuple(items) if origin is tuple else items
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float) and isinstance(value, bool):
        raise _type_error(key, value, annotation, source)
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise _type_error(key, value, annotation, source)
    return value


def _type_error(key: str, value: Any, annotation: Any, source: str) -> ConfigError:
    wanted = getattr(annotation, "__name__", str(annotation))
    return ConfigError(f"{source}: {key} must be {wanted}, got {type(value).__name__} {value!r}")


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` override; the value is read as TOML, else as a string.

    ``epochs=3`` gives an int, ``lr=1e-3`` a float, ``classes=[0,1]`` a list and
    ``dataset=digits`` the string ``"digits"``.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. --set epochs=3")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(values: dict[str, Any], overrides: list[str], config_cls: type) -> dict[str, Any]:
    """Lay ``key=value`` overrides over ``values``, checking each against ``config_cls``."""
    merged = dict(values)
    fields = config_fields(config_cls)
    for text in overrides:
        key, value = parse_override(text)
        key = renamed_key(key, f"--set {text}")
        if key not in fields:
            raise ConfigError(f"unknown key {key!r} in --set {text}; known keys: {', '.join(fields)}")
        merged[key] = coerce(value, fields[key], key, f"--set {text}")
    return merged


def config_to_toml(config: Any, header: dict[str, Any] | None = None) -> str:
    """Render a config dataclass (plus optional top-level keys) as TOML."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in (header or {}).items()]
    lines.append("\n[config]")
    for key, value in dataclasses.asdict(config).items():
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@dataclasses.dataclass
class RunConfig:
    """Fields every experiment config has; experiments subclass this.

    ``name`` names the run directory, ``seed`` makes the run repeatable, ``device`` is
    ``auto`` (cuda, then mps, then cpu) or a device name, ``out`` overrides the runs root,
    ``threads`` sets torch's CPU threads (0: ``$PLAYGROUND_THREADS``, else torch's default) and
    ``save_models`` writes the trained models as safetensors beside the results.
    """

    name: str = "run"
    seed: int = 0
    device: str = "auto"
    out: str = ""
    threads: int = 0
    save_models: bool = True

    def __post_init__(self):
        if self.threads < 0:
            raise ConfigError(f"threads must be 0 (the default) or more, got {self.threads}")
