"""The Active learning page: empty state, a finished run's curves, policies and escalation tabs,
and a run started from the page's form."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from playground.active import experiment
from playground.active.experiment import Config, run
from playground.active.results import CURVES, read_queue_fill
from playground.core.runner import run_seeds
from playground.core.runs import RESULTS, read_result
from playground.store import Store
from tests.active.test_experiment import TINY, flatten_run_config
from tests.apps.conftest import APP_FILE, open_page_at, plotly_spec


def open_page(monkeypatch):
    """The app, switched to the page (its link to the Annotate page needs the navigation)."""
    return open_page_at("views/active.py")


chart = plotly_spec


def test_empty_runs_root_offers_the_quick_preset(monkeypatch, playground_home):
    at = open_page(monkeypatch)
    assert any("No active-learning run" in i.value for i in at.info)
    assert at.button(key="al_train").label == "Run the quick preset"
    assert "--preset quick" in at.code[0].value


def test_a_multi_seed_run_draws_bands_tables_and_the_escalation_point(monkeypatch, playground_home):
    result = run_seeds(experiment, Config(**{**TINY, "queue": "review"}), [0, 1])
    at = open_page(monkeypatch)
    assert at.selectbox(key="al_run").value == result.run_dir.name
    assert len(at.get("plotly_chart")) == 3  # the report's three charts: curves, policies, escalation
    curves = chart(at, "al_curves")
    names = [d.get("name") for d in curves["data"] if d.get("name")]
    assert names == ["random", "bald"]
    assert sum(d.get("fill") == "tonexty" for d in curves["data"]) == 2  # a mean ± std band per strategy
    assert "mean ± std over 2 seeds" in curves["layout"]["title"]["text"]
    policies = chart(at, "al_policies")  # accuracy and compute, each policy in both panels
    assert [d["name"] for d in policies["data"] if d.get("showlegend")] == ["scratch", "finetune_replay"]
    assert sum(d.get("fill") == "tonexty" for d in policies["data"]) == 4
    escalation = chart(at, "al_escalation")
    assert [d["name"] for d in escalation["data"]] == ["sweeping the threshold", "calibrated threshold"]
    summary = [m.value for m in at.markdown if "to annotation queue" in m.value]
    fill = read_queue_fill(result.run_dir)
    assert fill.sent == Store().progress("review")["total"] > 0 and fill.seeds == 2
    assert summary == [
        f":material/inbox: Sent {fill.sent} stream samples ({fill.counts()}) to annotation queue `review`."
    ]
    link = at.get("page_link")[-1].proto
    assert link.page == "annotate" and link.query_string == "queue=review" and "review" in link.label
    tables = "\n".join(m.value for m in at.markdown)
    assert "labels to 80%" in tables and "auto-label error" in tables and "forgetting" in tables


def test_changing_the_form_shows_the_matching_command(monkeypatch, playground_home):
    at = open_page(monkeypatch)
    at.number_input(key="al_loop.budget").set_value(60).run()
    assert "--set loop.budget=60" in at.code[0].value
    at.number_input(key="al_escalation.alpha").set_value(0.1).run()
    assert "--set escalation.alpha=0.1" in at.code[0].value
    at.multiselect(key="al_methods").set_value(["random", "margin"]).run()
    assert "methods=" in at.code[0].value and "margin" in at.code[0].value


def test_a_run_from_before_the_sections_and_results_json_still_opens(monkeypatch, playground_home):
    """An old run's config.toml with flat keys (the page reads its label budget from ``budget``) and its
    curves in ``curves.json`` instead of a section of ``results.json``."""
    result = run(Config(**{**TINY, "queue": "", "target_accuracy": 0.99}))  # 60 labels never reach 99%
    flatten_run_config(result.run_dir)
    curves = read_result(result.run_dir, CURVES)
    (result.run_dir / RESULTS).unlink()
    (result.run_dir / "curves.json").write_text(json.dumps(curves))
    at = open_page(monkeypatch)
    assert not at.exception and at.selectbox(key="al_run").value == result.run_dir.name
    text = "\n".join(m.value for m in at.markdown)
    assert "No uncertainty strategy reached 99% within 60 labels" in text
    assert chart(at, "al_curves")["data"] and len(at.get("plotly_chart")) == 3
    (no_queue,) = [
        i.value for i in at.info if "annotation queue" in i.value
    ]  # worked out from config and routes
    assert no_queue.startswith(
        'Filled no annotation queue: escalation to annotators is off in its config (`queue = ""`)'
    )
    assert not [link for link in at.get("page_link") if link.proto.page == "annotate"]


def test_a_link_from_the_annotate_page_opens_the_run_that_filled_the_queue(monkeypatch, playground_home):
    older = run(Config(**{**TINY, "queue": ""})).run_dir
    newer = run(Config(**{**TINY, "queue": ""})).run_dir
    at = AppTest.from_file(str(APP_FILE), default_timeout=120)
    at.query_params["run"] = older.name  # as the Annotate page's "See that run" link opens the page
    at.run()
    at.switch_page("views/active.py").run()
    assert not at.exception and at.selectbox(key="al_run").value == older.name
    at.selectbox(key="al_run").select(newer.name).run()  # the link chose once: the picker is free again
    assert at.selectbox(key="al_run").value == newer.name and "run" not in at.query_params
