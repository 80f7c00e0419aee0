import json

import pytest
import torch

from playground.errors import DataFormatError, DataNotFoundError
from playground.fct.gallery import (
    GalleryStore,
    backfill_by_reembedding,
    backfill_by_transformation,
    write_gallery,
)


def test_round_trip_in_shards_with_fp16_storage(tmp_path):
    ids = torch.arange(10)
    old, side = torch.randn(10, 6), torch.randn(10, 3)
    store = write_gallery(tmp_path / "g", ids, {"old": old, "side": side}, dtype="fp16", shard_size=4)
    assert len(store.shards) == 3 and store.bytes_per_image("side") == 6
    back = GalleryStore.open(tmp_path / "g").read()
    assert torch.equal(back["ids"], ids)
    assert torch.allclose(back["old"], old, atol=2e-3)


def test_workers_split_shards_and_together_cover_the_gallery(tmp_path):
    ids = torch.arange(9)
    store = write_gallery(
        tmp_path / "g", ids, {"old": torch.randn(9, 2), "side": torch.randn(9, 2)}, shard_size=2
    )
    for rank in range(2):  # two workers, as under torchrun
        backfill_by_transformation(
            store, lambda o, s: o + s, tmp_path / "out", new_dim=2, rank=rank, world_size=2
        )
    done = GalleryStore.open(tmp_path / "out").read()
    stored = store.read()
    assert torch.allclose(done["new"], stored["old"] + stored["side"], atol=1e-2)


def test_reembedding_writes_the_same_layout(tmp_path):
    images = torch.rand(5, 1, 4, 4)
    store = backfill_by_reembedding(
        images,
        torch.arange(5),
        lambda x: x.flatten(1)[:, :3],
        tmp_path / "r",
        new_dim=3,
        dtype="fp32",
        shard_size=2,
    )
    assert torch.allclose(store.read()["new"], images.flatten(1)[:, :3])


def test_bad_stores_are_clear_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="not a gallery"):
        GalleryStore.open(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"count": 1}))
    with pytest.raises(DataFormatError, match="manifest"):
        GalleryStore.open(tmp_path)
    store = GalleryStore.plan(tmp_path / "x", 2, {"old": 3})
    with pytest.raises(ValueError, match="field 'old'"):
        store.write_shard(0, torch.arange(2), {"old": torch.zeros(2, 4)})
