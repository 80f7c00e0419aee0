"""The SwAV reader's probe curves and prototype assignments, on hand-made numbers (no training)."""

import numpy as np
import pytest
import torch

from playground.swav.results import PrototypeMatch, probe_curves, prototype_examples, top_prototypes


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
