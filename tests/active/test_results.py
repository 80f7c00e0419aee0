"""The active-learning reader's curves over seeds and route counts, on hand-made curves."""

import numpy as np
import pytest

from playground.active.results import mean_route_counts, seed_curve


def curve(accuracy, seconds) -> dict:
    return {"labels": [10, 20, 30][: len(accuracy)], "accuracy": accuracy, "train_seconds": seconds}


def test_a_seed_curve_is_the_mean_and_sample_std_over_seeds():
    runs = [curve([0.5, 0.6, 0.7], [1, 1, 1]), curve([0.7, 0.8, 0.9], [3, 3, 3])]
    spread = seed_curve(runs, "accuracy")
    assert spread.labels == [10, 20, 30] and spread.band.seeds == 2
    assert np.allclose(spread.band.mean, [0.6, 0.7, 0.8])
    assert np.allclose(spread.band.std, [2**0.5 * 0.1] * 3)  # ddof=1: |0.7 - 0.5| / sqrt(2)
    assert np.allclose(spread.band.high - spread.band.low, 2 * spread.band.std)


def test_a_cumulative_seed_curve_sums_each_seed_first():
    runs = [curve([0.5, 0.6, 0.7], [1, 2, 3]), curve([0.7, 0.8, 0.9], [3, 2, 1])]
    spent = seed_curve(runs, "train_seconds", cumulative=True)
    assert np.allclose(spent.band.mean, [2, 4, 6])  # (1, 3, 6) and (3, 5, 6)
    assert np.allclose(spent.band.std, [2**0.5, 2**0.5, 0])


def test_one_seed_has_no_band_and_curves_are_cut_to_the_shortest_seed():
    alone = seed_curve([curve([0.5, 0.6], [1, 1])], "accuracy")
    assert alone.band.std is None and list(alone.band.low) == list(alone.band.mean) == [0.5, 0.6]
    cut = seed_curve([curve([0.5, 0.6, 0.7], [1, 1, 1]), curve([0.7, 0.8], [1, 1])], "accuracy")
    assert np.allclose(cut.band.mean, [0.6, 0.7])


def test_route_counts_are_averaged_over_the_seeds_that_report_them():
    escalation = [
        {"routes": {"auto": 10, "escalate": 4}},
        {"routes": {"auto": 13, "escalate": 5, "ood": 2}},
    ]
    counts = mean_route_counts(escalation)
    assert list(counts) == ["auto", "escalate", "ood"]
    assert counts == {"auto": 11.5, "escalate": 4.5, "ood": pytest.approx(2.0)}


def saved_curves(offset: float = 0.0) -> dict:
    """One seed's curves section as a run writes it (two strategies, one policy, the escalation)."""
    line = {
        "labels": [20, 40],
        "accuracy": [0.5 + offset, 0.7 + offset],
        "forgetting": [0.0, 0.0],
        "train_seconds": [1.0, 2.0],
        "acquire_seconds": [0.1, 0.1],
    }
    return {
        "strategies": {"random": line, "bald": line},
        "policies": {"scratch": line},
        "escalation": {
            "escalation_rate": [0.0, 0.5],
            "auto_label_accuracy": [0.9, 1.0],
            "routes": {"auto": 3},
        },
    }


def test_curves_are_a_results_section_and_a_run_made_before_results_json_still_opens(tmp_path):
    from playground.active.experiment import Config
    from playground.active.results import CURVES, load_curves
    from playground.core.runs import RESULTS, RunDir

    run = RunDir.create("active", tmp_path)
    run.write_result(CURVES, saved_curves())
    assert load_curves(run.path)["strategies"]["bald"] == [saved_curves()["strategies"]["bald"]]

    parent = RunDir.create("old", tmp_path)  # two seeds written before results.json: curves.json each
    for seed in (0, 1):
        old = RunDir(parent.path / f"seed{seed}-20250101-000000")
        old.path.mkdir()
        old.write_config(Config(), "active")
        old.write_json("curves.json", saved_curves(0.1 * seed))
        assert not (old.path / RESULTS).exists()
    curves = load_curves(parent.path)
    assert [c["accuracy"][0] for c in curves["strategies"]["random"]] == pytest.approx([0.5, 0.6])
    assert len(curves["escalation"]) == 2 and curves["policies"]["scratch"][1]["labels"] == [20, 40]


def write_sections(folder, **sections):
    import json

    from playground.core.runs import RESULTS, RESULTS_FORMAT

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text("experiment = 'active'\n[config]\n")
    (folder / RESULTS).write_text(json.dumps({"format": RESULTS_FORMAT, "sections": sections}))
    return folder


GOOD_CURVES = {
    "strategies": {"random": curve([0.5, 0.6], [1, 1])},
    "policies": {"scratch": curve([0.5, 0.6], [1, 1])},
    "escalation": {"routes": {"escalate": 3, "ood": 1}},
}


@pytest.mark.parametrize(
    "damage, message, queue_too",
    [
        ([1, 2], "a list, not an object", True),  # was a bare TypeError in the page
        ({**GOOD_CURVES, "strategies": None}, "'strategies' is not an object of curves", False),
        (
            {**GOOD_CURVES, "policies": {"p": {"accuracy": "hi"}}},
            "'accuracy' is not a list of numbers",
            False,
        ),
        ({**GOOD_CURVES, "escalation": {"routes": [1]}}, "'routes' is not an object of counts", True),
    ],
)
def test_damaged_curves_name_the_run_and_the_damage(tmp_path, damage, message, queue_too):
    """The queue fill of a run made before the queue section reads only the escalation's routes."""
    from playground.active.results import load_curves, read_queue_fill
    from playground.errors import DataFormatError

    run = write_sections(tmp_path / "run", curves=damage)
    for reader in (load_curves, read_queue_fill) if queue_too else (load_curves,):
        with pytest.raises(DataFormatError, match="holds damaged active-learning curves: ") as refused:
            reader(run)
        assert str(run) in str(refused.value) and message in str(refused.value)


def test_a_damaged_queue_section_or_seeds_with_other_strategies_are_clear_errors(tmp_path):
    from playground.active.results import load_curves, read_queue_fill
    from playground.errors import DataFormatError

    run = write_sections(
        tmp_path / "run", curves=GOOD_CURVES, queue={"queue": "q", "uncertain": "12", "ood": 1}
    )
    with pytest.raises(DataFormatError, match="whole-number counts \\(uncertain are not\\)"):
        read_queue_fill(run)  # counts() raised "Cannot specify ',' with 's'." in the page
    write_sections(run, curves=GOOD_CURVES, queue=["q"])
    with pytest.raises(DataFormatError, match="its 'queue' results are a list, not an object"):
        read_queue_fill(run)
    write_sections(run, curves=GOOD_CURVES, queue={"queue": "q", "uncertain": 12, "ood": 1, "added": None})
    assert read_queue_fill(run).counts() == "12 uncertain, 1 likely OOD"
    parent = tmp_path / "multi"
    write_sections(parent / "seed0-x", curves=GOOD_CURVES)
    other = {**GOOD_CURVES, "strategies": {"bald": curve([0.5, 0.6], [1, 1])}}
    write_sections(parent / "seed1-x", curves=other)
    with pytest.raises(DataFormatError, match="the seeds' curves name different strategies"):
        load_curves(parent)  # was a KeyError: 'random'
