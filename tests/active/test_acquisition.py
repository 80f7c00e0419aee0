import math

import pytest
import torch

from playground.active.acquisition import (
    ACQUISITIONS,
    acquisition,
    bald,
    entropy,
    least_confidence,
    margin,
    select,
)
from playground.errors import ConfigError, DataFormatError


def probs_of(*rows):
    return torch.tensor(rows, dtype=torch.float)


def test_scores_rank_the_uncertain_sample_first():
    confident, torn = [0.98, 0.01, 0.01], [0.34, 0.33, 0.33]
    probs = probs_of(confident, torn)[None]  # S = 1, N = 2
    for fn in (least_confidence, margin, entropy):
        scores = fn(probs)
        assert scores[1] > scores[0], fn.__name__


def test_values_by_hand():
    p = probs_of([0.5, 0.3, 0.2])[None]
    assert least_confidence(p).item() == pytest.approx(0.5)
    assert margin(p).item() == pytest.approx(0.8)
    assert entropy(p).item() == pytest.approx(
        -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)), abs=1e-6
    )


def test_bald_separates_disagreement_from_ambiguity():
    # sample 0: every pass says 50/50 (aleatoric: BALD 0); sample 1: passes disagree confidently (epistemic)
    passes = torch.tensor([[[0.5, 0.5], [0.99, 0.01]], [[0.5, 0.5], [0.01, 0.99]]])
    scores = bald(passes)
    assert scores[0].item() == pytest.approx(0.0, abs=1e-6)
    assert scores[1].item() > 0.6
    assert entropy(passes)[0].item() == pytest.approx(
        entropy(passes)[1].item(), abs=1e-6
    )  # entropy cannot tell


def test_bald_needs_several_samples_and_shapes_are_checked():
    with pytest.raises(ConfigError, match="BALD"):
        bald(torch.full((1, 3, 2), 0.5))
    with pytest.raises(DataFormatError, match=r"\(S, N, C\)"):
        entropy(torch.rand(3, 2))
    with pytest.raises(ConfigError, match="unknown acquisition"):
        acquisition("coreset")


def test_random_is_repeatable_from_its_generator():
    p = torch.full((1, 50, 3), 1 / 3)
    a = ACQUISITIONS["random"](p, torch.Generator().manual_seed(3))
    b = ACQUISITIONS["random"](p, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.unique().numel() == 50


def test_select_takes_the_top_k_best_first():
    assert select(torch.tensor([0.1, 0.9, 0.5, 0.7]), 2).tolist() == [1, 3]
    assert select(torch.tensor([0.1, 0.9]), 5).tolist() == [1, 0]
    with pytest.raises(ConfigError):
        select(torch.tensor([0.1]), 0)


def test_power_selection_samples_in_proportion_to_the_score():
    scores = torch.tensor([8.0, 1.0, 1.0, 0.0])
    picks = torch.zeros(4)
    for seed in range(2000):
        picks[select(scores, 1, "power", torch.Generator().manual_seed(seed))] += 1
    assert picks[3] == 0  # a zero score is never drawn
    assert picks[0] / 2000 == pytest.approx(0.8, abs=0.03) and picks[1] / 2000 == pytest.approx(0.1, abs=0.03)
    batch = select(torch.rand(50), 10, "power", torch.Generator().manual_seed(0))
    assert batch.unique().numel() == 10
    again = select(
        torch.rand(50, generator=torch.Generator().manual_seed(5)),
        10,
        "power",
        torch.Generator().manual_seed(0),
    )
    assert torch.equal(
        select(
            torch.rand(50, generator=torch.Generator().manual_seed(5)),
            10,
            "power",
            torch.Generator().manual_seed(0),
        ),
        again,
    )
    with pytest.raises(ConfigError, match="selection"):
        select(scores, 1, "greedy")
