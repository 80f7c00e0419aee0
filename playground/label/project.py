"""A labelling project: a pool of the user's own images in the annotation store, its settings, and the
labels people gave (with consensus when several people label one item).

``playground label init NAME --images DIR --classes a,b,c`` reads the folder file by file
(:mod:`playground.label.pool`), keeping per image its relative path, content hash, original size and a
model-sized copy as a sample of the project's queue (the queue has the project's name). Nothing is
escalated yet: rounds (:mod:`.rounds`) score the pool and queue what people should label; retraining
(:mod:`.retrain`) learns from their labels.

A fixed share of the pool (``held_out``, chosen by content hash, so the same image is always on the
same side) is never trained on: once people label those images they calibrate the auto-label
threshold and measure each model version.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import and_, func, insert, select
from sqlalchemy.engine import Connection, make_url

from playground.core.runs import playground_home
from playground.errors import ConfigError, DataFormatError, StoreError
from playground.label.consensus import Annotations, dawid_skene, majority_vote
from playground.label.pool import PoolImage, Skipped, read_labelled, scan_images
from playground.label.settings import (  # noqa: F401 (re-exported: callers import them from here)
    ACQUISITION_NAMES,
    CONSENSUS,
    FIXED_SETTINGS,
    METHODS,
    ProjectSettings,
)
from playground.store import Store
from playground.store_schema import (
    annotators,
    clean_name,
    decisions,
    escalations,
    image_record,
    projects,
    queues,
    samples,
)

BATCH = 256  # pool samples written per transaction


@dataclass
class Project:
    id: int
    name: str
    queue_id: int
    images_dir: str
    class_names: list[str]
    settings: ProjectSettings
    models_root: Path

    @property
    def folder(self) -> Path:
        """Where the project's model versions live: beside a SQLite database, else under the home."""
        return self.models_root / self.name


def models_root(store: Store) -> Path:
    url = make_url(store.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent / "label"
    return playground_home() / "label"


@dataclass
class InitReport:
    project: Project
    added: int
    labelled: int
    skipped: list[Skipped]


@dataclass
class PeopleLabels:
    """The labels people gave: one per sample id, with whether it is held out, and the agreement."""

    sample_ids: list[int]
    labels: list[int]
    held_out: list[bool]
    undecided: list[int]  # samples whose labels disagree and await a reviewer
    annotations: Annotations | None

    def split(self, held_out: bool) -> tuple[list[int], torch.Tensor]:
        chosen = [i for i, h in enumerate(self.held_out) if h == held_out]
        return [self.sample_ids[i] for i in chosen], torch.tensor([self.labels[i] for i in chosen])


def is_held_out(sha256: str, share: float) -> bool:
    """The same image always falls on the same side: the first 8 hex digits of its hash, as a fraction."""
    return int(sha256[:8], 16) / 16**8 < share


# --------------------------------------------------------------------- creating


def init_project(
    store: Store,
    name: str,
    images: str | Path,
    classes: list[str],
    settings: ProjectSettings | None = None,
    labelled: str | Path | None = None,
    progress=None,
    model: str | Path | None = None,
    changes: dict | None = None,
) -> InitReport:
    """Create the project (or add new images to an existing one with the same classes); ``model`` is a
    model to start from (:func:`playground.label.versions.import_version`). On an existing project,
    ``changes`` (the settings given as ``--set``) are applied (:func:`change_settings`)."""
    settings = settings or ProjectSettings()
    images = Path(images).expanduser().resolve()
    if not images.is_dir():
        raise DataFormatError(f"the images folder {images} does not exist")
    if model is not None:  # a model that does not fit fails before anything is read
        from playground.label.versions import fitted_models

        fitted_models(model, settings, len(classes))
    project = _create(store, clean_name(name, "project name", 128), str(images), classes, settings)
    if changes:
        project = change_settings(store, project, changes)
    settings = project.settings
    known = _known_hashes(store, project)
    skipped: list[Skipped] = []
    labelled_count = 0
    if labelled is not None:
        records = read_labelled(
            labelled, project.class_names, settings.image_size, settings.channels, known=known
        )
        labelled_count = _add_records(store, project, records, skipped, "labelled")
    records = scan_images(images, settings.image_size, settings.channels, progress=progress, known=known)
    added = _add_records(store, project, records, skipped, "pool")
    if model is not None:
        from playground.label.versions import import_version

        import_version(store, project, model)
    return InitReport(project, added, labelled_count, skipped)


def _create(store: Store, name: str, images: str, classes: list[str], settings: ProjectSettings) -> Project:
    try:
        found = open_project(store, name)
    except StoreError:
        found = None
    if found is not None:
        if found.class_names != [c.strip() for c in classes]:
            raise DataFormatError(
                f"project {name!r} exists with the classes {found.class_names}, not {classes}"
            )
        return found
    store.create_queue(name, classes, settings.redundancy)

    def work(conn: Connection):
        queue_id = conn.execute(select(queues.c.id).where(queues.c.name == name)).scalar()
        conn.execute(
            insert(projects).values(
                name=name,
                queue_id=queue_id,
                images_dir=images,
                settings=json.dumps(dataclasses.asdict(settings)),
                created_at=time.time(),
            )
        )

    store.write(work)
    return open_project(store, name)


def change_settings(store: Store, project: Project, changes: dict) -> Project:
    """``project`` with ``changes`` to its settings stored; the settings its stored images were read
    with cannot change (a clear error: make a new project), and a new ``redundancy`` applies to items
    queued from now on."""
    current = dataclasses.asdict(project.settings)
    fixed = [key for key in FIXED_SETTINGS if key in changes and changes[key] != current[key]]
    if fixed:
        shown = ", ".join(f"{key}={current[key]!r}" for key in fixed)
        raise ConfigError(
            f"project {project.name!r} read its images with {shown}; these cannot change (make a new project)"
        )
    merged = ProjectSettings.from_dict({**current, **changes})
    if merged.redundancy != project.settings.redundancy:
        store.set_redundancy(project.name, merged.redundancy)
    settings = json.dumps(dataclasses.asdict(merged))
    store.write(
        lambda conn: conn.execute(
            projects.update().where(projects.c.id == project.id).values(settings=settings)
        )
    )
    return open_project(store, project.name)


def _known_hashes(store: Store, project: Project) -> dict[str, str]:
    def work(conn):
        rows = conn.execute(select(samples.c.meta).where(samples.c.queue_id == project.queue_id))
        return [json.loads(row.meta) for row in rows]

    return {meta["sha256"]: meta["path"] for meta in store.read(work) if "sha256" in meta}


def _external_ids(store: Store, project: Project) -> set[str]:
    query = select(samples.c.external_id).where(samples.c.queue_id == project.queue_id)
    return store.read(lambda conn: set(conn.execute(query).scalars()))


def _add_records(store: Store, project: Project, records, skipped: list, source: str) -> int:
    added, batch, present = 0, [], _external_ids(store, project)
    for record in records:
        if isinstance(record, Skipped):
            external_id = record.path if source == "pool" else f"labelled/{record.path}"
            if not (record.reason.startswith("duplicate of") and external_id in present):
                skipped.append(record)  # a file already in the project (init again) is not news
            continue
        batch.append(_sample_row(project, record, source))
        if len(batch) >= BATCH:
            added += store.write(_insert_samples, project.queue_id, batch)
            batch = []
    if batch:
        added += store.write(_insert_samples, project.queue_id, batch)
    return added


def _sample_row(project: Project, record: PoolImage, source: str) -> dict:
    meta = {
        "path": record.path,
        "sha256": record.sha256,
        "width": record.width,
        "height": record.height,
        "source": source,
        "held_out": is_held_out(record.sha256, project.settings.held_out),
    }
    if hasattr(record, "label"):
        meta["label"] = int(record.label)
    external_id = record.path if source == "pool" else f"labelled/{record.path}"
    return {"external_id": external_id, "meta": json.dumps(meta), **image_record(record.image)}


def _insert_samples(conn: Connection, queue_id: int, rows: list[dict]) -> int:
    ids = [row["external_id"] for row in rows]
    existing = set(
        conn.execute(
            select(samples.c.external_id).where(
                samples.c.queue_id == queue_id, samples.c.external_id.in_(ids)
            )
        ).scalars()
    )
    new = [
        dict(row, queue_id=queue_id, created_at=time.time())
        for row in rows
        if row["external_id"] not in existing
    ]
    if new:
        conn.execute(insert(samples), new)
    return len(new)


# --------------------------------------------------------------------- reading


def open_project(store: Store, name: str) -> Project:
    def work(conn):
        return conn.execute(
            select(projects, queues.c.class_names)
            .join(queues, queues.c.id == projects.c.queue_id)
            .where(projects.c.name == name)
        ).first()

    row = store.read(work)
    if row is None:
        known = ", ".join(project_names(store)) or "none yet"
        raise StoreError(f"no labelling project named {name!r} (projects: {known[:200]})")
    return Project(
        id=row.id,
        name=row.name,
        queue_id=row.queue_id,
        images_dir=row.images_dir,
        class_names=json.loads(row.class_names),
        settings=ProjectSettings.from_dict(json.loads(row.settings)),
        models_root=models_root(store),
    )


def project_names(store: Store) -> list[str]:
    return store.read(
        lambda conn: list(conn.execute(select(projects.c.name).order_by(projects.c.name)).scalars())
    )


def pool_size(store: Store, project: Project) -> int:
    return store.read(
        lambda conn: conn.execute(
            select(func.count()).select_from(samples).where(samples.c.queue_id == project.queue_id)
        ).scalar()
    )


def pool_meta(store: Store, project: Project) -> dict[int, dict]:
    """``sample id -> meta`` (path, sha256, size, source, held_out, label for a labelled folder)."""

    def work(conn):
        rows = conn.execute(
            select(samples.c.id, samples.c.meta).where(samples.c.queue_id == project.queue_id)
        )
        return {row.id: json.loads(row.meta) for row in rows}

    return store.read(work)


def pool_images(store: Store, sample_ids: list[int], chunk: int = 512):
    """Yield ``(ids, images)`` with images as float ``(B, C, H, W)`` in [0, 1], ``chunk`` at a time."""
    for start in range(0, len(sample_ids), chunk):
        ids = sample_ids[start : start + chunk]

        def work(conn, ids=ids):
            query = select(samples.c.id, samples.c.image, samples.c.dtype, samples.c.shape).where(
                samples.c.id.in_(ids)
            )
            return {row.id: row for row in conn.execute(query)}

        rows = store.read(work)
        arrays = [_as_array(rows[i]) for i in ids]
        yield ids, torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)


def _as_array(row) -> np.ndarray:
    array = np.frombuffer(row.image, dtype=row.dtype).reshape(json.loads(row.shape))
    return array[:, :, None] if array.ndim == 2 else array


def decision_rows(store: Store, project: Project) -> list:
    """Every standing decision in the project's queue: sample id, annotator, action, label, reason."""

    def work(conn):
        query = (
            select(
                escalations.c.sample_id,
                escalations.c.reason,
                annotators.c.name.label("annotator"),
                decisions.c.action,
                decisions.c.label,
                decisions.c.created_at,
            )
            .join(escalations, escalations.c.id == decisions.c.escalation_id)
            .join(annotators, annotators.c.id == decisions.c.annotator_id)
            .where(
                and_(
                    escalations.c.queue_id == project.queue_id,
                    decisions.c.undone_at.is_(None),
                    decisions.c.action != "skip",
                )
            )
            .order_by(decisions.c.id)
        )
        return list(conn.execute(query))

    return store.read(work)


def _awaiting_review(store: Store, project: Project) -> set[int]:
    """Samples whose split vote went to a reviewer who has not decided yet."""

    def work(conn):
        query = select(escalations.c.sample_id).where(
            escalations.c.queue_id == project.queue_id,
            escalations.c.reason == "review",
            escalations.c.status != "done",
        )
        return set(conn.execute(query).scalars())

    return store.read(work)


def people_labels(store: Store, project: Project) -> PeopleLabels:
    """One label per sample from what people said: a reviewer's decision settles a sample; otherwise
    the project's consensus (Dawid-Skene or majority vote) over the annotators' labels; labels from a
    labelled folder count as given. Samples people called OOD are left out."""
    meta = pool_meta(store, project)
    rows = decision_rows(store, project)
    reviewed = {row.sample_id: row.label for row in rows if row.reason == "review" and row.action != "ood"}
    votes = [
        (row.sample_id, row.annotator, row.label)
        for row in rows
        if row.reason != "review" and row.action != "ood" and row.sample_id not in reviewed
    ]
    ood = {row.sample_id for row in rows if row.action == "ood" and row.reason == "review"}
    awaiting = _awaiting_review(store, project)  # a split vote waits for its reviewer, whatever the consensus
    chosen: dict[int, int] = {sid: m["label"] for sid, m in meta.items() if "label" in m}
    undecided: list[int] = []
    annotations = None
    if votes:
        annotations = Annotations.from_rows(votes, project.class_names)
        method = dawid_skene if project.settings.consensus == "dawid_skene" else majority_vote
        agreed = method(annotations) if annotations.num_annotators > 1 else majority_vote(annotations)
        for index, label in enumerate(agreed.labels.tolist()):
            key = annotations.item_key(index)
            if label >= 0 and key not in awaiting:
                chosen[key] = int(label)
            else:
                undecided.append(key)
    chosen.update({sid: label for sid, label in reviewed.items() if label is not None})
    ids = sorted(sid for sid in chosen if sid not in ood)
    return PeopleLabels(
        sample_ids=ids,
        labels=[chosen[i] for i in ids],
        held_out=[bool(meta[i].get("held_out")) and meta[i].get("source") != "labelled" for i in ids],
        undecided=undecided,
        annotations=annotations,
    )
