"""The Knowledge fusion page: the empty state, and a finished run's ablation, one image followed through
the pipeline, and zero-shot classes typed in."""

from __future__ import annotations

from playground.fusion.experiment import Config, run
from tests.apps.conftest import open_page_at, plotly_spec
from tests.fusion.test_experiment import TINY


def open_page():
    return open_page_at("views/fusion.py")


def test_empty_runs_root_offers_the_quick_preset(playground_home):
    at = open_page()
    assert any("No fusion run" in i.value for i in at.info)
    assert at.button(key="fusion_go").label == "Run the quick preset"
    at.selectbox(key="fusion_fusion").set_value("cross_attention").run()
    assert "--set fusion=cross_attention" in at.code[0].value


def test_a_run_shows_the_ablation_one_image_and_zero_shot(playground_home):
    result = run(Config(**TINY))
    at = open_page()
    assert not at.exception, at.exception
    assert at.selectbox(key="fusion_run").value == result.run_dir.name
    tables = [frame.value for frame in at.dataframe]
    assert list(tables[0]["variant"]) == ["image_only", "text", "kg", "retrieval", "all"]
    assert set(tables[0].columns) >= {"full", "lowlabel", "degraded_lowlabel", "latency ms"}
    ablation = plotly_spec(at, "fusion_ablation")  # the report's ablation.png and gains.png, drawn live
    assert len(ablation["data"]) == 5 * 2  # five variants x two tasks, one panel per task
    gains = plotly_spec(at, "fusion_gains")
    assert len(gains["data"]) == 4 * 2  # four fused variants x two tasks
    assert [d["name"] for d in gains["data"][:4]] == ["text", "kg", "retrieval", "all"]
    text = "\n".join(m.value for m in at.markdown)
    assert "**Generated caption:** a " in text and "**Entities:** `" in text
    assert "retrieved labelled neighbours" in text
    probabilities = plotly_spec(at, "fusion_probabilities")
    assert [d["name"] for d in probabilities["data"]] == ["image_only", "text", "kg", "retrieval", "all"]
    at.text_input(key="fusion_classes").set_value("a red circle, a pink heart").run()
    assert not at.exception, at.exception
    zero_shot = at.dataframe[-1].value
    assert {"a red circle", "a pink heart"} <= set(zero_shot.columns) and len(zero_shot) == 8
    at.text_input(key="fusion_classes").set_value("just one").run()
    assert any("at least two" in i.value for i in at.info)


def test_a_broken_run_shows_an_error_not_a_traceback(playground_home):
    result = run(Config(**TINY))
    (result.run_dir / "models" / "captioner.safetensors").write_bytes(b"not a checkpoint")
    at = open_page()
    assert not at.exception, at.exception
    assert any("corrupt" in e.value for e in at.error)


def test_a_run_without_models_shows_its_ablation_and_says_why_images_cannot_be_followed(playground_home):
    result = run(Config(**TINY, save_models=False))
    assert not (result.run_dir / "models").exists()
    at = open_page()
    assert not at.exception, at.exception
    assert not at.error
    assert list(at.dataframe[0].value["variant"]) == ["image_only", "text", "kg", "retrieval", "all"]
    assert sum("save_models = false" in i.value for i in at.info) == 2
