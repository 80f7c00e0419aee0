"""Edge galleries that upgrade on their own dates (the FCT paper's decentralized setting).

The gallery is split at random among ``N`` edge devices, each holding its own images' old vectors
and side-information. Edge ``e`` upgrades at step ``e + 1``: it receives the new model and either
transforms its stored vectors with h on the device (FCT) or re-embeds its images with the new model.
Every edge queries every edge's gallery with the model it runs at that step. While some edges are
upgraded and some are not, a query can only be answered where the gallery is in its own space;
three ways through the transition are scored at every step ``0..N``:

- ``fct``: each query searches the edges in its own space (the new ones hold ``h(old, side)``); items
  on the other edges cannot be reached, and rank last;
- ``reembed``: the same, but upgraded edges re-embedded their images (the accuracy ceiling, at the
  cost of the new model's forward pass for every image on the device);
- ``dual``: upgraded edges keep their old vectors too and every query also runs the old model, so
  all queries use the old space until the last edge upgrades (no unreachable items; twice the vectors
  stored on upgraded edges, and the old space's accuracy throughout).
"""

from __future__ import annotations

import torch

from playground.fct.retrieval import retrieval_metrics

POLICIES = ("fct", "reembed", "dual")
FAR = 1e6  # a vector no query reaches before every reachable one


def assign_edges(count: int, edges: int, seed: int) -> torch.Tensor:
    """The edge of each gallery image: a random, balanced split."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    owner = torch.empty(count, dtype=torch.long)
    owner[order] = torch.arange(count) % edges
    return owner


def _space_map(queries, gallery, labels, rows, reachable, distance) -> tuple[float, int]:
    """mAP of ``queries`` (gallery rows ``rows``) where only ``reachable`` gallery items can be found."""
    if len(rows) == 0:
        return 0.0, 0
    shown = torch.where(reachable[:, None], gallery, torch.full_like(gallery, FAR))
    return retrieval_metrics(queries, shown, labels, distance, topk=(1,), query_rows=rows)["mAP"], len(rows)


def transition_maps(
    emb: dict[str, torch.Tensor],
    labels: torch.Tensor,
    owner: torch.Tensor,
    rows: torch.Tensor,
    distance: str = "l2",
) -> dict[str, list[float]]:
    """mAP of every policy at each step 0..N (step k: edges 0..k-1 upgraded).

    ``emb``: ``old`` queries, ``old_stored`` and ``fct`` galleries, ``new`` queries and galleries;
    ``rows``: the gallery rows whose images are the queries (their edge is their owner's)."""
    edges = int(owner.max()) + 1
    maps: dict[str, list[float]] = {policy: [] for policy in POLICIES}
    for step in range(edges + 1):
        upgraded = owner < step
        mine = upgraded[rows]
        for policy, new_gallery in (("fct", emb["fct"]), ("reembed", emb["new"])):
            new_part = _space_map(emb["new"][rows[mine]], new_gallery, labels, rows[mine], upgraded, distance)
            old_part = _space_map(
                emb["old"][rows[~mine]], emb["old_stored"], labels, rows[~mine], ~upgraded, distance
            )
            maps[policy].append((new_part[0] * new_part[1] + old_part[0] * old_part[1]) / len(rows))
        if step < edges:
            all_reachable = torch.ones_like(upgraded)
            maps["dual"].append(
                _space_map(emb["old"][rows], emb["old_stored"], labels, rows, all_reachable, distance)[0]
            )
        else:
            maps["dual"].append(maps["fct"][-1])  # every edge upgraded: the old vectors are dropped
    return maps


def edge_costs(owner: torch.Tensor, cost: dict[str, float]) -> list[dict[str, float]]:
    """Each edge's upgrade cost: h over its stored vectors against re-embedding its images."""
    rows = []
    for edge in range(int(owner.max()) + 1):
        images = int((owner == edge).sum())
        rows.append(
            {
                "edge": edge,
                "images": images,
                "transform_macs": images * cost["transformation_macs"],
                "reembed_macs": images * cost["new_model_macs"],
                "transform_s": images * cost["backfill_transform_s"] / 10_000,
                "reembed_s": images * cost["backfill_reembed_s"] / 10_000,
            }
        )
    return rows
