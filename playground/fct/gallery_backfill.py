"""Partial backfill of a gallery: re-embed first the images whose transformed vector h is least sure of.

After ``playground gallery upgrade --route transform`` every vector of the new version is
``h(old, side)``. :func:`backfill` then re-embeds images with the new model until a ``fraction`` of
the version's vectors are embedded, most uncertain first (FastFill, Jaeckle et al., ICLR 2023: the
learned variance ``log s^2(old, side)`` of h, :mod:`~playground.fct.backfill_order`), or in random
order. Both kinds of vector live in the new model's space, so a search over a part-transformed,
part-re-embedded version never compares two spaces, and gets better as the fraction grows (the
backfilling curve of the FCT report).

The fraction counts what is already embedded, so the same command after a kill resumes, and a
larger fraction later carries on from there. Each touched shard is rewritten whole.
"""

from __future__ import annotations

from pathlib import Path

import torch

from playground.core.progress import Progress, report
from playground.errors import ConfigError, DataFormatError
from playground.fct.backfill_order import fastfill_scores, order_by, random_order
from playground.fct.model_pack import ModelPack
from playground.fct.versions import HOW, Gallery, check_pack, now, write_shard

BACKFILL_ORDERS = ("fastfill", "random")


def _stored_inputs(gallery: Gallery, parent: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The parent version's old vectors and side-info, in id order: h's inputs."""
    shards = [gallery.read_shard(parent, i) for i in range(gallery.shard_count())]
    if not all("side" in s for s in shards):
        raise DataFormatError(
            f"{parent['name']} stores no side-info, so FastFill cannot score it; use --order random"
        )
    return torch.cat([s["vec"].float() for s in shards]), torch.cat([s["side"].float() for s in shards])


def ranking(gallery: Gallery, version: dict, pack: ModelPack, order: str, rows: torch.Tensor, seed: int):
    """Positions into ``rows``, the one to re-embed first first."""
    if order == "random":
        return random_order(len(rows), seed)
    if pack.variance_head is None:
        raise ConfigError(
            f"run {pack.run.name} saved no FastFill variance head (its upgrade study left out the "
            "fastfill order); use --order random, or rerun the FCT recipe with fastfill in upgrade.orders"
        )
    old, side = _stored_inputs(gallery, gallery.version(version["parent"]))
    return order_by(fastfill_scores(pack.variance_head, old[rows], side[rows]))


def backfill(
    path: str | Path, fraction: float, order: str = "fastfill", seed: int = 0, progress: Progress = None
) -> dict:
    """Re-embed transformed vectors of the active version, in ``order``, until ``fraction`` of its
    vectors are embedded; returns the counts after the step."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(
            f"fraction must lie in [0, 1] (the share of the gallery re-embedded), got {fraction}"
        )
    if order not in BACKFILL_ORDERS:
        raise ConfigError(f"unknown backfill order {order!r}; choose {' or '.join(BACKFILL_ORDERS)}")
    gallery = Gallery.open(path)
    version = gallery.active
    if version["status"] != "ready" or version["route"] != "transform":
        raise ConfigError(
            f"{version['name']} is {'half built' if version['status'] != 'ready' else 'not transformed by h'}"
            "; partial backfill follows a finished `playground gallery upgrade --route transform`"
        )
    pack = ModelPack.load(version["run"])
    check_pack(pack, version)
    shards = range(gallery.shard_count())
    how = torch.cat([gallery.read_shard(version, i)["how"] for i in shards])
    pending = torch.nonzero(how == HOW["transformed"]).squeeze(1)
    wanted = round(fraction * len(how)) - (len(how) - len(pending))
    if wanted > 0:
        chosen = pending[ranking(gallery, version, pack, order, pending, seed)[:wanted]]
        _reembed(gallery, version, pack, chosen.sort().values, progress)
        version.setdefault("backfills", []).append(
            {"order": order, "fraction": fraction, "reembedded": len(chosen), "at": now()}
        )
        gallery.save()
        gallery.index(version)
    embedded = len(how) - len(pending) + max(wanted, 0)
    return {"version": version["name"], "embedded": embedded, "transformed": len(how) - embedded}


def _reembed(gallery: Gallery, version: dict, pack: ModelPack, ids: torch.Tensor, progress: Progress) -> None:
    """Replace the vectors of ``ids`` (sorted) by the new model's embeddings, shard by shard."""
    size = gallery.shard_size()
    touched = ids.div(size, rounding_mode="floor").unique().tolist()
    for step, index in enumerate(touched, 1):
        shard = gallery.read_shard(version, index)
        mine = ids[ids.div(size, rounding_mode="floor") == index]
        local = mine - index * size
        shard["vec"] = shard["vec"].float()
        shard["vec"][local] = pack.embed("new", gallery.images_of(mine, pack.input_shape))
        shard["how"][local] = HOW["embedded"]
        write_shard(gallery, version, index, shard)
        report(progress, f"backfill {version['name']}", step, len(touched))
