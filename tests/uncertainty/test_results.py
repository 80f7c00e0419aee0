"""The OOD results reader's analysis on hand-made numbers: one image's prediction, the rows a run
stored, the FPR95 operating point and the flagged rates, the evaluation's results section and the
side file older runs kept it in (no training here; see test_experiment.py)."""

import json
from pathlib import Path

import pytest
import torch

from playground.core.runs import RunDir, read_result
from playground.errors import DataFormatError, DataNotFoundError
from playground.uncertainty.benchmark import MethodSettings
from playground.uncertainty.experiment import Config
from playground.uncertainty.inspection import (
    SUMMARY_ROWS,
    ImagePrediction,
    flagged_rates,
    image_summary,
    operating_point,
)
from playground.uncertainty.results import EVALUATION, LEGACY_RESULTS, Evaluation, OODRun, read_evaluation
from playground.uncertainty.scores import Prediction


def test_an_image_prediction_reads_mean_prediction_confidence_and_spread():
    probs = torch.tensor([[0.6, 0.4], [0.8, 0.2], [0.1, 0.9]])  # three samples, two classes
    seen = ImagePrediction(scores={"entropy": 0.5}, probs=probs)
    assert seen.samples == 3 and seen.predicted == 0  # mean (0.5, 0.5): argmax takes the first
    assert torch.allclose(seen.mean, torch.tensor([0.5, 0.5]))
    assert seen.confidence == pytest.approx(0.5)
    # population std of (0.6, 0.8, 0.1): mean 0.5, squares 0.01 + 0.09 + 0.16 = 0.26 over 3
    assert seen.spread == pytest.approx((0.26 / 3) ** 0.5, rel=1e-6)
    assert seen.spreads.tolist() == pytest.approx([(0.26 / 3) ** 0.5] * 2, rel=1e-6)  # every class


def test_a_single_sample_has_no_spread_and_feature_scores_have_no_prediction():
    single = ImagePrediction(scores={"msp": -0.7}, probs=torch.tensor([[0.1, 0.7, 0.2]]))
    assert single.samples == 1 and single.predicted == 1 and single.spread == 0.0
    assert single.confidence == pytest.approx(0.7)
    feature = ImagePrediction(scores={"mahalanobis": 3.0, "knn": 0.2})
    assert feature.samples is feature.predicted is feature.confidence is feature.spread is None


def test_the_fpr95_threshold_keeps_95_percent_of_the_test_scores():
    test = torch.arange(100, dtype=torch.float32)  # 0..99
    point = operating_point({"test": test, "far": torch.tensor([150.0, 200.0])})
    assert point.low == 0.0 and point.high == 200.0
    assert point.fpr95_threshold == pytest.approx(94.05)  # the 95% quantile, interpolated
    assert float((test <= point.fpr95_threshold).double().mean()) == 0.95
    rates = flagged_rates({"test": test, "far": torch.tensor([150.0, 200.0])}, point.fpr95_threshold)
    assert rates == {"test": 0.05, "far": 1.0}  # FPR95: 5% of test flagged


def test_equal_scores_still_give_a_range_and_the_threshold_stays_inside_it():
    point = operating_point({"test": torch.full((4,), 2.0), "near": torch.full((3,), 2.0)})
    assert (point.low, point.high, point.fpr95_threshold) == (2.0, 3.0, 2.0)
    with pytest.raises(DataFormatError, match="'test' scores"):
        operating_point({"near": torch.ones(3)})


def test_flagged_rates_count_scores_strictly_above_the_threshold():
    reference = {"test": torch.tensor([0.0, 1.0, 2.0, 3.0]), "near": torch.tensor([1.0, 5.0])}
    assert flagged_rates(reference, 1.0) == {"test": 0.5, "near": 0.5}
    assert flagged_rates(reference, 10.0) == {"test": 0.0, "near": 0.0}


@pytest.fixture
def run() -> OODRun:
    """A run read back without files: its config reads MC dropout with MSP instead of entropy."""
    config = Config(dataset="digits", far_sets=["shapes"], bench=MethodSettings(scores={"mc_dropout": "msp"}))
    return OODRun(Path("ood-run"), {}, config)


def test_the_stored_row_follows_the_reported_rows_and_the_config_overrides(run):
    assert run.stored_row("ensemble", "mutual_information") == "ensemble"
    assert run.stored_row("single", "energy") == "single_energy"
    assert (
        run.stored_row("mc_dropout", "msp") == "mc_dropout"
        and run.stored_row("mc_dropout", "entropy") is None
    )
    assert run.stored_row("feature", "knn") == "knn" and run.stored_row("single", "knn") is None
    assert run.row_score("mc_dropout") == "msp" and run.row_score("ensemble") == "mutual_information"


def test_the_default_score_is_the_one_the_run_reported_else_the_first(run):
    assert run.default_score("ensemble", ["msp", "entropy", "mutual_information"]) == "mutual_information"
    assert run.default_score("mc_dropout", ["entropy", "msp"]) == "msp"
    assert run.default_score("temp_scaled", ["energy", "entropy"]) == "energy"  # reported with msp only
    run.results.rows = {"bnn": ["bnn", "mutual_information"]}  # a run of some methods: its own rows
    assert run.stored_row("ensemble", "mutual_information") is None
    assert run.stored_row("bnn", "mutual_information") == "bnn"


def test_the_reference_scores_are_the_runs_own_else_computed_from_fresh_predictions(run, monkeypatch):
    stored = {"test": torch.tensor([0.1]), "near": torch.tensor([0.9])}
    monkeypatch.setitem(run.__dict__, "scores", {"ensemble": stored})  # the cached per-image scores
    assert run.reference_scores("ensemble", "mutual_information", lambda: pytest.fail("stored")) is stored
    probs = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])  # one sample, two images
    fresh = run.reference_scores("ensemble", "msp", lambda: {"test": Prediction(probs)})
    assert fresh["test"].tolist() == pytest.approx([-0.5, -1.0])  # MSP: minus the top probability


def test_one_images_summary_has_a_column_per_method_in_order():
    inspected = {
        "feature": ImagePrediction({"knn": 0.25}),
        "ensemble": ImagePrediction({"entropy": 0.5}, torch.tensor([[0.6, 0.4], [0.8, 0.2]])),
    }
    summary = image_summary(inspected, ["cat", "dog"])
    assert list(summary) == ["deep ensemble", "feature space"]
    assert summary["deep ensemble"] == {
        "samples": "2",
        "prediction": "cat",
        "p̄(prediction)": "0.700",
        "spread: std of p(prediction)": "0.100",
        "entropy": "0.5",
    }
    assert summary["feature space"] == {"KNN distance": "0.25"} and set(summary["feature space"]) < set(
        SUMMARY_ROWS
    )


def test_the_evaluation_round_trips_through_results_json_and_older_runs_side_file(tmp_path):
    evaluation = Evaluation(
        sets=["near"],
        classes=["a", "b"],
        rows={"bnn": ["bnn", "mutual_information"]},
        ood={"bnn": {"near": {"auroc": 0.8}}},
        roc={"bnn": {"near": [[0.0, 1.0], [0.0, 1.0]]}},
    )
    run_dir = RunDir.create("uncertainty", tmp_path)
    run_dir.write_result(EVALUATION, evaluation)
    assert read_result(run_dir.path, EVALUATION)["rows"] == {"bnn": ["bnn", "mutual_information"]}
    assert read_evaluation(run_dir.path) == evaluation
    old = tmp_path / "old"  # a run made before results.json: the same data in ood_results.json
    old.mkdir()
    side = {"sets": ["near"], "classes": ["a", "b"], "heldout": ["9"], "roc": evaluation.roc, "retired": 1}
    (old / LEGACY_RESULTS).write_text(json.dumps(side))
    legacy = read_evaluation(old)  # keys it lacks stay empty, keys no longer read are left out
    assert legacy.sets == ["near"] and legacy.heldout == ["9"] and legacy.roc == evaluation.roc
    assert legacy.reliability == {} and legacy.rows == {}
    with pytest.raises(DataNotFoundError, match="no 'evaluation' results"):
        read_evaluation(tmp_path)
