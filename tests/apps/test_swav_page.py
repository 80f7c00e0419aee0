"""The Self-supervised SwAV page: the live Sinkhorn panel, the empty state, and a finished run's
probe chart, prototype assignments and training tab."""

from __future__ import annotations

import json
import math

from playground.core.config import tomllib
from playground.core.runner import run_seeds
from playground.swav import experiment
from playground.swav.experiment import Config
from tests.apps.conftest import open_page_at, plotly_spec
from tests.swav.test_experiment import TINY, flatten_swav

# one epoch of SwAV and of the supervised trunk, a few fine-tuning steps, two inits: a run in seconds
ONE_EPOCH = TINY | {
    "epochs": 1,
    "supervised_epochs": 1,
    "finetune_steps": 5,
    "methods": ["swav", "random_init"],
}


def open_page():
    return open_page_at("views/swav.py")


chart = plotly_spec


def heat_shape(figure: dict) -> tuple[int, int]:
    z = figure["data"][0]["z"]  # plotly sends numpy arrays as typed binary with their shape
    return tuple(int(n) for n in z["shape"].split(",")) if isinstance(z, dict) else (len(z), len(z[0]))


def titles(figure: dict) -> list[str]:
    return [a["text"] for a in figure["layout"].get("annotations", [])]


def test_sinkhorn_panel_shows_codes_and_errors_that_shrink(playground_home):
    at = open_page()
    sinkhorn = chart(at, "sk_sinkhorn")  # traces: the codes, then sample sums and prototype sums
    (prototype_error,) = [d["y"] for d in sinkhorn["data"] if d.get("name") == "prototype sums vs B/K"]
    assert len(prototype_error) == 11 and prototype_error[-1] < prototype_error[0] / 10
    assert heat_shape(sinkhorn) == (32, 12) and "codes after 10 iterations" in titles(sinkhorn)
    at.slider(key="sk_prototypes").set_value(6).run()
    at.slider(key="sk_step").set_value(0).run()
    heat = chart(at, "sk_sinkhorn")
    assert heat_shape(heat) == (32, 6) and "exp(scores / ε), normalised" in titles(heat)
    marked = [shape for shape in heat["layout"]["shapes"] if "domain" in shape["yref"]]  # vertical lines
    assert [(shape["x0"], shape["x1"]) for shape in marked] == [(0, 0)]  # the step shown


def test_empty_runs_root_offers_the_quick_preset(playground_home):
    at = open_page()
    assert any("No SwAV run" in i.value for i in at.info)
    assert at.button(key="swav_train").label == "Run the quick preset"
    at.selectbox(key="swav_model").set_value("regnety_small").run()
    assert "--set model=regnety_small" in at.code[0].value
    assert at.number_input(key="swav_swav.prototypes").value == 30
    at.number_input(key="swav_swav.prototypes").set_value(40).run()
    assert at.code[0].value.endswith("--set model=regnety_small --set swav.prototypes=40")


def test_a_two_seed_run_draws_the_probe_chart_assignments_and_training(playground_home):
    tiny = TINY | {"epochs": 2, "supervised_epochs": 1, "finetune_steps": 5}
    result = run_seeds(experiment, Config(**tiny), [0, 1])
    at = open_page()
    assert not at.exception, at.exception
    assert at.selectbox(key="swav_run").value == result.run_dir.name
    probe = chart(at, "swav_probe")
    names = [d.get("name") for d in probe["data"]]  # band edges have none
    assert "SwAV: linear probe" in names and "random init: fine-tuned" in names
    assert "2 seeds" in probe["layout"]["title"]["text"]
    text = "\n".join(m.value for m in at.markdown)
    assert "**Check: SwAV's linear probe is" in text and "| SwAV |" in text
    captions = [caption for image in at.image for caption in image.captions]
    assert sum(caption.startswith("true: ") for caption in captions) == 6
    assert "mostly" in text  # each sample's top prototypes with their majority class
    loss = chart(at, "swav_loss")
    assert [len(d["y"]) for d in loss["data"]] == [2, 2, 2]  # the band over seeds, then the mean
    sinkhorn = titles(chart(at, "swav_sinkhorn"))  # the panels' titles, then the lines' labels
    assert sinkhorn[3:5] == ["codes after 10 iterations", "Largest deviation from equipartition"]
    assert len(chart(at, "swav_prototypes")["data"]) == 10  # digits: the 10 prototypes, fullest first
    first = [image.value for image in at.image][:1]
    at.button(key="swav_shuffle").click().run()
    assert [image.value for image in at.image][:1] != first  # other samples


def test_a_run_without_a_model_says_so_on_the_assignments_tab(playground_home):
    experiment.run(Config(**ONE_EPOCH, save_models=False))
    at = open_page()
    assert not at.exception and not at.error
    assert any("saved no model (save_models = false)" in i.value for i in at.info)
    assert chart(at, "swav_probe") and chart(at, "swav_loss")  # the other tabs still draw


def test_an_old_run_with_flat_config_keys_draws_log_k_of_its_prototypes(playground_home):
    folder = experiment.run(Config(**ONE_EPOCH, save_models=False)).run_dir
    table = tomllib.loads((folder / "config.toml").read_text())["config"]
    flat = "".join(f"{key} = {json.dumps(value)}\n" for key, value in flatten_swav(table).items())
    (folder / "config.toml").write_text(f'experiment = "swav"\n[config]\n{flat}')  # before [swav]
    at = open_page()
    assert not at.exception and not at.error
    (line,) = chart(at, "swav_loss")["layout"]["shapes"]
    assert math.isclose(line["y0"], math.log(10))  # prototypes = 10, read from the flat key


def test_hostile_checkpoints_show_an_error_naming_the_file_not_a_traceback(playground_home):
    from playground.swav.experiment import CHECKPOINT
    from playground.swav.report import EXAMPLES_FILE
    from tests.hostile import replant

    run_dir = experiment.run(Config(**ONE_EPOCH)).run_dir
    replant(run_dir / EXAMPLES_FILE, counts=None)  # a valid file without the class counts
    at = open_page()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any(f"{run_dir / EXAMPLES_FILE} lacks the tensor 'counts'" in e for e in errors), errors
    assert chart(at, "swav_probe")  # the rest of the page still draws
    replant(run_dir / CHECKPOINT, metadata="[1, 2]")  # metadata that is not a JSON object
    at = open_page()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any(f"metadata of checkpoint {run_dir / CHECKPOINT} is a list" in e for e in errors), errors
