"""A round: score a project's pool with its newest model, auto-label what a calibrated threshold
certifies, flag likely OOD images, and queue for people what they should label next.

- **No model yet** (round 1): people label a diverse seed set, chosen by k-center greedy over cheap
  thumbnail features (:func:`playground.label.pool.diverse_seed`), plus random held-out picks.
- **With a model**: every unlabelled image gets ``p̄ = (1/S) Σ_s p_s`` (MC dropout or ensemble), the
  confidence ``max_c p̄_c``, an uncertainty (the project's ``acquisition``: entropy by default, margin
  or BALD) and a KNN distance to the labelled images' embeddings (OOD score). The threshold ``λ``
  is calibrated on the held-out images people labelled so that the error among auto-labelled images is
  ``≤ α`` with probability
  ``1 - δ`` (:func:`playground.active.escalation.calibrate_threshold`); with fewer than
  ``min_calibration`` of them nothing is auto-labelled. Routes: OOD above the held-out 95th
  percentile (flagged, not auto-labelled), auto-labelled at or above ``λ``, up to the budget queued
  (``reason="uncertain"``): the most uncertain (``selection="top"``) or, by default, a sample with
  probability ∝ uncertainty (``"power"``, Kirsch et al. 2023: top-k batches pile up look-alikes),
  the rest deferred.
- **Calibration picks**: a share ``held_out`` of each round's budget goes to held-out images drawn
  uniformly at random (``reason="calibration"``): the calibration set must be exchangeable with the
  pool for the guarantee to hold, which uncertainty-ordered picks are not.

A round records each scored image in ``routes`` as it goes and beats a heartbeat; a round whose
process died is resumed by the next ``label round`` (scored chunks are kept), and a second round
started while one is alive is refused. A round asked to score with a model version that is no
longer the newest is refused too.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass

import torch
from sqlalchemy import func, insert, select, update

from playground.active.acquisition import power_priority
from playground.active.escalation import (
    AUTO,
    DEFER,
    ESCALATE,
    OOD,
    ROUTE_NAMES,
    Threshold,
)
from playground.active.escalation import route as route_samples
from playground.core.status import process_alive
from playground.errors import ConflictError, DataFormatError
from playground.label.pool import diverse_seed, thumbnail_features
from playground.label.project import Project, open_project, people_labels, pool_images, pool_meta
from playground.label.scoring import (
    beat,
    calibrate,
    fit_knn,
    mean_probs,
    record_routes,
    score_pool,
    set_routes,
)
from playground.label.versions import Version, latest, load_models
from playground.store import QueueItem, Store
from playground.store_schema import escalations, rounds

STALE_AFTER = 120.0  # seconds without a heartbeat before a round counts as dead
ORDERS = ("uncertainty", "random")


@dataclass
class RoundReport:
    number: int
    model_version: int
    counts: dict
    threshold: dict
    resumed: bool
    seconds: float

    def describe(self) -> str:
        parts = ", ".join(f"{key} {value}" for key, value in self.counts.items())
        return (
            f"round {self.number} (model v{self.model_version}{', resumed' if self.resumed else ''}): {parts}"
        )


def run_round(
    store: Store,
    name: str,
    version: int | None = None,
    order: str = "uncertainty",
    seed: int = 0,
    progress=None,
) -> RoundReport:
    """Run (or resume) the project's next round; see the module docstring."""
    if order not in ORDERS:
        raise DataFormatError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}")
    project = open_project(store, name)
    newest = latest(store, project)
    number_now = newest.number if newest else 0
    if version is not None and version != number_now:
        newest_text = f"the newest is v{number_now}" if newest else "there is no model version yet"
        raise ConflictError(
            f"model version {version} of {name!r} is stale: {newest_text}; "
            f"start the round with --version {number_now} (or without --version)"
        )
    if newest is None:
        _check_seed_set_done(store, project)
    started = time.time()
    round_id, number, resumed = store.write(_claim, project, number_now)
    try:
        if newest is None:
            counts, threshold = _seed_round(store, project, round_id, seed, progress)
        else:
            counts, threshold = _scored_round(store, project, newest, round_id, order, seed, progress)
    except Exception as err:
        store.write(_finish, round_id, "failed", {"error": f"{type(err).__name__}: {err}"})
        raise
    detail = {"counts": counts, "threshold": threshold, "order": order}
    store.write(_finish, round_id, "complete", detail)
    return RoundReport(number, number_now, counts, threshold, resumed, time.time() - started)


def round_history(store: Store, project: Project) -> list[dict]:
    """Every round, oldest first: number, model version, status, counts, threshold, times."""

    def work(conn):
        query = select(rounds).where(rounds.c.project_id == project.id).order_by(rounds.c.number)
        return list(conn.execute(query))

    return [
        {
            "number": r.number,
            "model_version": r.model_version,
            "status": _status(r),
            **json.loads(r.detail),
            "started_at": r.started_at,
            "ended_at": r.ended_at,
        }
        for r in store.read(work)
    ]


# --------------------------------------------------------------------- claiming and finishing


def _check_seed_set_done(store: Store, project: Project) -> None:
    """Without a model a new round could only pick another seed set: refuse while one is open."""
    by_reason = store.progress(project.name)["by_reason"] if project.name in store.queues() else {}
    waiting = store.progress(project.name)["open"] if by_reason else 0
    if waiting:
        raise ConflictError(
            f"{project.name!r} has no model yet and {waiting} seed items still wait for people; label them "
            f"on the Annotate page, then `playground label retrain {project.name}`"
        )


def _alive(row) -> bool:
    if time.time() - row.heartbeat_at > STALE_AFTER:
        return False
    return row.host != socket.gethostname() or (row.pid is not None and process_alive(row.pid))


def _status(row) -> str:
    return "interrupted" if row.status == "running" and not _alive(row) else row.status


def _claim(conn, project: Project, model_version: int) -> tuple[int, int, bool]:
    """The round to work on: the dead one to resume (same model version), or a new one."""
    now, me = time.time(), {"pid": os.getpid(), "host": socket.gethostname()}
    running = conn.execute(
        select(rounds).where(rounds.c.project_id == project.id, rounds.c.status == "running")
    ).all()
    for row in running:
        if _alive(row):
            raise ConflictError(
                f"round {row.number} of {project.name!r} is already running (pid {row.pid} on {row.host}); "
                "wait for it to finish"
            )
        if row.model_version == model_version:
            conn.execute(update(rounds).where(rounds.c.id == row.id).values(heartbeat_at=now, **me))
            return row.id, row.number, True
        detail = {"error": f"interrupted, and its model v{row.model_version} is stale"}
        conn.execute(
            update(rounds).where(rounds.c.id == row.id).values(status="failed", detail=json.dumps(detail))
        )
    last = conn.execute(select(func.max(rounds.c.number)).where(rounds.c.project_id == project.id)).scalar()
    new = conn.execute(
        insert(rounds).values(
            project_id=project.id,
            number=(last or 0) + 1,
            model_version=model_version,
            status="running",
            detail="{}",
            started_at=now,
            heartbeat_at=now,
            **me,
        )
    )
    return new.inserted_primary_key[0], (last or 0) + 1, False


def _finish(conn, round_id: int, status: str, detail: dict) -> None:
    conn.execute(
        update(rounds)
        .where(rounds.c.id == round_id)
        .values(status=status, detail=json.dumps(detail), ended_at=time.time(), heartbeat_at=time.time())
    )


# --------------------------------------------------------------------- what is left to route


def _candidates(store: Store, project: Project, labelled: set[int]) -> list[int]:
    """Pool samples nobody labelled and that are not queued already."""

    def work(conn):
        return set(
            conn.execute(
                select(escalations.c.sample_id).where(escalations.c.queue_id == project.queue_id)
            ).scalars()
        )

    queued = store.read(work)
    return sorted(sid for sid in pool_meta(store, project) if sid not in labelled and sid not in queued)


def _calibration_picks(project: Project, candidates: list[int], meta: dict, generator) -> list[int]:
    held = [sid for sid in candidates if meta[sid].get("held_out")]
    count = min(len(held), round(project.settings.budget * project.settings.held_out))
    order = torch.randperm(len(held), generator=generator)[:count]
    return [held[i] for i in order.tolist()]


def _enqueue(
    store: Store, project: Project, sample_ids: list[int], probs, uncertainty, reason: str, model: str
):
    meta = pool_meta(store, project) if sample_ids else {}
    items = [
        QueueItem(
            external_id=_external_id(meta[sid]),
            image=None,
            probs=probs[i].tolist(),
            uncertainty=float(uncertainty[i]),
            reason=reason,
            class_names=project.class_names,
        )
        for i, sid in enumerate(sample_ids)
    ]
    return store.enqueue(project.name, items, model=model) if items else 0


def _external_id(meta: dict) -> str:
    return meta["path"] if meta.get("source") == "pool" else f"labelled/{meta['path']}"


# --------------------------------------------------------------------- the two kinds of round


def _seed_round(store: Store, project: Project, round_id: int, seed: int, progress) -> tuple[dict, dict]:
    meta = pool_meta(store, project)
    labelled = set(people_labels(store, project).sample_ids)
    candidates = _candidates(store, project, labelled)
    generator = torch.Generator().manual_seed(seed)
    calibration = _calibration_picks(project, candidates, meta, generator)
    rest = [sid for sid in candidates if not meta[sid].get("held_out")]
    features = []
    for done, (_, images) in enumerate(pool_images(store, rest)):
        features.append(thumbnail_features((images.permute(0, 2, 3, 1) * 255).round().byte().numpy()))
        beat(store, round_id, progress, done * 512 + images.shape[0], len(rest))
    chosen = []
    if rest:
        picks = diverse_seed(torch.cat(features), min(project.settings.seed_size, len(rest)), seed)
        chosen = [rest[i] for i in picks.tolist()]
    uniform = torch.full((len(project.class_names),), 1.0 / len(project.class_names))
    ranks = torch.linspace(1.0, 0.5, max(len(chosen), 1))  # the k-center order: most diverse first
    _enqueue(store, project, chosen, uniform.expand(len(chosen), -1), ranks, "seed", "seed set")
    _enqueue(
        store,
        project,
        calibration,
        uniform.expand(len(calibration), -1),
        torch.zeros(len(calibration)),
        "calibration",
        "random",
    )
    record_routes(store, round_id, chosen, "seed")
    record_routes(store, round_id, calibration, "calibration")
    counts = {
        "pool": len(meta),
        "labelled": len(labelled),
        "seed": len(chosen),
        "calibration": len(calibration),
    }
    return counts, {"note": "no model yet: a diverse seed set, nothing auto-labelled"}


def _scored_round(
    store: Store, project: Project, version: Version, round_id: int, order: str, seed: int, progress
) -> tuple[dict, dict]:
    settings = project.settings
    meta = pool_meta(store, project)
    people = people_labels(store, project)
    models = load_models(project, version)
    candidates = _candidates(store, project, set(people.sample_ids))
    knn = fit_knn(store, project, models)  # the OOD score's reference: labelled training images
    scores = score_pool(store, project, models, knn, round_id, candidates, seed, progress)
    threshold, cut = calibrate(store, project, models, knn, people, seed)
    generator = torch.Generator().manual_seed(seed + 1000 * round_id)
    calibration = _calibration_picks(project, candidates, meta, generator)
    picked = set(calibration)
    others = [i for i, sid in enumerate(candidates) if sid not in picked]
    confidence, uncertainty, ood = (scores[key][others] for key in ("confidence", "uncertainty", "ood"))
    priority = uncertainty  # route_samples queues the top of this
    if order == "random":
        priority = uncertainty = torch.rand(len(others), generator=generator)
    elif settings.selection == "power":  # its top k is a sample of k with probability ∝ uncertainty
        priority = power_priority(uncertainty, generator)
    budget = max(settings.budget - len(calibration), 0)
    held = torch.tensor([bool(meta[candidates[i]].get("held_out")) for i in others], dtype=torch.bool)
    routed = route_samples(confidence, priority.masked_fill(held, -math.inf), ood, threshold, cut, budget)
    routed[(routed == ESCALATE) & held] = DEFER  # held-out images reach people only as calibration picks
    by_route = {
        name: [candidates[others[i]] for i in (routed == code).nonzero().squeeze(1).tolist()]
        for code, name in enumerate(ROUTE_NAMES)
    }
    for name, ids in by_route.items():
        set_routes(store, round_id, ids, name)
    set_routes(store, round_id, calibration, "calibration")
    escalate = (routed == ESCALATE).nonzero().squeeze(1)
    escalate = escalate[uncertainty[escalate].argsort(descending=True)]
    escalated_ids = [candidates[others[i]] for i in escalate.tolist()]
    model = f"{project.name}/v{version.number}"
    escalated_probs = mean_probs(store, project, models, escalated_ids, seed)
    _enqueue(store, project, escalated_ids, escalated_probs, uncertainty[escalate], "uncertain", model)
    calibration_probs = mean_probs(store, project, models, calibration, seed)
    _enqueue(
        store, project, calibration, calibration_probs, torch.zeros(len(calibration)), "calibration", model
    )
    counts = {"pool": len(meta), "labelled": len(people.sample_ids)}
    counts.update({name: len(by_route[name]) for name in ROUTE_NAMES})
    counts["calibration"] = len(calibration)
    counts["auto"] = int((routed == AUTO).sum())
    counts["ood"] = int((routed == OOD).sum())
    return counts, _threshold_detail(threshold, cut)


def _threshold_detail(threshold: Threshold, cut: float) -> dict:
    return {
        "confidence": threshold.confidence,
        "alpha": threshold.alpha,
        "delta": threshold.delta,
        "calibration_coverage": threshold.calibration_coverage,
        "calibration_error": threshold.calibration_error,
        "upper_bound": threshold.upper_bound,
        "ood_cut": cut,
    }
