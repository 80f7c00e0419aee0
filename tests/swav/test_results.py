"""The SwAV reader's probe curves, prototype assignments and results sections, on hand-made numbers
(no training)."""

import json

import numpy as np
import pytest
import torch

from playground.core.runs import RunDir
from playground.errors import DataNotFoundError
from playground.swav.results import (
    PROBES,
    SINKHORN,
    PrototypeMatch,
    load_probes,
    load_sinkhorn,
    probe_curves,
    prototype_examples,
    top_prototypes,
)

PROBE_TABLE = {
    "linear_probe": {"swav": {0.1: 0.6, 1.0: 0.8}},
    "lowshot": {"swav": {0.1: 0.7}},
    "swav_loss": [3.0, 2.5],
}
SINKHORN_TRACE = {"errors": [[0.5, 2.0], [0.0, 0.1]], "epsilon": 0.05, "codes": [[[0.5, 0.5]], [[1.0, 0.0]]]}


def test_probe_curves_band_the_linear_probe_and_average_the_fine_tuning_over_seeds():
    probes = [
        {
            "linear_probe": {"swav": {0.1: 0.6, 0.01: 0.4}, "random_init": {0.1: 0.3}},
            "lowshot": {"swav": {0.1: 0.7}},
        },
        {
            "linear_probe": {"swav": {0.1: 0.8, 0.01: 0.6}, "random_init": {0.1: 0.5}},
            "lowshot": {"swav": {0.1: 0.9}},
        },
    ]
    swav, random_init = probe_curves(probes)
    assert swav.init == "swav" and swav.fractions == [0.01, 0.1] and swav.probe.seeds == 2
    assert np.allclose(swav.probe.mean, [0.5, 0.7]) and np.allclose(swav.probe.std, [2**0.5 * 0.1] * 2)
    assert swav.shots == [0.1] and np.allclose(swav.tuned, [0.8])
    assert random_init.shots == [] and random_init.tuned is None


def test_one_seed_probe_curve_has_no_spread():
    (curve,) = probe_curves([{"linear_probe": {"swav": {0.5: 0.9}}, "lowshot": {}}])
    assert curve.probe.std is None and list(curve.probe.mean) == [0.9]


def test_top_prototypes_are_softmax_at_the_temperature_most_probable_first():
    scores = torch.tensor([[0.0, 0.0, 0.2], [0.3, 0.1, 0.0]])  # two images, three prototypes
    counts = torch.tensor([[5, 1], [0, 4], [2, 3]])  # classes per prototype: majority 0, 1, 1
    first, second = top_prototypes(scores, temperature=0.1, counts=counts, top=2)
    e = np.exp(2.0)  # image 0: prototype 2 has logit 2, the others 0
    assert first[0] == PrototypeMatch(2, pytest.approx(e / (e + 2)), 1)
    assert [m.prototype for m in first] == [2, 0] and first[1].majority_class == 0
    assert [m.prototype for m in second] == [0, 1] and second[0].probability > second[1].probability
    assert len(top_prototypes(scores, 0.1, counts, top=5)[0]) == 3  # never more than K


def test_prototype_examples_drop_the_zero_padding():
    examples = torch.zeros(2, 3, 1, 2, 2)
    examples[1, 0] = 1.0
    examples[1, 2] = -0.5
    held = prototype_examples(examples, 1)
    assert len(held) == 2 and torch.equal(held[1], torch.full((1, 2, 2), -0.5))
    assert prototype_examples(examples, 0) == []


def run_folder(parent, name: str):
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text('experiment = "swav"\n[config]\n')
    return folder


def test_the_probes_and_sinkhorn_sections_round_trip_with_float_fractions(tmp_path):
    run = RunDir(run_folder(tmp_path, "run"))
    run.write_result(PROBES, PROBE_TABLE)
    run.write_result(SINKHORN, SINKHORN_TRACE)
    assert {p.name for p in run.path.iterdir()} == {"config.toml", "results.json"}
    (probes,) = load_probes(run.path)
    assert probes == PROBE_TABLE  # the fractions come back as numbers, not JSON's strings
    assert load_sinkhorn(run.path) == SINKHORN_TRACE


def test_runs_made_before_results_json_still_open_from_their_side_files(tmp_path):
    parent = tmp_path / "swav-seeds"
    for seed in (2, 10):  # a multi-seed parent: the reader goes through the seed folders in seed order
        folder = run_folder(parent, f"seed{seed}-20260101-000000")
        table = PROBE_TABLE | {"swav_loss": [3.0, 2.0 + seed / 10]}
        (folder / "probes.json").write_text(json.dumps(table))
        (folder / "sinkhorn.json").write_text(json.dumps(SINKHORN_TRACE | {"epsilon": seed}))
    first, second = load_probes(parent)
    assert first["linear_probe"] == PROBE_TABLE["linear_probe"] and second["swav_loss"] == [3.0, 3.0]
    assert load_sinkhorn(parent)["epsilon"] == 2  # the first seed's
    with pytest.raises(DataNotFoundError, match="no 'probes' results"):
        load_probes(run_folder(tmp_path, "interrupted"))
