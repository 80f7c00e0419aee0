"""The fastest variant within a budget, on fabricated measurements."""

import pytest

from playground.core.timing import LatencyStats
from playground.errors import ConfigError
from playground.latency.pick import (
    OVER,
    PICKED,
    SKIPPED,
    SLOWER,
    UNMEASURED,
    check_budget,
    pick_table,
    pick_variant,
)


def stats(batch: int, p50: float) -> LatencyStats:
    return LatencyStats(batch, 50, p50, p50, p50, p50, 0.0, batch / (p50 / 1000))


def variant(accuracy, p1, p32=None, agreement=None, size_mb=None) -> dict:
    latency = {1: stats(1, p1)}
    if p32 is not None:
        latency[32] = stats(32, p32)
    out = {
        "accuracy": accuracy,
        "ood_accuracy": 0.5,
        "far_agreement": 0.9,
        "latency": latency,
        "peak_mb": 1.0,
    }
    if agreement is not None:
        out["agreement"] = agreement
    if size_mb is not None:
        out["size_mb"] = size_mb
    return out


@pytest.fixture
def runs() -> dict:
    return {
        "torch_fp32": variant(0.915, 7.4, 100.0, agreement=1.0),
        "ort_fp32": variant(0.915, 6.0, 90.0, agreement=1.0),
        "ort_int8_static": variant(0.912, 3.1, 40.0, agreement=0.995),
        "ort_int8_dynamic": variant(0.900, 2.0, 30.0, agreement=0.97),  # fastest, 1.5 points down
    }


def test_the_fastest_within_the_drop_budget_wins_and_a_faster_one_over_budget_is_rejected(runs):
    pick = pick_variant(runs, batch=1, max_drop=0.5)
    assert pick.name == "ort_int8_static"
    assert pick.p50_ms == 3.1 and pick.speedup == pytest.approx(7.4 / 3.1)
    assert pick.quality == 0.912 and pick.reference_quality == 0.915 and pick.quality_key == "accuracy"
    assert pick.why.startswith(
        "ort_int8_static is the fastest within 0.5 points of torch_fp32's accuracy at batch 1: "
        "3.1 ms against 7.4 ms (2.39\u00d7), accuracy 0.912 against 0.915 (\u22120.30 points)."
    )
    assert "Faster but over budget: ort_int8_dynamic (2 ms, \u22121.50 points)." in pick.why
    assert set(pick.rejected) == {"torch_fp32", "ort_fp32", "ort_int8_dynamic"}
    assert "1.50 points below torch_fp32's 0.9150" in pick.rejected["ort_int8_dynamic"]
    assert pick.rejected["ort_int8_dynamic"].startswith("over budget")
    assert pick.rejected["ort_fp32"] == "slower: 6 ms p50 against 3.1 ms for ort_int8_static"
    status = {c.name: c.status for c in pick.candidates}
    assert status == {
        "ort_int8_static": PICKED,
        "ort_fp32": SLOWER,
        "torch_fp32": SLOWER,
        "ort_int8_dynamic": OVER,
    }


def test_a_wider_drop_budget_admits_the_faster_variant(runs):
    pick = pick_variant(runs, batch=1, max_drop=1.5)  # exactly 1.5 points: within
    assert pick.name == "ort_int8_dynamic"
    assert pick.speedup == pytest.approx(3.7)


def test_the_budget_is_per_batch(runs):
    runs["ort_fp32"]["latency"][32] = stats(32, 20.0)  # fastest at 32 among those within budget
    assert pick_variant(runs, batch=32, max_drop=0.5).name == "ort_fp32"
    assert pick_variant(runs, batch=1, max_drop=0.5).name == "ort_int8_static"


def test_min_agreement_uses_the_agreement_not_the_accuracy(runs):
    runs["ort_int8_static"]["accuracy"] = 0.5  # would be far over a drop budget
    pick = pick_variant(runs, batch=1, min_agreement=0.99)
    assert pick.name == "ort_int8_static" and pick.quality == 0.995 and pick.quality_key == "agreement"
    assert "argmax agreement 0.9950 with torch_fp32" in pick.why
    assert (
        "over budget: argmax agreement 0.9700 with torch_fp32, under the 0.99 asked"
        in (pick.rejected["ort_int8_dynamic"])
    )
    assert pick_variant(runs, batch=1, min_agreement=0.96).name == "ort_int8_dynamic"


def test_the_reference_is_always_eligible_and_needs_no_agreement_key(runs):
    del runs["torch_fp32"]["agreement"]
    for name in ("ort_fp32", "ort_int8_static", "ort_int8_dynamic"):
        runs[name]["agreement"] = 0.5
    pick = pick_variant(runs, batch=1, min_agreement=0.99)
    assert pick.name == "torch_fp32" and pick.speedup == 1.0 and pick.quality == 1.0
    assert pick.why.startswith("torch_fp32 itself is the fastest with at least 0.99 argmax agreement")


def test_a_variant_without_the_measure_is_not_eligible(runs):
    del runs["ort_int8_static"]["accuracy"]
    runs["ort_fp32"]["accuracy"] = float("nan")
    pick = pick_variant(runs, batch=1, max_drop=0.5)
    assert pick.name == "torch_fp32"
    assert pick.rejected["ort_int8_static"] == "no accuracy measured, so the budget cannot be checked"
    assert pick.rejected["ort_fp32"] == "no accuracy measured, so the budget cannot be checked"
    assert {c.name: c.status for c in pick.candidates}["ort_int8_static"] == UNMEASURED


def test_max_drop_without_the_reference_accuracy_is_a_config_error(runs):
    for measurement in runs.values():
        del measurement["accuracy"]
    with pytest.raises(ConfigError, match="min_agreement instead"):
        pick_variant(runs, batch=1, max_drop=0.5)
    assert pick_variant(runs, batch=1, min_agreement=0.99).name == "ort_int8_static"


def test_an_unmeasured_batch_lists_the_measured_ones(runs):
    with pytest.raises(
        ConfigError, match="batch 8 was not measured; pick one of the measured batches: 1, 32"
    ):
        pick_variant(runs, batch=8, max_drop=0.5)


def test_a_variant_not_timed_at_the_batch_is_rejected(runs):
    del runs["ort_int8_static"]["latency"][32]
    pick = pick_variant(runs, batch=32, max_drop=0.5)
    assert pick.name == "ort_fp32"
    assert pick.rejected["ort_int8_static"] == "not timed at batch 32 (timed at: 1)"


@pytest.mark.parametrize(
    "budget", [{}, {"max_drop": 0.5, "min_agreement": 0.99}, {"max_drop": -1}, {"min_agreement": 1.5}]
)
def test_the_budget_must_be_exactly_one_in_range(runs, budget):
    with pytest.raises(ConfigError):
        pick_variant(runs, batch=1, **budget)


def test_check_budget_names_the_mode():
    assert check_budget(0.5, None) == ("drop", 0.5)
    assert check_budget(None, 0.99) == ("agreement", 0.99)
    with pytest.raises(ConfigError, match="exactly one"):
        check_budget(None, None)


def test_skipped_variants_are_listed_with_the_builders_reason(runs):
    pick = pick_variant(runs, batch=1, max_drop=0.5, skipped={"ort_fp16": "needs a GPU"})
    assert pick.rejected["ort_fp16"] == "skipped: needs a GPU"
    assert pick.candidates[-1].name == "ort_fp16" and pick.candidates[-1].status == SKIPPED


def test_a_missing_reference_is_a_config_error(runs):
    del runs["torch_fp32"]
    with pytest.raises(ConfigError, match=r"'torch_fp32', which did not run \(skipped: broken\)"):
        pick_variant(runs, batch=1, max_drop=0.5, skipped={"torch_fp32": "broken"})


def test_ties_go_to_the_smaller_variant(runs):
    runs["ort_fp32"] = variant(0.915, 3.1, agreement=1.0, size_mb=40.0)
    runs["ort_int8_static"]["size_mb"] = 10.0
    pick = pick_variant(runs, batch=1, max_drop=0.5)
    assert pick.name == "ort_int8_static"
    assert pick.rejected["ort_fp32"] == (
        "as fast as ort_int8_static (3.1 ms p50) but not smaller: 40 MB against 10 MB"
    )


def test_json_shaped_latencies_are_read(runs):
    for measurement in runs.values():  # results.json keeps batches as strings and stats as dicts
        measurement["latency"] = {str(b): s.to_dict() for b, s in measurement["latency"].items()}
    assert pick_variant(runs, batch=1, max_drop=0.5).name == "ort_int8_static"


def test_pick_table_lists_every_candidate_with_its_status(runs):
    pick = pick_variant(runs, batch=1, max_drop=0.5, skipped={"ort_fp16": "needs a GPU"})
    lines = pick_table(pick).splitlines()
    assert lines[0] == (
        "| variant | status | p50 ms, b1 | speed-up vs torch_fp32 | accuracy | change (points) | reason |"
    )
    assert lines[2] == "| **ort_int8_static** | picked | 3.1 | 2.39\u00d7 | 0.9120 | \u22120.30 | the pick |"
    assert [line.split(" | ")[1] for line in lines[2:]] == [PICKED, SLOWER, SLOWER, OVER, SKIPPED]
    assert lines[-1] == "| ort_fp16 | skipped | - | - | - | - | skipped: needs a GPU |"
