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

A field whose type is itself a dataclass is a **section**: a table in the recipe
(``[config.side_info]``, ``[presets.quick.side_info]``), a dotted key on the command line
(``--set side_info.dim=64``) and the very object the technique's code receives (the section
*is* the inner spec, not a copy of some of its fields). Presets merge into sections key by key.

Values are checked against the dataclass: an unknown key or a value of the wrong type is a
:class:`~playground.errors.ConfigError` naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playground.core.config_values import MAX_DEPTH, brief, check_depth, coerce, shown
from playground.core.registry import OLD_RECIPES
from playground.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RECIPE_KEYS = {"experiment", "description", "config", "presets", "sweep"}
MAX_RECIPE_BYTES = 1_000_000  # a recipe is a few hundred bytes; a bigger file is not one
MAX_OVERRIDE_CHARS = 4096  # one --set key=value


@dataclasses.dataclass
class Recipe:
    """A parsed recipe file: its experiment name, shared values and presets."""

    name: str
    path: Path
    experiment: str
    description: str
    base: dict[str, Any]
    presets: dict[str, dict[str, Any]]
    sweep: dict[str, Any] = dataclasses.field(
        default_factory=dict
    )  # [sweep.ranges]: playground sweep --sample

    def values(self, preset: str | None) -> dict[str, Any]:
        """The shared values with ``preset``'s values laid over them (sections merge key by key)."""
        if preset is None:
            return dict(self.base)
        if preset not in self.presets:
            known = ", ".join(self.presets) or "none"
            raise ConfigError(f"recipe {self.path} has no preset {preset!r}; presets: {known}")
        return merge_values(self.base, self.presets[preset])


def merge_values(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` laid over ``base``; a table in both (a section) merges key by key."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_recipe(path: str | Path) -> Recipe:
    """Read and structurally check a recipe TOML file; anything wrong with it is one ConfigError."""
    path = _renamed_recipe(Path(path))
    if not path.is_file():
        raise ConfigError(f"recipe file {path} does not exist; list recipes with `ls recipes/`")
    data = _read_toml(path)
    unknown = set(data) - RECIPE_KEYS
    if unknown:
        raise ConfigError(
            f"unknown key {shown(sorted(unknown)[0])} at the top of recipe {path}; "
            f"allowed: {', '.join(sorted(RECIPE_KEYS))}"
        )
    if not isinstance(data.get("experiment"), str):
        raise ConfigError(f'recipe {path} must name its experiment, e.g. experiment = "classify"')
    if not isinstance(data.get("description", ""), str):
        raise ConfigError(f"recipe {path}: description must be a string")
    for table in ("config", "presets", "sweep"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(
                f"recipe {path}: [{table}] must be a table, like [{table}] on a line of its own"
            )
    presets = data.get("presets", {})
    if not all(isinstance(v, dict) for v in presets.values()):
        raise ConfigError(f"recipe {path}: every entry under [presets] must be a table like [presets.quick]")
    return Recipe(
        path.stem,
        path,
        data["experiment"],
        data.get("description", ""),
        data.get("config", {}),
        presets,
        data.get("sweep", {}),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    """A recipe file parsed: at most :data:`MAX_RECIPE_BYTES`, UTF-8, valid TOML, not too deep."""
    try:
        size = path.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise ConfigError(
                f"recipe {path} is {size:,} bytes, more than 1 MB; a recipe is a short TOML file"
            )
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise ConfigError(f"recipe {path} cannot be read: {err.strerror or err}") from None
    except ValueError as err:  # TOMLDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise ConfigError(f"recipe {path} is not valid TOML: {brief(str(err), 200)}") from None
    except RecursionError:
        raise ConfigError(f"recipe {path} is nested more than {MAX_DEPTH} levels deep") from None
    check_depth(data, f"recipe {path}")
    return data


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


def section_type(annotation: Any) -> type | None:
    """The dataclass of a section field, or None for a plain field."""
    return annotation if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) else None


# config keys renamed when every technique got the one save flag or a section; the old keys work for
# one release. A dotted new name moves the value into a section.
RENAMED_KEYS = {"save_checkpoint": "save_models", "save_checkpoints": "save_models"}


def rename_keys(
    values: dict[str, Any], source: str, renamed: dict[str, str], notify: bool = True
) -> dict[str, Any]:
    """``values`` with old keys under their new names (with a notice unless ``notify`` is false: a
    reader of old runs), dotted ones moved into sections."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        new_key = renamed_key(key, source, renamed) if notify else renamed.get(key, key)
        *sections, last = new_key.split(".")
        table = out
        for section in sections:
            table = table.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: {brief(section)} is given both as a value and as a table")
        if isinstance(table.get(last), dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {brief(new_key)} is given both as a value and as a table")
            value = merge_values(table[last], value)
        table[last] = value
    return out


def renamed_key(key: str, source: str, renamed: dict[str, str]) -> str:
    """``key``, or its new name with a notice when it was renamed."""
    new_key = renamed.get(key, key)
    if new_key != key:
        print(
            f"note: {key} in {source} is now {new_key}; the old key goes in the next release", file=sys.stderr
        )
    return new_key


def renamed_keys_of(config_cls: type) -> dict[str, str]:
    """The project-wide renames plus the class's own ``RENAMED_KEYS`` (old flat key -> section path)."""
    return {**RENAMED_KEYS, **getattr(config_cls, "RENAMED_KEYS", {})}


def build_config(config_cls: type, values: dict[str, Any], source: str = "config"):
    """Instantiate ``config_cls`` from ``values``, checking every key and type (sections recursively)."""
    fields = config_fields(config_cls)
    checked = {}
    for key, value in rename_keys(values, source, renamed_keys_of(config_cls)).items():
        if key not in fields:
            raise ConfigError(f"unknown key {shown(key)} in {source}; known keys: {', '.join(fields)}")
        section = section_type(fields[key])
        if section is None:
            checked[key] = coerce(value, fields[key], key, source)
        elif isinstance(value, section):
            checked[key] = value
        elif isinstance(value, dict):
            checked[key] = _build_section(section, value, f"{source} [{key}]")
        else:
            raise ConfigError(
                f"{source}: {key} is a section; give a table like [config.{key}] or {key}.x = ..."
            )
    try:
        config = config_cls(**checked)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{source}: {err}") from None
    return config


def _build_section(section: type, values: dict[str, Any], source: str):
    """A section from its table; its own checks' errors name the table too."""
    try:
        return build_config(section, values, source)
    except ConfigError as err:
        if str(err).startswith(source):
            raise
        raise ConfigError(f"{source}: {err}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` override; the value is read as TOML, else as a string.

    ``epochs=3`` gives an int, ``lr=1e-3`` a float, ``classes=[0,1]`` a list and
    ``dataset=digits`` the string ``"digits"``.
    """
    if len(text) > MAX_OVERRIDE_CHARS:
        raise ConfigError(f"override {brief(text)} is longer than {MAX_OVERRIDE_CHARS} characters")
    if any(c in text for c in "\n\r\0"):
        raise ConfigError(f"override {shown(text)} must be one line of key=value, without line breaks")
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {shown(text)} must look like key=value, e.g. --set epochs=3")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except ValueError:  # not TOML (TOMLDecodeError), or an integer of more than 4300 digits
        value = raw
    except RecursionError:
        raise ConfigError(f"override {brief(text)} is nested more than {MAX_DEPTH} levels deep") from None
    check_depth(value, f"override {brief(text)}")
    return key, value


def field_type(config_cls: type, path: str, source: str) -> Any:
    """The annotation of the (possibly dotted) field ``path`` of ``config_cls``."""
    annotation: Any = config_cls
    for depth, key in enumerate(path.split(".")):
        fields = config_fields(annotation)
        if key not in fields:
            where = ".".join(path.split(".")[:depth]) or "the config"
            raise ConfigError(
                f"unknown key {shown(key)} in {source} ({where}); known keys: {', '.join(fields)}"
            )
        annotation = fields[key]
        if section_type(annotation) is None and depth < path.count("."):
            raise ConfigError(f"{source}: {key} is not a section, so {brief(path)} names nothing")
    if section_type(annotation) is not None:
        raise ConfigError(
            f"{source}: {brief(path)} is a section; set one of its keys, e.g. {brief(path)}.x=..."
        )
    return annotation


def apply_overrides(values: dict[str, Any], overrides: list[str], config_cls: type) -> dict[str, Any]:
    """Lay ``key=value`` overrides (``section.key=value`` inside a section) over ``values``,
    checking each against ``config_cls``."""
    merged = rename_keys(values, "the recipe", renamed_keys_of(config_cls))
    for text in overrides:
        key, value = parse_override(text)
        source = f"--set {brief(text)}"
        key = renamed_key(key, source, renamed_keys_of(config_cls))
        value = coerce(value, field_type(config_cls, key, source), key, source)
        merged = merge_values(merged, rename_keys({key: value}, source, {}))
    return merged


def config_value(config: Any, path: str) -> Any:
    """The value of the (possibly dotted) field ``path`` of a config."""
    for key in path.split("."):
        config = getattr(config, key)
    return config


def config_to_toml(config: Any, header: dict[str, Any] | None = None) -> str:
    """Render a config dataclass (plus optional top-level keys) as TOML; sections as sub-tables."""
    lines = [f"{k} = {toml_value(v)}" for k, v in (header or {}).items()]
    lines += _toml_table("config", config)
    return "\n".join(lines) + "\n"


def _toml_table(name: str, config: Any) -> list[str]:
    lines, sections = [f"\n[{name}]"], []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            sections.append((f"{name}.{field.name}", value))
        elif value is not None:
            lines.append(f"{field.name} = {toml_value(value)}")
    for section_name, section in sections:
        lines += _toml_table(section_name, section)
    return lines


BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    """``value`` written as TOML, as ``config.toml`` holds it and ``--set key=`` reads it back.

    Strings are basic strings with every backslash, quote and control character escaped (a path
    like ``C:\\new`` stays a backslash and an ``n``, not a line break)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: Any) -> str:
    return key if BARE_KEY.match(str(key)) else toml_value(str(key))


def chosen_methods(methods: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """The subset a run compares, in ``known`` order: ``methods`` (empty: all of them).

    ``methods`` is the one name, in every technique, of the list field that runs a subset of what the
    technique compares: uncertainty's methods, latency's variants, active's strategies, swav's inits, ...
    """
    unknown = [name for name in methods if name not in known]
    if unknown:
        raise ConfigError(
            f"methods: unknown {', '.join(map(repr, unknown))}; valid: {', '.join(known)} (empty: all)"
        )
    return tuple(name for name in known if not methods or name in methods)


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
