"""A gallery that knows its models: versions, upgrade by h or re-embedding, partial backfill, add,
rollback, resume, repair."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from playground.errors import ConfigError, DataFormatError, DataNotFoundError
from playground.fct import versions
from playground.fct.backfill_order import VARIANCE_HEAD_FILE, fastfill_scores
from playground.fct.experiment import Config, run
from playground.fct.gallery_backfill import backfill
from playground.fct.model_pack import ModelPack
from playground.fct.side_info import SideInfoSpec
from playground.fct.tasks import load_task
from playground.fct.upgrade import UpgradeSpec
from tests.conftest import REPO
from tests.data.test_image_file import header_png

TINY = dict(
    dataset="digits",
    old_epochs=2,
    new_epochs=2,
    side_info=SideInfoSpec(epochs=1, batch_size=128),
    transform_epochs=5,
    upgrade=UpgradeSpec(orders=["fastfill"], variance_epochs=2, adapters=[], edges=0),  # saves its head
)


@pytest.fixture(scope="module")
def fct_run(tmp_path_factory):
    return run(Config(**TINY, out=str(tmp_path_factory.mktemp("runs")))).run_dir


def write_pngs(folder, images, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images, start):
        Image.fromarray((image[0].numpy() * 255).round().astype(np.uint8)).save(folder / f"img{i:04d}.png")
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    test = load_task("digits").test
    root = tmp_path_factory.mktemp("photos")
    return write_pngs(root / "first", test.images[:50]), write_pngs(root / "more", test.images[50:70], 50)


@pytest.fixture
def gallery(fct_run, photos, tmp_path):
    versions.create(tmp_path / "gallery", fct_run, photos[0], shard_size=16)
    return tmp_path / "gallery"


def test_create_embeds_every_image_with_the_old_model_and_finds_itself(gallery, photos, fct_run):
    (row,) = versions.status(gallery)
    assert row["name"] == "v1" and row["active"] and row["status"] == "ready"
    assert row["images"] == row["embedded"] == 50 and row["transformed"] == 0 and row["broken_shards"] == []
    first = sorted(photos[0].iterdir())[7]
    path, distance = versions.search(gallery, first, k=3)[0]
    assert path == str(first.resolve()) and distance < 0.05


def test_upgrade_by_transformation_writes_h_of_the_stored_vectors(gallery, fct_run):
    version = versions.upgrade(gallery, fct_run, "transform")
    assert version["name"] == "v2" and version["parent"] == "v1"
    store, pack = versions.Gallery.open(gallery), ModelPack.load(fct_run)
    source = torch.cat([store.read_shard(store.version("v1"), i)["side"].float() for i in range(4)])
    old = store.vectors(store.version("v1"))
    expected = pack.transformation(old, source).detach()
    assert torch.allclose(store.vectors(store.version("v2")), expected, atol=0.05, rtol=0.01)
    rows = {r["name"]: r for r in versions.status(gallery)}
    assert rows["v2"]["active"] and rows["v2"]["transformed"] == 50 and not rows["v1"]["active"]
    assert len(versions.search(gallery, store.images[0], k=4)) == 4  # the new model's query, v2 only
    with pytest.raises(ConfigError, match="already in the new model's space"):
        versions.upgrade(gallery, fct_run, "embed")


def test_rollback_goes_back_one_version_and_refuses_past_the_first(gallery, fct_run):
    versions.upgrade(gallery, fct_run, "embed")
    assert versions.rollback(gallery)["name"] == "v1"
    with pytest.raises(ConfigError, match="v1 is the first version"):
        versions.rollback(gallery)


def test_add_appends_new_images_to_every_version_through_its_own_model(gallery, fct_run, photos):
    versions.upgrade(gallery, fct_run, "transform")
    assert versions.add(gallery, photos[1]) == 20 and versions.add(gallery, photos[1]) == 0
    rows = {r["name"]: r for r in versions.status(gallery)}
    assert rows["v1"]["images"] == rows["v1"]["embedded"] == 70
    # shards 0-2 (48 images) stay transformed; the partial shard 3 and the new ones are embedded
    assert rows["v2"]["transformed"] == 48 and rows["v2"]["embedded"] == 22
    new_photo = sorted(photos[1].iterdir())[3]
    assert versions.search(gallery, new_photo, k=1)[0][0] == str(new_photo.resolve())


def test_a_killed_build_resumes_and_a_corrupt_shard_is_repaired(gallery, fct_run):
    versions.upgrade(gallery, fct_run, "transform")
    store = versions.Gallery.open(gallery)
    v2 = store.version("v2")
    store.shard_path(v2, 1).unlink()  # killed before shard 1 was written
    v2["status"], store.manifest["active"] = "building", "v1"
    store.save()
    assert [r["broken_shards"] for r in versions.status(gallery)] == [[], [1]]
    with pytest.raises(ConfigError, match="half built"):
        versions.upgrade(gallery, fct_run, "embed")
    versions.upgrade(gallery, fct_run, "transform")  # the same command again: resumes
    assert versions.status(gallery)[1]["broken_shards"] == [] and versions.status(gallery)[1]["active"]
    store.shard_path(v2, 2).write_bytes(b"not a shard")
    with pytest.raises(
        DataFormatError, match="version v2: .*shard-00002.safetensors is corrupt.*gallery repair"
    ):
        versions.search(gallery, store.images[0])
    assert versions.repair(gallery) == {"v1": 0, "v2": 1}
    assert len(versions.search(gallery, store.images[0])) == 5


def test_bad_galleries_are_refused_clearly(gallery, fct_run, tmp_path):
    store = versions.Gallery.open(gallery)
    v1 = store.version("v1")
    shard, _ = versions.load_checkpoint(store.shard_path(v1, 0))
    versions.save_checkpoint(store.shard_path(v1, 0), {**shard, "vec": torch.zeros(16, 64)})
    wrong_width = (
        r"version v1: .*shard-00000.safetensors: tensor 'vec' is float32 \(16, 64\), expected float \(16, 128"
    )
    with pytest.raises(DataFormatError, match=wrong_width):
        versions.search(gallery, store.images[0])
    manifest = json.loads((gallery / "gallery.json").read_text())
    (gallery / "gallery.json").write_text(json.dumps({**manifest, "format": "playground.gallery/9"}))
    with pytest.raises(DataFormatError, match="gallery/9"):
        versions.Gallery.open(gallery)
    with pytest.raises(DataNotFoundError, match="not a gallery"):
        versions.status(tmp_path)
    with pytest.raises(DataNotFoundError, match="save_models"):
        versions.create(tmp_path / "g2", tmp_path, tmp_path)


def test_the_command_line_prints_status_and_refuses_with_exit_code_2(gallery):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "playground.cli", "gallery", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
        )

    status = cli("status", str(gallery))
    assert status.returncode == 0 and "* v1" in status.stdout and "ready" in status.stdout
    refused = cli("backfill", str(gallery), "--fraction", "0.5")
    assert refused.returncode == 2 and "v1 is not transformed by h" in refused.stderr
    refused = cli("rollback", str(gallery))
    assert refused.returncode == 2 and "first version" in refused.stderr and "Traceback" not in refused.stderr


def test_weights_other_than_a_versions_own_are_refused(gallery, fct_run):
    manifest = json.loads((gallery / "gallery.json").read_text())
    manifest["versions"][0]["digests"]["old"] = "0123456789abcdef"  # as if v1 came from another old model
    (gallery / "gallery.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="trained for another old model.*--route embed"):
        versions.upgrade(gallery, fct_run, "transform")
    with pytest.raises(ConfigError, match="v1 was made with other weights"):
        versions.repair(gallery)


def test_files_that_do_not_decode_are_left_out_and_listed(fct_run, photos, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for file in sorted(photos[0].iterdir())[:5]:
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "bomb.png").write_bytes(header_png(30000, 30000))  # a decompression bomb is left out too
    skipped = []
    made = versions.create(tmp_path / "g", fct_run, folder, shard_size=4, skipped=skipped)
    assert len(made.images) == 5 and skipped == [str(folder / "bomb.png"), str(folder / "broken.png")]
    (folder / "also_broken.jpg").write_bytes(b"")
    with pytest.raises(DataFormatError, match="none of the 3 image files could be decoded"):
        versions.add(tmp_path / "g", folder)  # the only files it lacks are all broken
    assert versions.status(tmp_path / "g")[0]["images"] == 5


def test_backfill_reembeds_the_images_h_is_least_sure_of_first(gallery, fct_run):
    versions.upgrade(gallery, fct_run, "transform")
    assert backfill(gallery, 0.3) == {"version": "v2", "embedded": 15, "transformed": 35}
    store, pack = versions.Gallery.open(gallery), ModelPack.load(fct_run)
    v1, v2 = store.version("v1"), store.version("v2")
    side = torch.cat([store.read_shard(v1, i)["side"].float() for i in range(4)])
    expected = fastfill_scores(pack.variance_head, store.vectors(v1), side).topk(15).indices
    how = torch.cat([store.read_shard(v2, i)["how"] for i in range(4)])
    assert set(torch.nonzero(how == 0).squeeze(1).tolist()) == set(expected.tolist())
    embedded = pack.embed("new", store.images_of(expected.sort().values, pack.input_shape))
    assert torch.allclose(store.vectors(v2)[expected.sort().values], embedded, atol=0.02, rtol=0.01)
    assert backfill(gallery, 0.3)["embedded"] == 15  # again: nothing to do (a killed step resumes)
    assert backfill(gallery, 0.5, "random")["embedded"] == 25
    row = versions.status(gallery)[1]
    assert (row["embedded"], row["transformed"], row["active"]) == (25, 25, True)
    first = store.images[int(expected[0])]
    path, distance = versions.search(gallery, first, k=1)[0]
    assert path == first and distance < 0.05  # re-embedded: the query and its vector coincide


def test_backfill_is_refused_where_it_cannot_run(gallery, fct_run, photos, tmp_path):
    with pytest.raises(ConfigError, match="v1 is not transformed by h"):
        backfill(gallery, 0.5)
    versions.upgrade(gallery, fct_run, "transform")
    with pytest.raises(ConfigError, match="fraction must lie in"):
        backfill(gallery, 1.5)
    with pytest.raises(ConfigError, match="unknown backfill order 'knn'"):
        backfill(gallery, 0.5, "knn")
    bare = shutil.copytree(fct_run, tmp_path / "bare", ignore=shutil.ignore_patterns(VARIANCE_HEAD_FILE))
    versions.create(tmp_path / "g2", bare, photos[0], shard_size=16)
    versions.upgrade(tmp_path / "g2", bare, "transform")
    with pytest.raises(ConfigError, match="saved no FastFill variance head.*--order random"):
        backfill(tmp_path / "g2", 0.5)
    assert backfill(tmp_path / "g2", 1.0, "random")["transformed"] == 0


def test_each_version_has_a_faiss_index_rebuilt_when_its_shards_change(gallery, fct_run, photos, tmp_path):
    v1 = gallery / "v1"
    assert json.loads((v1 / "index.json").read_text())["vectors"] == 50
    (v1 / "index-flat.faiss").write_bytes(b"\x00" * 64)  # tampered: never handed to FAISS's reader
    first = sorted(photos[0].iterdir())[3]
    assert versions.search(gallery, first, k=1)[0][0] == str(first.resolve())
    assert (v1 / "index-flat.faiss").read_bytes() != b"\x00" * 64  # rebuilt from the shards
    versions.add(gallery, photos[1])  # new shards: the index follows
    assert json.loads((v1 / "index.json").read_text())["vectors"] == 70
    hnsw = versions.create(tmp_path / "hnsw", fct_run, photos[0], shard_size=16, index="hnsw")
    assert (hnsw.path / "v1" / "index-hnsw.faiss").is_file()
    assert versions.search(hnsw.path, first, k=1)[0][0] == str(first.resolve())
    with pytest.raises(ConfigError, match="unknown index kind 'ivf'"):
        versions.create(tmp_path / "ivf", fct_run, photos[0], index="ivf")


def test_search_takes_an_uploads_bytes_and_refuses_garbage(gallery, photos):
    first = sorted(photos[0].iterdir())[5]
    path, distance = versions.search(gallery, first.read_bytes(), k=1)[0]
    assert path == str(first.resolve()) and distance < 0.05
    refused = "the uploaded query cannot be read as an image: "
    with pytest.raises(DataFormatError, match=refused + "cannot be decoded"):
        versions.search(gallery, b"\x89PNG but not an image")
    with pytest.raises(DataFormatError, match=refused + "too many pixels"):
        versions.search(gallery, header_png(30000, 30000))


def test_a_bad_pixel_cap_is_one_error_not_every_file_skipped(monkeypatch, tmp_path):
    from playground.data.image_file import PIXELS_ENV
    from tests.data.test_image_file import png_bytes

    (tmp_path / "a.png").write_bytes(png_bytes())
    assert versions.readable_images([tmp_path / "a.png"], (3, 8, 8), []) == [str(tmp_path / "a.png")]
    monkeypatch.setenv(PIXELS_ENV, "lots")
    skipped = []
    with pytest.raises(ConfigError, match=f"{PIXELS_ENV} must be a positive whole number"):
        versions.readable_images([tmp_path / "a.png"], (3, 8, 8), skipped)
    assert skipped == []
