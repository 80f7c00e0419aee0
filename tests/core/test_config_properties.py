"""Property-based tests of the config parser: whatever a recipe or ``--set`` holds, every technique's
config either builds or is refused with one ConfigError, never another exception."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.core.config import (
    apply_overrides,
    build_config,
    config_fields,
    parse_override,
    section_type,
    toml_value,
)
from playground.core.registry import TECHNIQUES, get_experiment
from playground.core.runner import config_from_recipe
from playground.errors import ConfigError

CONFIGS = {t.key: get_experiment(t.key).Config for t in TECHNIQUES}
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def field_paths(config_cls, prefix: str = "") -> list[str]:
    """Every (dotted) field of a config class, sections' fields included."""
    paths = []
    for name, annotation in config_fields(config_cls).items():
        section = section_type(annotation)
        paths += field_paths(section, f"{prefix}{name}.") if section else [prefix + name]
    return paths


PATHS = {key: field_paths(cls) for key, cls in CONFIGS.items()}
SECTIONS = {
    key: [n for n, a in config_fields(cls).items() if section_type(a)] for key, cls in CONFIGS.items()
}
WRONG_KEYS = ["epochz", "a.b", "", " ", "name.x", "net", "x" * 300]
ALL_KEYS = sorted({path for paths in PATHS.values() for path in paths} | set(WRONG_KEYS))

scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["digits", "shapes", "adam", "cosine", "fp32", "small_cnn", "x" * 5000]),
)


def toml_values(keys: list[str]):
    """TOML-ish values: scalars, lists and tables (whose keys are drawn from ``keys``)."""
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(keys), inner, max_size=4),
        max_leaves=12,
    )


def raw_values(keys: list[str]):
    """What may follow ``key=`` on the command line."""
    special = ["nan", "inf", "-inf", "1e400", "1" * 5000, "[" * 3000 + "]" * 3000, "{" * 3000, '"\\ud800"']
    return st.one_of(st.text(max_size=40), toml_values(keys).map(toml_value), st.sampled_from(special))


def keys_of(technique: str):
    """Mostly the technique's own (dotted) keys and section names, sometimes a wrong one."""
    own = PATHS[technique] + SECTIONS[technique]
    return st.one_of(st.sampled_from(own), st.sampled_from(own), st.sampled_from(ALL_KEYS))


def set_strings(technique: str):
    """``key=value`` with a mostly real key and a TOML-ish or arbitrary value, or any text at all."""
    keys = PATHS[technique] + WRONG_KEYS
    pair = st.tuples(keys_of(technique), raw_values(keys)).map(lambda kv: f"{kv[0]}={kv[1]}")
    return st.one_of(pair, pair, st.text(max_size=60))


def builds_or_refuses(make) -> None:
    """``make()`` returns a config or raises one short ConfigError; nothing else escapes."""
    try:
        config = make()
    except ConfigError as err:
        assert "\n" not in str(err) and len(str(err)) < 2000, str(err)[:300]
    else:
        assert dataclasses.is_dataclass(config)


@PROPERTY
@given(st.data())
def test_any_set_strings_build_a_config_or_raise_one_config_error(data):
    technique = data.draw(st.sampled_from(sorted(CONFIGS)))
    config_cls, overrides = (
        CONFIGS[technique],
        data.draw(st.lists(set_strings(technique), min_size=1, max_size=3)),
    )
    builds_or_refuses(lambda: build_config(config_cls, apply_overrides({}, overrides, config_cls)))


@PROPERTY
@given(st.text(max_size=200))
def test_parse_override_reads_any_text_or_raises_one_config_error(text):
    try:
        key, _ = parse_override(text)
    except ConfigError as err:
        assert "\n" not in str(err)
    else:
        assert key and key == key.strip()


@PROPERTY
@given(st.text(max_size=200))
def test_any_text_written_by_toml_value_is_read_back_by_set_unchanged(text):
    """What the CLI, the sweep and the pages write after ``--set key=`` (``--out C:\\new`` included)."""
    assert parse_override(f"key={toml_value(text)}") == ("key", text)


def toml_tables(technique: str, max_size: int = 5):
    keys = PATHS[technique] + SECTIONS[technique] + WRONG_KEYS
    return st.dictionaries(keys_of(technique), toml_values(keys), max_size=max_size)


@PROPERTY
@given(st.data())
def test_anytoml_values_build_a_config_or_raise_one_config_error(data):
    technique = data.draw(st.sampled_from(sorted(CONFIGS)))
    config_cls, values = CONFIGS[technique], data.draw(toml_tables(technique))
    builds_or_refuses(lambda: build_config(config_cls, values, "hypothesis"))


def test_nan_and_infinity_are_refused_where_a_number_is_expected():
    config_cls = CONFIGS["classify"]
    for text in ("nan", "inf", "-inf", "1e400"):
        with pytest.raises(ConfigError, match="must be a finite number"):
            apply_overrides({}, [f"lr={text}"], config_cls)
        with pytest.raises(ConfigError, match="must be a finite number"):
            build_config(config_cls, {"lr": float(text)})
        with pytest.raises(ConfigError, match="must be a finite number"):
            build_config(CONFIGS["uncertainty"], {"net": {"lr": float(text)}})
    assert math.isfinite(build_config(config_cls, {"lr": 1e-3}).lr)


def recipe_text(experiment: str, base: dict, preset: dict) -> str:
    lines = [f"experiment = {toml_value(experiment)}", "[config]"]
    lines += [f'"{k}" = {toml_value(v)}' for k, v in base.items()]
    lines += ["[presets.quick]"] + [f'"{k}" = {toml_value(v)}' for k, v in preset.items()]
    return "\n".join(lines) + "\n"


@st.composite
def recipe_texts(draw) -> str:
    """Any text, or a recipe for a (mostly real) technique with TOML-ish values under its keys."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=300))
    technique = draw(st.sampled_from(sorted(CONFIGS)))
    experiment = draw(st.sampled_from([technique] * 8 + ["nope", ""]))
    return recipe_text(experiment, draw(toml_tables(technique, 4)), draw(toml_tables(technique, 3)))


@PROPERTY
@given(recipe_texts(), st.sampled_from(["quick", "full", None]))
def test_any_recipe_file_builds_a_config_or_raises_one_config_error(tmp_path_factory, text, preset):
    path = tmp_path_factory.mktemp("recipe") / "hostile.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    builds_or_refuses(lambda: config_from_recipe(path, preset)[1])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'experiment = "classify"\n# caf\xe9 in Latin-1\n', "not valid TOML"),  # not UTF-8
        (b"experiment = " + b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'experiment = "classify"\n[config]\n' + b"a." * 2000 + b"b = 1\n", "nested"),
        (b'experiment = "classify"\nconfig = 3\n', "[config] must be a table"),
        (b'experiment = "classify"\npresets = 3\n', "[presets] must be a table"),
        (b'experiment = "classify"\ndescription = 3\n', "description must be a string"),
        (b'experiment = "classify"\n[config]\nseed = ' + b"1" * 5000 + b"\n", "not valid TOML"),
    ],
    ids=[
        "latin-1",
        "deep-array",
        "deep-table",
        "config-not-table",
        "presets-not-table",
        "description",
        "5000-digits",
    ],
)
def test_hostile_recipe_files_are_one_config_error(tmp_path, content, fragment):
    path = tmp_path / "hostile.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        config_from_recipe(path)


@pytest.mark.parametrize(
    ("technique", "values", "fragment"),
    [  # each escaped as another exception before (found by the property tests above)
        ("uncertainty", {"bench": {"scores": False}}, "scores must be dict"),
        (
            "uncertainty",
            {"bench.members": [], "bench": False},
            "bench is given both as a value and as a table",
        ),
        (
            "uncertainty",
            {"bench": False, "bench.members": 3},
            "bench is given both as a value and as a table",
        ),
        ("classify", {"seed": 2**64}, "too large"),
        (
            "swav",
            {"swav": {"augment": {"crop_scale": [0.1, 0.5, 0.9]}}},
            "crop_scale must hold 2 values, got 3",
        ),
        ("classify", {"data_root": "x" * 2000}, "2,000 characters long, more than 1024"),
    ],
)
def test_values_that_escaped_before_are_one_config_error(technique, values, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        build_config(CONFIGS[technique], values)


def test_a_huge_recipe_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    from playground.core import config

    path = tmp_path / "huge.toml"
    path.write_bytes(b'experiment = "classify"\n' + b"# padding\n" * (config.MAX_RECIPE_BYTES // 10 + 1))
    monkeypatch.setattr(config.tomllib, "loads", lambda text: pytest.fail("parsed a huge recipe"))
    with pytest.raises(ConfigError, match=r"more than 1 MB"):
        config_from_recipe(path)


def test_a_huge_or_deep_set_value_is_one_config_error():
    config_cls = CONFIGS["classify"]
    with pytest.raises(ConfigError, match="longer than"):
        apply_overrides({}, ["name=" + "x" * 20_000], config_cls)
    with pytest.raises(ConfigError, match="nested"):
        apply_overrides({}, ["epochs=" + "[" * 1000 + "]" * 1000], config_cls)  # tomllib recurses
    with pytest.raises(ConfigError, match="nested more than 16 levels"):
        apply_overrides({}, ["epochs=" + "[" * 20 + "]" * 20], config_cls)  # parsed, then measured
