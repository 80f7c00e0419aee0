"""Scoring a project's pool for a round, resumably: per image the mean probability, the confidence,
the uncertainty that orders the queue (the project's ``acquisition``: the entropy ``H[p̄]``, the
margin, or BALD ``H[p̄] - (1/S) Σ_s H[p_s]``; :mod:`playground.active.acquisition`) and a KNN OOD
score, written to ``routes`` chunk by chunk so a killed round keeps what it scored; the threshold and
OOD cut calibrated on the held-out
images people labelled; and the round's heartbeat. :mod:`playground.label.rounds` drives them."""

from __future__ import annotations

import time

import torch
from sqlalchemy import insert, select, update

from playground.active.acquisition import acquisition
from playground.active.escalation import Threshold, calibrate_threshold, ood_threshold
from playground.label.project import Project, people_labels, pool_images
from playground.label.versions import embeddings, predict
from playground.store import Store
from playground.store_schema import rounds, routes
from playground.uncertainty.features import KNNScore


def score_pool(
    store: Store, project: Project, models, knn, round_id: int, sample_ids: list[int], seed: int, progress
) -> dict:
    """Probabilities, confidence, uncertainty and a KNN OOD score for ``sample_ids``; chunks scored
    before a crash are read back from ``routes`` (probabilities are recomputed only where needed)."""
    settings = project.settings
    done = scored_routes(store, round_id)
    todo = [sid for sid in sample_ids if sid not in done]
    for ids, images in pool_images(store, todo):
        probs = predict(models, images, settings.mc_samples, seed)
        mean = probs.mean(0)
        uncertainty = uncertainty_of(probs, settings.acquisition)
        ood = knn.score(embeddings(models, images)) if knn else torch.zeros(len(ids))
        rows = [
            {
                "round_id": round_id,
                "sample_id": sid,
                "route": "scored",
                "predicted": int(mean[i].argmax()),
                "confidence": float(mean[i].max()),
                "uncertainty": float(uncertainty[i]),
                "ood_score": float(ood[i]),
            }
            for i, sid in enumerate(ids)
        ]
        store.write(lambda conn, rows=rows: conn.execute(insert(routes), rows))
        done.update({row["sample_id"]: row for row in rows})
        beat(store, round_id, progress, len(done), len(sample_ids))
    column = lambda key: torch.tensor([float(done[sid][key]) for sid in sample_ids])  # noqa: E731
    return {
        key: column(name) for key, name in (("confidence",) * 2, ("uncertainty",) * 2, ("ood", "ood_score"))
    }


def mean_probs(store: Store, project: Project, models, sample_ids: list[int], seed: int) -> torch.Tensor:
    """``p̄`` for the images being queued (the annotator sees the model's top classes)."""
    parts = [
        predict(models, images, project.settings.mc_samples, seed).mean(0)
        for _, images in pool_images(store, sample_ids)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, len(project.class_names))


def uncertainty_of(probs: torch.Tensor, name: str) -> torch.Tensor:
    """The acquisition score ``name`` of probability samples ``(S, N, C)``; BALD from one pass (no
    disagreement to measure) falls back to the entropy."""
    if name == "bald" and probs.shape[0] < 2:
        name = "entropy"
    return acquisition(name)(probs).clamp_min(0.0)


def scored_routes(store: Store, round_id: int) -> dict[int, dict]:
    def work(conn):
        query = select(routes).where(routes.c.round_id == round_id)
        return {row.sample_id: row._asdict() for row in conn.execute(query)}

    return store.read(work)


def fit_knn(store: Store, project: Project, models) -> KNNScore | None:
    people = people_labels(store, project)
    train_ids, _ = people.split(held_out=False)
    if len(train_ids) < 10:
        return None
    bank = torch.cat([embeddings(models, images) for _, images in pool_images(store, train_ids)])
    return KNNScore.fit(bank, k=min(10, len(train_ids)))


def calibrate(store: Store, project: Project, models, knn, people, seed: int) -> tuple[Threshold, float]:
    """The auto-label threshold and the OOD cut from the held-out images people labelled."""
    settings = project.settings
    ids, labels = people.split(held_out=True)
    never = Threshold(float("inf"), settings.alpha, settings.delta, 0.0, 0.0, 1.0)
    if len(ids) < settings.min_calibration:
        return never, float("inf")
    confidence, predicted, knn_scores = [], [], []
    for _, images in pool_images(store, ids):
        mean = predict(models, images, settings.mc_samples, seed).mean(0)
        confidence.append(mean.max(1).values)
        predicted.append(mean.argmax(1))
        if knn:
            knn_scores.append(knn.score(embeddings(models, images)))
    correct = torch.cat(predicted) == labels
    threshold = calibrate_threshold(torch.cat(confidence), correct, settings.alpha, settings.delta)
    cut = ood_threshold(torch.cat(knn_scores)) if knn_scores else float("inf")
    return threshold, cut


def beat(store: Store, round_id: int, progress, done: int, total: int) -> None:
    store.write(
        lambda conn: conn.execute(
            update(rounds).where(rounds.c.id == round_id).values(heartbeat_at=time.time())
        )
    )
    if progress is not None:
        progress(done, total)


def record_routes(store: Store, round_id: int, sample_ids: list[int], name: str) -> None:
    done = scored_routes(store, round_id)  # a resumed round keeps what it recorded
    rows = [
        {
            "round_id": round_id,
            "sample_id": sid,
            "route": name,
            "predicted": -1,
            "confidence": 0.0,
            "uncertainty": 0.0,
            "ood_score": 0.0,
        }
        for sid in sample_ids
        if sid not in done
    ]
    if rows:
        store.write(lambda conn: conn.execute(insert(routes), rows))


def set_routes(store: Store, round_id: int, sample_ids: list[int], name: str, chunk: int = 500) -> None:
    for start in range(0, len(sample_ids), chunk):
        ids = sample_ids[start : start + chunk]
        store.write(
            lambda conn, ids=ids: conn.execute(
                update(routes)
                .where(routes.c.round_id == round_id, routes.c.sample_id.in_(ids))
                .values(route=name)
            )
        )
