"""The loop page's tables and figures, from summaries written out by hand (no store, no training)."""

from __future__ import annotations

import math

import pytest

from playground.label.charts import (
    SEGMENTS,
    agreement_rows,
    annotator_rows,
    annotators_figure,
    round_rows,
    round_segments,
    rounds_figure,
    version_rows,
    versions_figure,
)

SEED_ROUND = {
    "number": 1,
    "model_version": 0,
    "status": "complete",
    "counts": {"pool": 90, "labelled": 0, "seed": 10, "calibration": 4},
    "threshold": {"note": "no model yet"},
    "started_at": 100.0,
    "ended_at": 100.5,
}
SCORED_ROUND = {
    "number": 2,
    "model_version": 1,
    "status": "complete",
    "counts": {
        "pool": 90,
        "labelled": 14,
        "auto": 30,
        "escalate": 12,
        "ood": 3,
        "defer": 27,
        "calibration": 4,
    },
    "threshold": {"confidence": 0.93, "alpha": 0.05, "delta": 0.1},
    "started_at": 200.0,
    "ended_at": 203.25,
}
RUNNING_ROUND = {"number": 3, "model_version": 2, "status": "running", "started_at": 300.0, "ended_at": None}
UNCERTIFIED = {
    **SCORED_ROUND,
    "number": 4,
    "threshold": {"confidence": math.inf, "alpha": 0.05, "delta": 0.1},
}
VERSIONS = [
    {"version": 1, "policy": "scratch", "parent": None, "labels": 10, "new_labels": 10, "held_out": 4,
     "accuracy": 0.5, "steps": 40, "seconds": 1.5, "created_at": 0.0},
    {"version": 2, "policy": "finetune_replay", "parent": 1, "labels": 25, "new_labels": 15, "held_out": 9,
     "accuracy": 0.875, "steps": 10, "seconds": 0.5, "created_at": 0.0},
    {"version": 3, "policy": "finetune_replay", "parent": 2, "labels": 30, "new_labels": 5, "held_out": 0,
     "accuracy": None, "steps": 10, "seconds": 0.5, "created_at": 0.0},
]  # fmt: skip
PEOPLE = [
    {"annotator": "ann", "decisions": 34, "per_hour": 120.0, "estimated_accuracy": 0.95},
    {"annotator": "bob", "decisions": 20, "per_hour": 60.25, "estimated_accuracy": 0.7},
]


def test_each_rounds_segments_add_up_to_its_pool():
    seed = round_segments(SEED_ROUND)
    assert seed == {
        "labelled by people": 0,
        "auto-labelled": 0,
        "escalated": 14,  # the seed set and the calibration picks
        "OOD": 0,
        "deferred": 0,
        "not scored": 76,  # no model to score them with
    }
    scored = round_segments(SCORED_ROUND)
    assert scored["escalated"] == 16 and scored["auto-labelled"] == 30 and scored["not scored"] == 0
    assert sum(scored.values()) == sum(seed.values()) == 90
    assert set(round_segments(RUNNING_ROUND).values()) == {0}  # nothing counted yet


def test_the_rounds_table_names_the_model_threshold_and_time():
    rows = round_rows([SEED_ROUND, SCORED_ROUND, RUNNING_ROUND, UNCERTIFIED])
    assert [r["model"] for r in rows] == ["none", "v1", "v2", "v1"]
    assert [r["status"] for r in rows] == ["complete", "complete", "running", "complete"]
    assert rows[0]["threshold λ"] == "none (seed set)" and rows[0]["seconds"] == 0.5
    assert rows[1]["threshold λ"] == "0.930 (error ≤ 0.05 w.p. 0.9)" and rows[1]["seconds"] == 3.2
    assert rows[2]["threshold λ"] == "" and rows[2]["seconds"] is None and rows[2]["pool"] is None
    assert rows[3]["threshold λ"] == "none certified"
    assert rows[1]["OOD"] == 3 and rows[1]["deferred"] == 27 and rows[1]["labelled by people"] == 14


def test_the_rounds_figure_stacks_only_segments_that_occur():
    figure = rounds_figure([SEED_ROUND, SCORED_ROUND, RUNNING_ROUND])
    assert figure.layout.barmode == "stack"
    bars = {trace.name: list(trace.y) for trace in figure.data}
    assert list(bars) == [name for name, _ in SEGMENTS]  # bottom to top, every one occurs here
    assert bars["escalated"] == [14, 16] and bars["not scored"] == [76, 0]
    assert list(figure.data[0].x) == ["round 1", "round 2"]  # the running round has no bar yet
    only_seed = rounds_figure([SEED_ROUND])
    assert [trace.name for trace in only_seed.data] == ["escalated", "not scored"]
    empty = rounds_figure([RUNNING_ROUND])
    assert not empty.data and "no finished round" in empty.layout.annotations[0].text


def test_versions_plot_held_out_accuracy_against_labels_spent():
    figure = versions_figure(VERSIONS)
    (line,) = figure.data
    assert list(line.x) == [14, 34]  # training + held-out labels; v3 has no held-out accuracy
    assert list(line.y) == pytest.approx([50.0, 87.5])
    assert list(line.text) == ["v1", "v2"]
    rows = version_rows(VERSIONS)
    assert [r["from"] for r in rows] == ["scratch", "v1", "v2"]
    assert [r["held-out accuracy"] for r in rows] == [0.5, 0.875, None]
    unmeasured = versions_figure(VERSIONS[2:])
    assert list(unmeasured.data[0].x) == [] and "no version measured" in unmeasured.layout.annotations[0].text


def test_annotators_show_throughput_and_estimated_accuracy():
    figure = annotators_figure(PEOPLE)
    hours, accuracy = figure.data
    assert list(hours.x) == ["ann", "bob"] and list(hours.y) == [120.0, 60.25]
    assert list(accuracy.y) == pytest.approx([95.0, 70.0])
    assert annotator_rows(PEOPLE)[1] == {
        "annotator": "bob",
        "decisions": 20,
        "per hour": 60.2,
        "estimated accuracy": 0.7,
    }
    alone = annotators_figure([{**PEOPLE[0], "estimated_accuracy": None}])
    assert list(alone.data[1].x) == [] and "two or more" in alone.layout.annotations[-1].text


def test_agreement_rows_overall_then_per_class():
    agreement = {
        "alpha": 0.85,
        "percent_agreement": 0.9,
        "reason": None,
        "per_class": {
            0: {"class": "red", "alpha": 0.8, "percent_agreement": 0.9, "reason": None},
            1: {
                "class": "blue",
                "alpha": math.nan,
                "percent_agreement": math.nan,
                "reason": "nobody used it",
            },
        },
    }
    rows = agreement_rows(agreement)
    assert [r["classes"] for r in rows] == ["all classes", "red", "blue"]
    assert rows[0]["alpha"] == 0.85 and rows[1]["percent agreement"] == 0.9
    assert rows[2]["alpha"] is None and rows[2]["note"] == "nobody used it"
    assert agreement_rows({"alpha": None, "note": "no labels yet"}) == []
