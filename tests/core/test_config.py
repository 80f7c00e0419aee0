import dataclasses
from dataclasses import dataclass
from typing import Literal

import pytest

from playground.core.config import (
    RunConfig,
    apply_overrides,
    build_config,
    config_to_toml,
    config_value,
    load_recipe,
    parse_override,
    tomllib,
)
from playground.core.runner import config_from_recipe
from playground.errors import ConfigError
from tests.conftest import REPO


@dataclass
class ToyConfig(RunConfig):
    epochs: int = 1
    lr: float = 0.1
    mode: Literal["a", "b"] = "a"
    classes: list[int] = (0, 1)
    label: str | None = None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("epochs=3", ("epochs", 3)),
        ("lr=1e-3", ("lr", 1e-3)),
        ("flag=true", ("flag", True)),
        ("classes=[0, 2]", ("classes", [0, 2])),
        ("dataset=digits", ("dataset", "digits")),
        ('name="my run"', ("name", "my run")),
        ("path=/tmp/x=y", ("path", "/tmp/x=y")),
    ],
)
def test_parse_override_reads_toml_typed_values(text, expected):
    assert parse_override(text) == expected


def test_build_config_checks_and_widens_types():
    config = build_config(ToyConfig, {"epochs": 3, "lr": 1, "classes": [1, 2], "mode": "b"})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.classes == [1, 2] and config.mode == "b"


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"epoch": 3}, "unknown key 'epoch'"),
        ({"epochs": "three"}, "epochs must be int"),
        ({"epochs": True}, "epochs must be int"),
        ({"lr": "fast"}, "lr must be float"),
        ({"mode": "c"}, "mode = 'c' is not allowed"),
        ({"classes": [1, "x"]}, "classes must be int"),
    ],
)
def test_build_config_rejects_bad_values_naming_the_key(values, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        build_config(ToyConfig, values, "my recipe")
    assert "\n" not in str(info.value) and "my recipe" in str(info.value)


def test_overrides_are_checked_against_the_config():
    values = apply_overrides({"epochs": 1}, ["epochs=4", "lr=0.5"], ToyConfig)
    assert values == {"epochs": 4, "lr": 0.5}
    with pytest.raises(ConfigError, match="unknown key 'lrr' in --set lrr=1"):
        apply_overrides({}, ["lrr=1"], ToyConfig)
    with pytest.raises(ConfigError, match="must look like key=value"):
        apply_overrides({}, ["epochs"], ToyConfig)


def test_config_round_trips_through_toml():
    config = build_config(ToyConfig, {"epochs": 2, "classes": [3], "mode": "b", "name": 'say "hi"'})
    data = tomllib.loads(config_to_toml(config, {"experiment": "toy"}))
    assert data["experiment"] == "toy"
    assert build_config(ToyConfig, data["config"]) == config


def test_recipe_presets_layer_over_shared_values(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text('experiment = "classify"\n[config]\nepochs = 1\nlr = 0.1\n[presets.full]\nepochs = 9\n')
    recipe = load_recipe(path)
    assert recipe.values("full") == {"epochs": 9, "lr": 0.1}
    with pytest.raises(ConfigError, match="no preset 'huge'; presets: full"):
        recipe.values("huge")


def test_wrong_recipe_key_is_a_one_line_error_naming_key_and_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('experiment = "classify"\n[config]\ndataset = "digits"\n[presets.quick]\nepohcs = 2\n')
    with pytest.raises(ConfigError) as info:
        config_from_recipe(path, "quick")
    message = str(info.value)
    assert "unknown key 'epohcs'" in message and "bad.toml" in message and "[presets.quick]" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('experiment = "nope"\n', "unknown experiment 'nope'"),
        ("[config]\nx = 1\n", "must name its experiment"),
        ('experiment = "classify"\nextra = 1\n', "unknown key 'extra' at the top"),
        ('experiment = "classify"\n[config\n', "not valid TOML"),
    ],
)
def test_malformed_recipes_are_clear_errors(tmp_path, text, fragment):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        config_from_recipe(path, None)


def test_shipped_recipes_build_for_every_preset():
    for path in sorted((REPO / "recipes").glob("*.toml")):
        recipe = load_recipe(path)
        assert {"quick", "full"} <= set(recipe.presets), path
        for preset in recipe.presets:
            _, config = config_from_recipe(path, preset)
            assert config.name == path.stem


@dataclass
class Optim:
    lr: float = 0.1
    betas: list[float] = (0.9, 0.99)

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")


@dataclass
class SectionConfig(RunConfig):
    RENAMED_KEYS = {"optim_lr": "optim.lr"}
    epochs: int = 1
    optim: Optim = dataclasses.field(default_factory=Optim)


def test_sections_are_tables_dotted_overrides_and_the_inner_object(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(
        'experiment = "classify"\n[config]\nepochs = 2\n[config.optim]\nlr = 0.5\nbetas = [0.8, 0.9]\n'
        "[presets.quick.optim]\nlr = 0.25\n"
    )
    values = load_recipe(path).values("quick")
    assert values == {"epochs": 2, "optim": {"lr": 0.25, "betas": [0.8, 0.9]}}  # merged key by key
    values = apply_overrides(values, ["optim.lr=1", "epochs=3"], SectionConfig)
    config = build_config(SectionConfig, values)
    assert config.optim == Optim(lr=1.0, betas=[0.8, 0.9]) and isinstance(config.optim.lr, float)
    assert config_value(config, "optim.lr") == 1.0
    text = config_to_toml(config, {"experiment": "toy"})
    assert "[config.optim]" in text
    assert build_config(SectionConfig, tomllib.loads(text)["config"]) == config  # round trip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.momentum=1", r"unknown key 'momentum' in --set optim.momentum=1 \(optim\)"),
        ("optim=1", "optim is a section"),
        ("epochs.x=1", "epochs is not a section"),
        ("optim.lr=fast", "optim.lr must be float"),
    ],
)
def test_bad_section_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides({}, [override], SectionConfig)


def test_section_values_are_checked_once_with_their_table_named():
    with pytest.raises(ConfigError, match=r"recipe x \[optim\]: lr must be positive"):
        build_config(SectionConfig, {"optim": {"lr": -1.0}}, "recipe x")
    with pytest.raises(ConfigError, match="optim is a section"):
        build_config(SectionConfig, {"optim": 3}, "recipe x")


def test_old_flat_keys_move_into_their_section(capsys):
    config = build_config(SectionConfig, {"optim_lr": 0.3}, "old run")
    assert config.optim.lr == 0.3
    assert "optim_lr in old run is now optim.lr" in capsys.readouterr().err
    assert build_config(SectionConfig, apply_overrides({}, ["optim_lr=0.2"], SectionConfig)).optim.lr == 0.2
    assert "optim_lr in --set optim_lr=0.2 is now optim.lr" in capsys.readouterr().err


def test_chosen_methods_keep_the_known_order_and_name_the_valid_ones():
    from playground.core.config import chosen_methods

    assert chosen_methods([], ("a", "b", "c")) == ("a", "b", "c")
    assert chosen_methods(["c", "a"], ("a", "b", "c")) == ("a", "c")
    with pytest.raises(ConfigError, match=r"methods: unknown 'z'; valid: a, b, c \(empty: all\)"):
        chosen_methods(["a", "z"], ("a", "b", "c"))
