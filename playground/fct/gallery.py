"""The gallery store and the two backfill routes.

A gallery is a folder of safetensors shards (``shard-00000.safetensors`` ...) plus a
``manifest.json``. Each shard holds ``ids`` and one tensor per field: for an FCT gallery
``old`` (the old embedding) and ``side`` (the side-information), stored as float16 by
default. When a new model arrives the gallery is *backfilled* either

- by **transformation**: read each shard's ``old`` and ``side``, apply h, write ``new``; or
- by **re-embedding**: run the new model over every gallery image again.

Both are batch jobs over shards: worker ``rank`` of ``world_size`` takes the shards
``i`` with ``i % world_size == rank``, so several processes (``torchrun``, Ray...) split
a large gallery with no coordination beyond the shard index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from playground.core.checkpoint import (
    TensorSpec,
    check_fields,
    listed,
    load_checkpoint,
    save_checkpoint,
    short,
)
from playground.core.runs import read_json
from playground.errors import DataFormatError, DataNotFoundError

MANIFEST = "manifest.json"
DTYPES = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}
MANIFEST_FIELDS = {
    "count": range(0, 1 << 40),
    "fields": dict,
    "dtype": str,
    "shard_size": range(1, 1 << 40),
    "shards": list[str],
}


@dataclass
class GalleryStore:
    """A sharded gallery on disk; see the module docstring for the layout."""

    path: Path
    count: int
    fields: dict[str, int]
    dtype: str
    shard_size: int
    shards: list[str]

    @classmethod
    def open(cls, path: str | Path) -> GalleryStore:
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise DataNotFoundError(f"{path} is not a gallery store (no {MANIFEST})")
        manifest = check_fields(
            read_json(path / MANIFEST), str(path / MANIFEST), MANIFEST_FIELDS, error=DataFormatError
        )
        fields, shards = manifest["fields"], manifest["shards"]
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in fields.values()):
            raise DataFormatError(
                f"{path / MANIFEST}: every field's width must be a positive int, got {short(fields)}"
            )
        if manifest["dtype"] not in DTYPES or any(Path(name).name != name for name in shards):
            raise DataFormatError(f"{path / MANIFEST} names an unknown dtype or a shard outside its folder")
        args = (manifest[key] for key in ("count", "fields", "dtype", "shard_size", "shards"))
        return cls(path, *args)

    @classmethod
    def plan(
        cls, path: str | Path, count: int, fields: dict[str, int], dtype: str = "fp16", shard_size: int = 4096
    ) -> GalleryStore:
        """Create the folder and manifest for ``count`` images; shards are written later."""
        if dtype not in DTYPES:
            raise ValueError(f"unknown storage dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        shards = [f"shard-{i:05d}.safetensors" for i in range((count + shard_size - 1) // shard_size)]
        manifest = {
            "count": count,
            "fields": fields,
            "dtype": dtype,
            "shard_size": shard_size,
            "shards": shards,
        }
        tmp = path / f".{MANIFEST}.{os.getpid()}"
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(path / MANIFEST)  # atomic: workers planning the same store never see half a file
        return cls(path, count, fields, dtype, shard_size, shards)

    def bytes_per_image(self, field: str) -> int:
        """Stored bytes of one image's ``field``."""
        return self.fields[field] * torch.empty(0, dtype=DTYPES[self.dtype]).element_size()

    def write_shard(self, index: int, ids: torch.Tensor, tensors: dict[str, torch.Tensor]) -> None:
        data = {"ids": ids.to(torch.int64)}
        for name, dim in self.fields.items():
            if tensors[name].shape != (ids.shape[0], dim):
                raise ValueError(
                    f"field {name!r} must be ({ids.shape[0]}, {dim}), got {tuple(tensors[name].shape)}"
                )
            data[name] = tensors[name].to(DTYPES[self.dtype])
        save_checkpoint(self.path / self.shards[index], data, {"shard": index})

    def read_shard(self, index: int) -> dict[str, torch.Tensor]:
        """Shard ``index``: ``ids`` and one ``(rows, width)`` tensor per field of the manifest."""
        specs = {"ids": TensorSpec(("N",), "int")}
        specs |= {name: TensorSpec(("N", width)) for name, width in self.fields.items()}
        return load_checkpoint(self.path / self.shards[index], tensors=specs)[0]

    def read(self, fields: list[str] | None = None) -> dict[str, torch.Tensor]:
        """All shards concatenated in id order: ``ids`` plus ``fields`` as float32."""
        fields = fields or list(self.fields)
        parts = [self.read_shard(i) for i in range(len(self.shards))]
        ids = torch.cat([p["ids"] for p in parts])
        order = ids.argsort()
        out = {name: torch.cat([p[name] for p in parts]).float()[order] for name in fields}
        return {"ids": ids[order], **out}


def my_shards(store: GalleryStore, rank: int = 0, world_size: int = 1) -> list[int]:
    """The shard indices worker ``rank`` of ``world_size`` is responsible for."""
    return [i for i in range(len(store.shards)) if i % world_size == rank]


def write_gallery(
    path: str | Path,
    ids: torch.Tensor,
    tensors: dict[str, torch.Tensor],
    dtype: str = "fp16",
    shard_size: int = 4096,
) -> GalleryStore:
    """Store ``tensors`` (each ``(N, dim)``) for the images ``ids`` as a sharded gallery."""
    store = GalleryStore.plan(
        path, ids.shape[0], {k: v.shape[1] for k, v in tensors.items()}, dtype, shard_size
    )
    for index in range(len(store.shards)):
        rows = slice(index * shard_size, (index + 1) * shard_size)
        store.write_shard(index, ids[rows], {k: v[rows] for k, v in tensors.items()})
    return store


def backfill_by_transformation(
    gallery: GalleryStore,
    transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    out: str | Path,
    new_dim: int,
    rank: int = 0,
    world_size: int = 1,
) -> GalleryStore:
    """Write ``new = transform(old, side)`` for this worker's shards into the store ``out``."""
    if "old" not in gallery.fields or "side" not in gallery.fields:
        raise DataFormatError(
            f"gallery {gallery.path} stores {listed(list(gallery.fields))}, not old and side"
        )
    target = GalleryStore.plan(out, gallery.count, {"new": new_dim}, gallery.dtype, gallery.shard_size)
    for index in my_shards(gallery, rank, world_size):
        shard = gallery.read_shard(index)
        new = transform(shard["old"].float(), shard["side"].float())
        target.write_shard(index, shard["ids"], {"new": new})
    return target


def backfill_by_reembedding(
    images: torch.Tensor,
    ids: torch.Tensor,
    embed: Callable[[torch.Tensor], torch.Tensor],
    out: str | Path,
    new_dim: int,
    dtype: str = "fp16",
    shard_size: int = 4096,
    rank: int = 0,
    world_size: int = 1,
) -> GalleryStore:
    """Write ``new = embed(images)`` shard by shard: the backfill FCT avoids."""
    target = GalleryStore.plan(out, ids.shape[0], {"new": new_dim}, dtype, shard_size)
    for index in my_shards(target, rank, world_size):
        rows = slice(index * shard_size, (index + 1) * shard_size)
        target.write_shard(index, ids[rows], {"new": embed(images[rows])})
    return target
