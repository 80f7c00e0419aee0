"""Edge galleries upgrading one by one: the split, the transition's accuracy per policy, each edge's cost."""

import pytest
import torch

from playground.fct.edges import assign_edges, edge_costs, transition_maps
from playground.fct.retrieval import retrieval_metrics


def test_edges_get_a_balanced_reproducible_split():
    owner = assign_edges(103, 4, seed=3)
    assert torch.equal(owner, assign_edges(103, 4, seed=3)) and not torch.equal(
        owner, assign_edges(103, 4, seed=4)
    )
    assert sorted(torch.bincount(owner).tolist()) == [25, 26, 26, 26]


def test_a_half_upgraded_federation_loses_what_lies_in_the_other_space():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 5
    x = 5 * torch.randn(5, 8, generator=generator)[labels] + torch.randn(200, 8, generator=generator)
    emb = {"old": x, "old_stored": x, "fct": x, "new": x}  # one space: only reachability differs
    full = retrieval_metrics(x, x, labels, topk=(1,))["mAP"]
    maps = transition_maps(emb, labels, assign_edges(200, 4, seed=0), torch.arange(200))
    assert set(maps) == {"fct", "reembed", "dual"} and all(len(m) == 5 for m in maps.values())
    for policy in maps:
        assert maps[policy][0] == pytest.approx(full) and maps[policy][-1] == pytest.approx(full)
    assert maps["dual"] == pytest.approx([full] * 5)  # everyone stays in the old space until the end
    assert max(maps["fct"][1:-1]) < full - 0.2  # half the same-class items unreachable at step 2
    assert maps["fct"] == pytest.approx(maps["reembed"])


def test_edge_costs_add_up_to_the_gallery():
    owner = assign_edges(50, 3, seed=0)
    cost = {
        "transformation_macs": 10,
        "new_model_macs": 1000,
        "backfill_transform_s": 1.0,
        "backfill_reembed_s": 50.0,
    }
    rows = edge_costs(owner, cost)
    assert sum(r["images"] for r in rows) == 50
    assert all(
        r["reembed_macs"] == 100 * r["transform_macs"] and r["reembed_s"] > r["transform_s"] for r in rows
    )
