"""The models an FCT run saved, loaded back for use on a user's images.

A run made with ``save_models`` (the default) holds ``old_model``, ``side_model``, ``new_model`` and
``transformation`` as safetensors with the run's config in their metadata (and FastFill's
``variance_head`` when its study ran that order). :meth:`ModelPack.load`
rebuilds each architecture from that config and the weights' own shapes, so a gallery
(:mod:`playground.fct.versions`) can embed images with the old model and side-info, transform them
with h, or re-embed them with the new model, long after the run ended.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from playground.core.checkpoint import build_loaded, load_checkpoint, reason, short
from playground.errors import CheckpointError, DataNotFoundError
from playground.fct.backfill_order import VARIANCE_HEAD_FILE, VarianceHead, load_variance_head
from playground.fct.transformation import Transformation, load_transformation
from playground.models import build_model

ROLES = ("old", "side", "new")


def file_digest(path: Path, digits: int = 16) -> str:
    """The first ``digits`` hex digits of the file's SHA-256 (16: which weights made a vector)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:digits]


def _input_shape(config: dict, state: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    channels = next(int(t.shape[1]) for t in state.values() if t.ndim == 4)
    size = {"fashion_mnist": 28, "digits": 8}.get(config.get("dataset"), int(config.get("image_size", 32)))
    if not (0 < channels <= 64 and 0 < size <= 4096):
        raise ValueError(f"images of {channels} channels, {size} pixels a side are out of range")
    return channels, size, size


def _build(role: str, config: dict, state: dict[str, torch.Tensor]) -> nn.Module:
    """The architecture the run trained for ``role``, from its config and the weights' shapes."""
    classes = next((int(t.shape[0]) for k, t in state.items() if k.endswith("classifier.linear.weight")), 0)
    channels = _input_shape(config, state)[0]
    if role == "side":
        spec = config["side_info"]
        options = dict(width=spec["width"], pool_size=spec["pool_size"], dropout=0.0)
        return build_model(
            spec["model"], in_channels=channels, num_classes=0, embedding_dim=spec["dim"], **options
        )
    prefix = "old" if role == "old" else "new"
    width = config["old_width"] if role == "old" else config["new_width"]
    pool = config["old_pool_size"] if role == "old" else config["pool_size"]
    return build_model(
        config[f"{prefix}_model"],
        in_channels=channels,
        num_classes=classes,
        embedding_dim=config["embedding_dim"],
        width=width,
        pool_size=pool,
        dropout=config["dropout"],
    )


@dataclass
class ModelPack:
    """Old, side-info and new models, the transformation, the input shape and each file's digest."""

    run: Path
    models: dict[str, nn.Module]
    transformation: Transformation
    input_shape: tuple[int, int, int]
    digests: dict[str, str]
    variance_head: VarianceHead | None = None  # FastFill's, when the run trained one

    @classmethod
    def load(cls, run: str | Path) -> ModelPack:
        run = Path(run).expanduser().resolve()
        files = {role: run / f"{role}_model.safetensors" for role in ROLES}
        files["transformation"] = run / "transformation.safetensors"
        missing = [f.name for f in files.values() if not f.is_file()]
        if missing:
            raise DataNotFoundError(
                f"{run} lacks {', '.join(missing)}: give an FCT run folder made with save_models = true"
            )
        models, shape = {}, None
        for role in ROLES:
            state, meta = load_checkpoint(files[role], metadata={"experiment": str, "config": dict})
            config = meta["config"]
            if meta["experiment"] != "fct":
                found = short(meta["experiment"])
                raise CheckpointError(
                    f"{files[role]} was not saved by an FCT run (its metadata says {found})"
                )
            try:
                model = build_loaded(files[role], state, lambda: _build(role, config, state))  # noqa: B023
            except CheckpointError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, StopIteration) as err:
                raise CheckpointError(
                    f"{files[role]} does not fit the run's {role} model: {reason(err)}"
                ) from None
            models[role] = model.eval()
            shape = shape or _input_shape(config, state)
        h = load_transformation(files["transformation"])
        head_file = run / VARIANCE_HEAD_FILE
        head = load_variance_head(head_file, h) if head_file.is_file() else None
        if head is not None:
            files["variance_head"] = head_file
        digests = {role: file_digest(path) for role, path in files.items()}
        return cls(run, models, h, shape, digests, head)

    @torch.no_grad()
    def embed(self, role: str, images: torch.Tensor) -> torch.Tensor:
        """``role``'s embedding of ``images`` (N, C, H, W), float32."""
        output = self.models[role](images)
        return getattr(output, "embedding", output).float()
