"""A project's model versions: the networks trained from people's labels, saved as safetensors under
``<PLAYGROUND_HOME>/label/<project>/v<k>/`` and recorded in the ``model_versions`` table, and how a
version scores images (MC dropout over one network, or a deep ensemble's members).

The network is the active-learning technique's :class:`~playground.active.learner.ActiveCNN` at the
project's image size: ``p(y|x) ≈ (1/S) Σ_s softmax(f_s(x))`` with ``f_s`` a dropout mask
(Gal & Ghahramani 2016) or an ensemble member (Lakshminarayanan et al. 2017).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from sqlalchemy import insert, select

from playground.active.learner import ActiveCNN, build_learner, embed, mc_probs
from playground.core.checkpoint import build_loaded, load_checkpoint, save_checkpoint
from playground.errors import CheckpointError
from playground.label.project import Project
from playground.store import Store
from playground.store_schema import model_versions


@dataclass
class Version:
    number: int
    path: str
    detail: dict
    created_at: float


def versions(store: Store, project: Project) -> list[Version]:
    """Every model version of the project, oldest first."""

    def work(conn):
        query = select(model_versions).where(model_versions.c.project_id == project.id)
        return list(conn.execute(query.order_by(model_versions.c.version)))

    return [Version(r.version, r.path, json.loads(r.detail), r.created_at) for r in store.read(work)]


def latest(store: Store, project: Project) -> Version | None:
    found = versions(store, project)
    return found[-1] if found else None


def build_models(project: Project) -> list[ActiveCNN]:
    settings = project.settings
    count = settings.members if settings.method == "ensemble" else 1
    shape = (settings.channels, settings.image_size, settings.image_size)
    return [build_learner(settings.train, shape, len(project.class_names)) for _ in range(count)]


def load_models(project: Project, version: Version) -> list[ActiveCNN]:
    """The version's networks; a missing or mismatched file is a clear :class:`CheckpointError`."""
    settings, classes = project.settings, len(project.class_names)
    count = settings.members if settings.method == "ensemble" else 1
    files = [Path(version.path) / f"member{index}.safetensors" for index in range(count)]
    return [_fitted(path, settings, classes, f"project {project.name!r}").eval() for path in files]


def _fitted(path: Path, settings, num_classes: int, what: str) -> ActiveCNN:
    """The project's network (``settings``, ``num_classes``) with the weights of ``path``."""
    shape = (settings.channels, settings.image_size, settings.image_size)
    state, _ = load_checkpoint(path)
    return build_loaded(
        path,
        state,
        lambda: build_learner(settings.train, shape, num_classes),
        f"{what} (classes, image_size, channels and train.width must match)",
    )


def save_version(store: Store, project: Project, models: list[ActiveCNN], detail: dict) -> Version:
    """Write the weights, then record the version (numbered after the newest) in one transaction."""
    number = (latest(store, project).number if latest(store, project) else 0) + 1
    folder = project.folder / f"v{number}"
    for index, model in enumerate(models):
        save_checkpoint(
            folder / f"member{index}.safetensors", model, {"project": project.name, "version": number}
        )
    (folder / "detail.json").write_text(json.dumps(detail, indent=2))
    now = time.time()

    def work(conn):
        conn.execute(
            insert(model_versions).values(
                project_id=project.id,
                version=number,
                path=str(folder),
                detail=json.dumps(detail),
                created_at=now,
            )
        )

    store.write(work)
    return Version(number, str(folder), detail, now)


def fitted_models(source: str | Path, settings, num_classes: int) -> list[ActiveCNN]:
    """The project's networks with weights from ``source``: a version folder of another project
    (``.../label/<project>/v<k>``) or one ``.safetensors`` file; a file that does not fit the project's
    network (classes, image size, channels, width) is a :class:`CheckpointError` naming the first
    tensor that differs."""
    source = Path(source).expanduser()
    files = sorted(source.glob("member*.safetensors")) if source.is_dir() else [source]
    if not files or not all(f.is_file() for f in files):
        raise CheckpointError(f"{source} is neither a model version folder nor a .safetensors file")
    count = settings.members if settings.method == "ensemble" else 1
    return [
        _fitted(files[index % len(files)], settings, num_classes, "this project") for index in range(count)
    ]


def import_version(store: Store, project: Project, source: str | Path) -> Version:
    """Bring a model in as the project's first version (see :func:`fitted_models`)."""
    if latest(store, project) is not None:
        raise CheckpointError(f"project {project.name!r} already has model versions; retrain it instead")
    models = fitted_models(source, project.settings, len(project.class_names))
    detail = {"policy": "imported", "source": str(source), "labels": 0, "accuracy": None, "parent": None}
    return save_version(store, project, models, detail)


def predict(models: list[ActiveCNN], images: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """``(S, N, C)`` probabilities: S dropout masks of one network, or one pass per ensemble member."""
    if len(models) == 1:
        return mc_probs(models[0], images, samples, seed)
    return torch.cat([mc_probs(model, images, 1, seed) for model in models])


def embeddings(models: list[ActiveCNN], images: torch.Tensor) -> torch.Tensor:
    """The first network's embedding (dropout off), for the KNN OOD score."""
    return embed(models[0], images)
