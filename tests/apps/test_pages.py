"""Every page renders under Streamlit's AppTest, and one widget on it changes what is shown."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from streamlit.testing.v1 import AppTest

from playground.core.checkpoint import load_checkpoint, save_checkpoint
from playground.core.config import load_recipe
from playground.core.registry import TECHNIQUES
from playground.fct import results as fct
from tests.apps.conftest import APP_FILE, RECIPE, TINY_DIGITS, wait_for_jobs
from tests.conftest import needs_fashion_mnist
from tests.fct.test_results import make_parent, tiny_fct_run


def open_app(page: str | None = None) -> AppTest:
    """The app, run once (Home), then switched to ``page`` if given."""
    at = AppTest.from_file(str(APP_FILE), default_timeout=60).run()
    assert not at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


# --------------------------------------------------------------------- home and sidebar


def test_home_lists_every_technique_and_links_its_page():
    at = open_app()
    assert at.title[0].value == "Deep-learning playground"
    titles = [m.value.removeprefix("#### ") for m in at.markdown]
    assert {t.title for t in TECHNIQUES} <= set(titles)  # two columns: AppTest reads one, then the other
    links = [link.proto.page for link in at.page_link]
    for technique in TECHNIQUES:
        assert any(link.endswith(technique.key) for link in links), technique.key
    assert any(link.endswith("data_explorer") for link in links) and any(
        link.endswith("runs") for link in links
    )


def test_sidebar_settings_carry_over_to_the_pages(playground_home, tmp_path):
    at = open_app()
    assert at.sidebar.text_input(key="sidebar_runs_root").value == str(playground_home)
    assert at.sidebar.selectbox(key="sidebar_device").options[0] == "auto"
    other = tmp_path / "elsewhere"
    at.sidebar.text_input(key="sidebar_runs_root").input(str(other)).run()
    at.sidebar.selectbox(key="sidebar_device").select("cpu").run()
    at.switch_page("views/runs.py").run()
    assert not at.exception
    assert str(other) in at.info[0].value
    at.switch_page("views/classify.py").run()
    assert not at.exception
    assert "--device cpu" in at.code[0].value and "--out" in at.code[0].value


# --------------------------------------------------------------------- data explorer


@needs_fashion_mnist()
def test_data_explorer_shows_status_samples_and_class_filter():
    at = open_app("views/data_explorer.py")
    status = at.dataframe[0].value
    assert list(status["dataset"]) == ["fashion_mnist", "digits", "shapes", "folder"]
    assert at.selectbox(key="dx_dataset").value == "fashion_mnist"
    assert len(at.image) == 24
    assert at.get("plotly_chart"), "class counts chart missing"
    stats = at.dataframe[1].value
    assert list(stats["images"]) == [60000, 10000]
    at.slider(key="dx_count").set_value(8).run()
    at.selectbox(key="dx_class").select("Bag").run()
    assert not at.exception
    assert captions(at) == ["Bag"] * 8


def test_data_explorer_shapes_captions_masks_facts_and_ood_variant():
    at = open_app("views/data_explorer.py")
    at.selectbox(key="dx_dataset").select("shapes").run()
    assert not at.exception
    shown = captions(at)
    assert any(text.endswith("background") for text in shown)
    assert any(text.startswith("mask:") for text in shown)
    facts = at.dataframe[1].value
    assert list(facts.columns) == ["subject", "relation", "object"] and "shows" in set(facts["relation"])
    at.selectbox(key="dx_variant").select("unseen_shapes").run()
    assert not at.exception
    assert any(" heart " in text or " crescent " in text for text in captions(at))
    at.selectbox(key="dx_variant").select("noise").run()
    assert "pure noise" in captions(at)


def test_data_explorer_digits_follows_the_sidebar_seed():
    at = open_app("views/data_explorer.py")
    at.selectbox(key="dx_dataset").select("digits").run()
    first = [image.value for image in at.image]
    assert len(first) == 24 and set(captions(at)) <= {str(d) for d in range(10)}
    at.sidebar.number_input(key="sidebar_seed").set_value(3).run()
    assert not at.exception
    assert [image.value for image in at.image] != first


@pytest.mark.parametrize("root", ["", "missing"])
def test_data_explorer_folder_without_data_shows_an_error(tmp_path, root):
    at = open_app("views/data_explorer.py")
    if root:
        at.sidebar.text_input(key="sidebar_data_root").input(str(tmp_path / root)).run()
    at.selectbox(key="dx_dataset").select("folder").run()
    assert not at.exception
    assert len(at.error) == 1
    assert ("does not exist" if root else "data_root") in at.error[0].value
    assert "\n" not in at.error[0].value


def test_data_explorer_folder_with_a_decompression_bomb_shows_one_error_naming_it(tmp_path):
    from tests.data.test_image_file import header_png
    from tests.data.test_loaders import make_folder

    root = make_folder(tmp_path / "pets")
    (root / "dog" / "bomb.png").write_bytes(header_png(30000, 30000))
    at = open_app("views/data_explorer.py")
    at.sidebar.text_input(key="sidebar_data_root").input(str(root)).run()
    at.selectbox(key="dx_dataset").select("folder").run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"{root / 'dog' / 'bomb.png'} cannot be read as an image: too many pixels: "
        "Image size (900000000 pixels) exceeds limit of 178956970 pixels, could be decompression bomb "
        "DOS attack."
    ]


# --------------------------------------------------------------------- classifier


def set_widgets(at: AppTest, overrides: list[str]) -> None:
    for override in overrides:
        key, value = override.split("=")
        if key == "dataset":
            at.selectbox(key="clf_dataset").select(value)
        else:
            at.number_input(key=f"clf_{key}").set_value(int(value))
    at.run()


def test_classifier_starts_from_the_preset_and_switches_presets():
    presets = load_recipe(RECIPE).presets
    at = open_app("views/classify.py")
    assert at.selectbox(key="clf_preset").value == "quick"
    assert at.number_input(key="clf_epochs").value == presets["quick"]["epochs"]
    assert at.code[0].value == "playground run recipes/classify_fashion.toml --preset quick"
    at.number_input(key="clf_epochs").set_value(4).run()
    assert at.code[0].value.endswith("--preset quick --set epochs=4")
    at.selectbox(key="clf_preset").select("full").run()
    assert not at.exception
    assert at.number_input(key="clf_epochs").value == presets["full"]["epochs"]
    assert at.code[0].value == "playground run recipes/classify_fashion.toml --preset full"


def test_classifier_trains_on_digits_in_the_background_and_opens_the_run(playground_home):
    at = open_app("views/classify.py")
    set_widgets(at, TINY_DIGITS)
    assert "--set dataset=digits --set epochs=1 --set train_limit=600" in at.code[0].value
    assert not at.metric and "No classifier run" in at.info[0].value
    at.button(key="clf_train").click().run()
    assert not at.exception and not at.error
    [job] = wait_for_jobs(at)
    assert job.status == "finished" and job.title == "Classifier: quick"
    assert any(f"Job {job.id}" in s.value and "finished" in s.value for s in at.success)
    accuracy = next(m.value for m in at.metric if m.label == "Test accuracy")
    assert float(accuracy.rstrip("%")) / 100 > 0.5
    assert len(at.get("plotly_chart")) == 3  # per class, confusion, training curves (loss and accuracy)
    run_dirs = [p for p in playground_home.iterdir() if p.name.startswith("classify")]
    assert len(run_dirs) == 1 and any(code.value == str(run_dirs[0]) for code in at.code)
    assert at.selectbox(key="clf_run").value == run_dirs[0].name


def test_classifier_error_is_one_line_not_a_traceback():
    at = open_app("views/classify.py")
    at.selectbox(key="clf_dataset").select("folder").run()
    at.button(key="clf_train").click().run()
    [job] = wait_for_jobs(at)
    assert job.status == "failed" and "data_root" in job.error
    assert "data_root" in at.error[0].value and "\n" not in at.error[0].value
    assert not at.metric


# --------------------------------------------------------------------- forward compatible training


@pytest.fixture(scope="module")
def fct_template(tmp_path_factory):
    """One tiny FCT run, trained once for this module; tests copy it into their runs root."""
    return tiny_fct_run(tmp_path_factory.mktemp("fct-template"))


@pytest.fixture
def fct_run(fct_template, playground_home):
    return shutil.copytree(fct_template, playground_home / fct_template.name)


def neighbour_captions(at: AppTest) -> list[str]:
    return [c for c in captions(at) if c[:1] in "✓✗"]


def test_fct_page_without_runs_offers_a_new_experiment():
    at = open_app("views/fct.py")
    assert "playground run recipes/fct_fashion.toml" in at.info[0].value
    assert at.selectbox(key="fct_preset").value == "fct_fashion / quick"
    assert at.slider(key="fct_side_info.dim").value == 32
    assert at.code[0].value == "playground run recipes/fct_fashion.toml --preset quick"
    at.slider(key="fct_side_info.dim").set_value(64).run()
    assert not at.exception
    assert at.code[0].value.endswith("--preset quick --set side_info.dim=64")
    at.selectbox(key="fct_preset").select("fct_fashion / full").run()
    assert at.slider(key="fct_side_info.dim").value == 32 and at.code[0].value.endswith("--preset full")
    assert not at.metric and not at.get("plotly_chart")


def test_fct_page_shows_tables_cost_projection_and_neighbours(fct_run):
    at = open_app("views/fct.py")
    assert not at.error
    assert at.selectbox(key="fct_run").value == fct_run.name
    table = at.dataframe[0].value
    assert list(table["case"]) == [
        "old-old",
        "new-new",
        "new-old",
        "bct-old",
        "bct-bct",
        "new-fct_noside",
        "new-fct",
    ]
    # compatibility, side-info trade-off, backfilling curves, adapters, edges, projection
    assert len(at.get("plotly_chart")) == 6
    policies = at.dataframe[1].value
    assert {"reembed", "fct", "bct", "procrustes_query", "residual_mlp_gallery"} <= set(policies["policy"])
    assert policies.loc[policies["policy"] == "reembed", "share of re-embedding mAP (%)"].item() == 100.0
    at.slider(key="backfill_share").set_value(100).run()
    assert not at.exception
    at_full = at.dataframe[2].value  # every order has re-embedded the whole gallery: one mAP
    assert at_full["mAP (%)"].nunique() == 1 and len(at_full) == 6
    labels = {m.label: m.value for m in at.metric}
    assert labels["Side-info per image"] == labels["Extra storage per image"] == "64 B"
    assert labels["Speed-up"].endswith("×")
    dims = at.select_slider(key="fct_dim")
    assert dims.value == 32 and dims.options == ["none", "8-d", "32-d"]
    at.select_slider(key="fct_dim").set_value(8).run()
    assert not at.exception and {m.label: m.value for m in at.metric}["Side-info per image"] == "16 B"
    assert captions(at)[0].startswith("query #0:")
    assert len(neighbour_captions(at)) == 15  # 5 neighbours in the new, old and FCT galleries


def test_fct_page_picks_a_query_and_the_number_of_neighbours(fct_run):
    at = open_app("views/fct.py")
    at.number_input(key="fct_query").set_value(10).run()
    assert not at.exception
    assert captions(at)[0].startswith("query #10:")
    at.slider(key="fct_k").set_value(3).run()
    assert len(neighbour_captions(at)) == 9
    at.button(key="fct_random").click().run()
    assert not at.exception
    query = at.number_input(key="fct_query").value
    assert captions(at)[0].startswith(f"query #{query}:")


def test_fct_page_shows_seed_spread_for_a_multi_seed_run(fct_template, playground_home):
    playground_home.mkdir(parents=True, exist_ok=True)
    make_parent(fct_template, playground_home / "fct-seeds")
    at = open_app("views/fct.py")
    assert not at.exception and not at.error
    assert at.selectbox(key="fct_run").value == "fct-seeds"
    assert "±" in at.dataframe[0].value["top-1 (%)"][0]
    assert any("mean ± std over 2 seeds" in c.value for c in at.caption)
    assert len(neighbour_captions(at)) == 15


def test_fct_page_shows_hostile_embeddings_as_an_error_naming_the_file(fct_run):
    from tests.hostile import replant

    embeddings = fct_run / "embeddings.safetensors"
    replant(embeddings, metadata='"not an object"')
    at = open_app("views/fct.py")
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any(f"metadata of checkpoint {embeddings} is a string" in e for e in errors), errors
    assert at.dataframe  # the numbers, read from metrics.json, still show


def keep_first(path, n: int) -> None:
    """Cut a run's embeddings file down to its first ``n`` test images, without thumbnails."""
    tensors, metadata = load_checkpoint(path)
    shown = tensors["projection_index"] < n
    small = {
        name: value[shown] if name.startswith("projection_") else value[:n]
        for name, value in tensors.items()
        if name != "images"
    }  # as for a test set too large to keep
    save_checkpoint(path, small, metadata)


def test_fct_page_switches_to_a_run_with_other_sizes_and_no_thumbnails(fct_run, playground_home):
    other = shutil.copytree(fct_run, playground_home / "fct-other")
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["metrics"] = {k: v for k, v in metrics["metrics"].items() if not k.startswith("side_info/dim_8/")}
    (other / "metrics.json").write_text(json.dumps(metrics))
    keep_first(other / "embeddings.safetensors", 100)
    at = open_app("views/fct.py")
    at.selectbox(key="fct_run").select(fct_run.name).run()
    at.select_slider(key="fct_dim").set_value(8).run()
    at.number_input(key="fct_query").set_value(fct.gallery_size(fct.load_fct_run(fct_run)) - 1).run()
    at.selectbox(key="fct_run").select("fct-other").run()
    assert not at.exception and not at.error
    assert at.select_slider(key="fct_dim").options == ["none", "32-d"]
    assert at.number_input(key="fct_query").value == 0 and not at.image
    assert "kept no thumbnails" in at.info[0].value
    listed = [c.value for c in at.caption if c.value.startswith("#")]  # one line per gallery
    assert len(listed) == 3 and sum(line.count("✓") + line.count("✗") for line in listed) == 15


def test_fct_page_skips_an_interrupted_run_and_opens_the_newest_complete_one(fct_run, playground_home):
    broken = playground_home / "fct-zzz-interrupted"
    broken.mkdir()
    shutil.copy(fct_run / "config.toml", broken / "config.toml")
    time.sleep(0.01)
    broken.touch()  # newest first
    at = open_app("views/fct.py")
    assert not at.exception and not at.error
    assert at.selectbox(key="fct_run").options == [fct_run.name] and at.dataframe
    assert any("1 run(s) here are running, failed or interrupted" in c.value for c in at.caption)


def test_fct_page_trains_a_run_and_opens_it(playground_home):
    at = open_app("views/fct.py")
    at.selectbox(key="fct_dataset").select("digits")
    for key, value in (
        ("old_epochs", 1),
        ("new_epochs", 1),
        ("side_info.epochs", 1),
        ("transform_epochs", 2),
    ):
        at.number_input(key=f"fct_{key}").set_value(value)
    at.run()
    at.button(key="fct_train").click().run()
    assert not at.exception and not at.error
    [job] = wait_for_jobs(at)
    assert job.status == "finished", job.describe()
    run_dirs = [p for p in playground_home.iterdir() if p.name.startswith("fct")]
    assert len(run_dirs) == 1 and at.selectbox(key="fct_run").value == run_dirs[0].name
    assert at.dataframe and len(neighbour_captions(at)) == 15


def test_fct_page_training_error_is_one_line():
    at = open_app("views/fct.py")
    at.selectbox(key="fct_dataset").select("folder").run()
    at.button(key="fct_train").click().run()
    [job] = wait_for_jobs(at)
    assert job.status == "failed"
    assert "data_root" in at.error[0].value and "\n" not in at.error[0].value


def test_a_link_opens_the_same_configuration_and_the_url_follows_the_widgets():
    at = AppTest.from_file(str(APP_FILE), default_timeout=60)
    at.query_params.update({"preset": "full", "epochs": "4", "lr": "abc"})
    at.run().switch_page("views/classify.py").run()
    assert not at.exception
    assert at.selectbox(key="clf_preset").value == "full" and at.number_input(key="clf_epochs").value == 4
    assert at.code[0].value == "playground run recipes/classify_fashion.toml --preset full --set epochs=4"
    assert at.warning[0].value == "Ignored from the link: lr=abc (could not convert string to float: 'abc')"
    assert dict(at.query_params) == {"preset": "full", "epochs": "4"}  # the bad value is dropped
    at.number_input(key="clf_epochs").set_value(6).run()
    at.selectbox(key="clf_dataset").select("digits").run()
    assert dict(at.query_params) == {"preset": "full", "epochs": "6", "dataset": "digits"}


def test_the_sidebar_lists_jobs_and_cancels_one():
    from playground.jobs import Jobs

    overrides = [*TINY_DIGITS, "epochs=500"]
    args = [str(RECIPE), "--preset", "quick", *[a for o in overrides for a in ("--set", o)]]
    job = Jobs().submit(args, "long digits")
    at = open_app()
    assert any(h.value == "Jobs" for h in at.sidebar.subheader)
    line = next(c.value for c in at.sidebar.caption if f"{job.id} · long digits" in c.value)
    assert any(word in line for word in ("queued", "starting", "elapsed"))
    at.sidebar.button(key=f"sidebar_cancel_{job.id}").click().run()
    assert Jobs().get(job.id).status == "cancelled"
    assert not any(b.key == f"sidebar_cancel_{job.id}" for b in at.sidebar.button)
