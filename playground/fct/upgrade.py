"""Upgrade policies side by side, and partial backfill in each order, on one FCT run's split.

A retrieval system moving from the old model to the new one can (each row of the report's table)
re-embed every gallery image; transform the stored vectors with FCT's h (with or without
side-information); query the old gallery with a BCT-trained new model; or fit a post-hoc adapter
on a few paired images (:mod:`~playground.fct.adapters`, query-side or gallery-side). Each is scored
with the new model's queries (mapped where the policy says so) and costed: multiply-accumulates per
gallery image and per query, seconds per 10k gallery images, bytes stored per image, paired images
needed. Partial backfill (:mod:`~playground.fct.backfill_order`) then re-embeds a growing share of the
h-transformed gallery in each uncertainty order and keeps the backfilling curve and its area.

Everything here is measured on the same queries: ``curve_queries`` gallery images drawn once per run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from playground.core.progress import Progress, report, staged
from playground.errors import ConfigError
from playground.fct import adapters, backfill_order, edges
from playground.fct.retrieval import retrieval_metrics
from playground.fct.transformation import Transformation, train_for_config, transform
from playground.models import count_macs


@dataclass
class UpgradeSpec:
    """The ``[upgrade]`` section: the backfill orders and the post-hoc adapters to compare."""

    orders: list[str] = field(default_factory=lambda: list(backfill_order.ORDERS))  # empty: no curves
    fractions: int = 11  # points on each backfilling curve, evenly from 0 to 1
    curve_queries: int = 1000  # queries for every number of this study (0: every gallery image)
    ensemble_size: int = 3  # transformations in the ``ensemble`` order (the run's h and K-1 more)
    knn_k: int = 10
    variance_epochs: int = 10  # the ``fastfill`` variance head
    adapters: list[str] = field(default_factory=lambda: list(adapters.ADAPTER_KINDS))  # empty: none
    paired_images: list[int] = field(default_factory=lambda: [250, 1000, 4000])  # the largest in the table
    rank: int = 16  # low_rank only
    hidden: int = 256  # residual_mlp only
    epochs: int = 30  # residual_mlp only
    edges: int = 4  # edge galleries upgrading one after another (0: skip)

    def __post_init__(self):
        for name, known in (("orders", backfill_order.ORDERS), ("adapters", adapters.ADAPTER_KINDS)):
            unknown = [value for value in getattr(self, name) if value not in known]
            if unknown:
                raise ConfigError(f"upgrade.{name}: unknown {unknown}; choose from {', '.join(known)}")
        if self.fractions < 2 or self.ensemble_size < 2 or self.curve_queries < 0:
            raise ConfigError("upgrade: fractions and ensemble_size must be at least 2, curve_queries >= 0")
        if self.adapters and (not self.paired_images or min(self.paired_images) < 2):
            raise ConfigError("upgrade.paired_images: give at least one size, each at least 2")
        if self.edges < 0 or self.edges == 1:
            raise ConfigError(f"upgrade.edges must be 0 (skip) or at least 2, got {self.edges}")
        for key in ("knn_k", "variance_epochs", "rank", "hidden", "epochs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"upgrade.{key} must be at least 1, got {getattr(self, key)}")


@dataclass
class UpgradeOutcome:
    policies: list[dict] = field(default_factory=list)  # one row per policy, the table
    paired: list[dict] = field(default_factory=list)  # adapters at each paired-set size
    fractions: list[float] = field(default_factory=list)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # transformation -> order -> mAP
    areas: dict[str, dict[str, float]] = field(default_factory=dict)
    edges: dict = field(default_factory=dict)  # maps (policy -> mAP per step) and costs (per edge)
    variance_head: nn.Module | None = field(default=None, repr=False)  # FastFill's, saved for galleries


def study_upgrades(config, models, emb: dict, labels: torch.Tensor, cost: dict, progress: Progress = None):
    """The policy table, the adapters against paired-set size, and the backfilling curves."""
    spec: UpgradeSpec = config.upgrade
    rows = _query_rows(len(labels), spec.curve_queries, config.seed)
    score = lambda query, gallery: retrieval_metrics(  # noqa: E731
        query[rows], gallery, labels, config.distance, query_rows=rows
    )
    outcome = UpgradeOutcome(policies=_fixed_policies(models, emb, cost, score))
    outcome.paired = _adapter_rows(config, models, emb, score, cost["old_embedding_bytes"], progress)
    largest = max((row["paired_images"] for row in outcome.paired), default=None)
    outcome.policies += [row for row in outcome.paired if row["paired_images"] == largest]
    reembed = outcome.policies[0]["mAP"]
    for row in outcome.policies + outcome.paired:
        row["share_of_reembed"] = row["mAP"] / reembed
    if spec.orders:
        _curves(config, models, emb, labels, rows, outcome, progress)
    if spec.edges:
        owner = edges.assign_edges(len(labels), spec.edges, config.seed)
        outcome.edges = {
            "maps": edges.transition_maps(emb, labels, owner, rows, config.distance),
            "costs": edges.edge_costs(owner, cost),
        }
    return outcome


def _adapter_rows(config, models, emb, score, stored_bytes: int, progress) -> list[dict]:
    """Every adapter kind, both directions, fitted on each paired-set size (at most every image)."""
    spec: UpgradeSpec = config.upgrade
    available = models.features["old"].shape[0]
    sizes = sorted({min(size, available) for size in spec.paired_images}) if spec.adapters else []
    jobs = [
        (size, kind, direction)
        for size in sizes
        for kind in spec.adapters
        for direction in ("query", "gallery")
    ]
    rows = []
    for size, kind, direction in jobs:
        rows.append(_adapter_row(spec, kind, direction, size, models, emb, score, config.seed, stored_bytes))
        report(progress, "adapters", len(rows), len(jobs), message=rows[-1]["policy"])
    return rows


def _query_rows(count: int, wanted: int, seed: int) -> torch.Tensor:
    if wanted == 0 or wanted >= count:
        return torch.arange(count)
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:wanted].sort().values


def _seconds_per_10k(work, count: int) -> float:
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) * 10_000 / max(1, count)


def _macs(module: nn.Module, *dims: int) -> int:
    return count_macs(module, *(torch.zeros(1, d) for d in dims))


def _fixed_policies(models, emb, cost, score) -> list[dict]:
    """Full re-embedding, FCT with and without side-info, BCT and no upgrade at all."""
    h0 = models.transformation_noside
    old_bytes, side_bytes = cost["old_embedding_bytes"], cost["side_info_bytes"]
    paired = models.features["old"].shape[0]  # h was fitted on every new-time training image
    seconds_h0 = _seconds_per_10k(
        lambda: transform(h0, emb["old_stored"], emb["old_stored"]), len(emb["new"])
    )
    table = [  # policy, query, gallery, gallery MACs per image, s / 10k, bytes per image, paired images
        ("reembed", "new", "new", cost["new_model_macs"], cost["backfill_reembed_s"], old_bytes, 0),
        (
            "fct",
            "new",
            "fct",
            cost["transformation_macs"],
            cost["backfill_transform_s"],
            old_bytes + side_bytes,
            paired,
        ),
        ("fct_noside", "new", "fct_noside", _macs(h0, h0.old_dim, h0.old_dim), seconds_h0, old_bytes, paired),
        ("bct", "bct", "old_stored", 0, 0.0, old_bytes, 0),
        ("none", "new", "old_stored", 0, 0.0, old_bytes, 0),
    ]
    return [
        {
            "policy": policy,
            **score(emb[query], emb[gallery]),
            "gallery_macs": int(macs),
            "query_macs": 0,
            "seconds_per_10k": float(seconds),
            "bytes_per_image": int(stored),
            "paired_images": int(paired),
        }
        for policy, query, gallery, macs, seconds, stored, paired in table
    ]


def _adapter_row(spec, kind, direction, size, models, emb, score, seed, stored_bytes) -> dict:
    """Fit one adapter on the first ``size`` paired training images and score it."""
    old, new = models.features["old"][:size], models.features["new"][:size]
    source, target = (new, old) if direction == "query" else (old, new)
    adapter = adapters.fit_adapter(
        kind, source, target, rank=spec.rank, hidden=spec.hidden, epochs=spec.epochs, seed=seed
    )
    macs = _macs(adapter, source.shape[1])
    if direction == "query":  # new queries into the old space; the stored gallery is untouched
        scores, gallery_macs, query_macs, seconds = (
            score(adapters.apply_adapter(adapter, emb["new"]), emb["old_stored"]),
            0,
            macs,
            0.0,
        )
    else:  # the stored old vectors into the new space, once
        gallery = emb["old_stored"]
        seconds = _seconds_per_10k(lambda: adapters.apply_adapter(adapter, gallery), len(gallery))
        scores, gallery_macs, query_macs = (
            score(emb["new"], adapters.apply_adapter(adapter, gallery)),
            macs,
            0,
        )
    return {
        "policy": f"{kind}_{direction}",
        **scores,
        "gallery_macs": int(gallery_macs),
        "query_macs": int(query_macs),
        "seconds_per_10k": float(seconds),
        "bytes_per_image": int(stored_bytes),
        "paired_images": int(size),
    }


def _curves(config, models, emb, labels, rows, outcome: UpgradeOutcome, progress) -> None:
    """Backfilling curves for h with side-info (``side``) and without (``noside``), every order."""
    spec: UpgradeSpec = config.upgrade
    outcome.fractions = [i / (spec.fractions - 1) for i in range(spec.fractions)]
    feats, stored = models.features, emb["old_stored"]
    setups = {
        "side": (models.transformation, feats["side"], emb["side_stored"], emb["fct"]),
        "noside": (models.transformation_noside, feats["old"], stored, emb["fct_noside"]),
    }
    total, done = 2 * len(spec.orders), 0
    for name, (h, train_side, gallery_side, transformed) in setups.items():
        scores, head = _order_scores(config, name, h, train_side, gallery_side, models, stored, progress)
        if name == "side":
            outcome.variance_head = head  # a gallery's `backfill --order fastfill` uses it
        scores["oracle"] = (transformed - emb["new"]).pow(2).sum(dim=1)
        outcome.curves[name], outcome.areas[name] = {}, {}
        for order in spec.orders:
            ranking = (
                backfill_order.order_by(scores[order])
                if order != "random"
                else (backfill_order.random_order(len(stored), config.seed))
            )
            curve = backfill_order.backfill_curve(
                emb["new"][rows],
                transformed,
                emb["new"],
                labels,
                ranking,
                outcome.fractions,
                query_rows=rows,
                distance=config.distance,
            )
            outcome.curves[name][order] = curve
            outcome.areas[name][order] = backfill_order.curve_area(outcome.fractions, curve)
            done += 1
            report(
                progress,
                "backfilling curves",
                done,
                total,
                metrics={"area": outcome.areas[name][order]},
                message=f"{name} {order}",
            )


def _order_scores(config, name, h: Transformation, train_side, gallery_side, models, stored, progress):
    """Each chosen order's uncertainty score for every gallery vector (higher: re-embed sooner), and
    the FastFill variance head when that order is chosen."""
    spec: UpgradeSpec = config.upgrade
    feats, scores, head = models.features, {}, None
    if "fastfill" in spec.orders:
        head = backfill_order.train_variance_head(
            h,
            feats["old"],
            train_side,
            feats["new"],
            epochs=spec.variance_epochs,
            seed=config.seed,
            progress=staged(progress, f"fastfill variance ({name})"),
        )
        scores["fastfill"] = backfill_order.fastfill_scores(head, stored, gallery_side)
    if "ensemble" in spec.orders:
        members = [h] + [
            train_for_config(
                config,
                feats["old"],
                train_side,
                feats["new"],
                seed=config.seed + 100 * k,
                device="cpu",
                progress=staged(progress, f"ensemble member {k} ({name})"),
            )[0]
            for k in range(1, spec.ensemble_size)
        ]
        scores["ensemble"] = backfill_order.ensemble_scores(members, stored, gallery_side)
    if "knn" in spec.orders:
        scores["knn"] = backfill_order.knn_scores(feats["old"], stored, spec.knn_k)
    if "mahalanobis" in spec.orders:
        scores["mahalanobis"] = backfill_order.mahalanobis_scores(feats["old"], feats["labels"], stored)
    return scores, head
