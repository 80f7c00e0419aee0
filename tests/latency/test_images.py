"""A team's image folders: preprocessing numbers, hostile files skipped with reasons, class checks."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from playground.errors import ConfigError, DataFormatError, DataNotFoundError
from playground.latency.images import check_eval_classes, load_images, preprocess_image
from playground.latency.sources import Preprocess

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PLAIN = Preprocess(resize=16, crop=16, mean=MEAN, std=STD, interpolation="bilinear")
SHAPE = (3, 16, 16)


def normalised(rgb, mean=MEAN, std=STD) -> torch.Tensor:
    return torch.tensor([(v / 255 - m) / s for v, m, s in zip(rgb, mean, std)])


def solid(path, size=(24, 20), colour=(255, 0, 128), mode="RGB"):
    Image.new(mode, size, colour).save(path)
    return path


def huge_header_png(path, width: int, height: int) -> None:
    """A valid 4x4 PNG whose IHDR claims ``width x height`` (nothing that size is ever allocated)."""
    solid(path, (4, 4))
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts after signature(8)+length(4)+type(4)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.fixture
def hostile(tmp_path):
    folder = tmp_path / "calibration"
    (folder / "sub").mkdir(parents=True)
    solid(folder / "a.png")
    solid(folder / "sub" / "b.jpg", colour=(10, 200, 30))
    solid(folder / "grey.png", colour=100, mode="L")
    (folder / "empty.png").write_bytes(b"")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    (folder / "notes.txt").write_text("not an image")
    full = (solid(tmp_path / "t.png", (64, 64))).read_bytes()
    (folder / "truncated.png").write_bytes(full[: len(full) // 2])
    huge_header_png(folder / "huge.png", 5000, 5000)  # 25 M pixels: over max_pixels below
    huge_header_png(folder / "bomb.png", 100_000, 100_000)  # over PIL's own decompression-bomb limit
    solid(folder / ".hidden.png")
    return folder


def test_hostile_files_are_skipped_with_reasons_and_good_ones_kept(hostile):
    batch = load_images(hostile, PLAIN, SHAPE, labelled=False, max_images=50, max_pixels=1_000_000)
    assert batch.paths == ["a.png", "grey.png", "sub/b.jpg"]
    assert batch.images.shape == (3, 3, 16, 16) and batch.images.dtype == torch.float32
    assert batch.labels is None and batch.class_names is None and batch.unread == 0
    reasons = dict(batch.skipped)
    assert set(reasons) == {"empty.png", "corrupt.jpg", "notes.txt", "truncated.png", "huge.png", "bomb.png"}
    assert reasons["empty.png"] == "empty file"
    assert reasons["notes.txt"] == "not an image"
    assert reasons["corrupt.jpg"].startswith("cannot be decoded")
    assert reasons["truncated.png"].startswith("cannot be decoded")
    assert reasons["huge.png"] == "5000x5000 pixels, more than max_pixels=1000000"
    assert reasons["bomb.png"].startswith("too many pixels")
    assert batch.summary().startswith("3 images from ") and "6 skipped" in batch.summary()


def test_pixel_values_are_normalised_with_the_model_mean_and_std(hostile):
    batch = load_images(hostile, PLAIN, SHAPE, labelled=False, max_images=50, max_pixels=1_000_000)
    red = batch.images[0].mean(dim=(1, 2))
    torch.testing.assert_close(red, normalised((255, 0, 128)), atol=1e-5, rtol=0)
    grey = batch.images[1]
    torch.testing.assert_close(grey.mean(dim=(1, 2)), normalised((100, 100, 100)), atol=1e-5, rtol=0)
    assert float(grey.std(dim=(1, 2)).max()) < 1e-5  # a solid image stays solid
    torch.testing.assert_close(batch.images[2].mean(dim=(1, 2)), normalised((10, 200, 30)), atol=0.05, rtol=0)


def test_files_over_max_bytes_are_skipped(hostile):
    batch = load_images(hostile, PLAIN, SHAPE, labelled=False, max_images=50, max_bytes=100, max_pixels=10**6)
    assert all(
        reason.endswith("more than max_bytes=100") for path, reason in batch.skipped if path.endswith("jpg")
    )
    assert len(batch.paths) < 3


def test_resize_shorter_side_then_centre_crop_cuts_the_sides(tmp_path):
    # 128x32: the left quarter red, the rest blue; resize 16 -> 64x16, centre crop 16 keeps columns 24..40
    image = np.zeros((32, 128, 3), np.uint8)
    image[:, :32] = (255, 0, 0)
    image[:, 32:] = (0, 0, 255)
    out = preprocess_image(Image.fromarray(image), PLAIN, SHAPE)
    assert out.shape == SHAPE
    torch.testing.assert_close(out.mean(dim=(1, 2)), normalised((0, 0, 255)), atol=1e-5, rtol=0)


def test_crop_is_resized_to_a_different_input_size():
    preprocess = Preprocess(resize=40, crop=32, mean=(0.5,), std=(0.5,), interpolation="nearest")
    out = preprocess_image(Image.new("RGB", (50, 40), (255, 255, 255)), preprocess, (1, 24, 20))
    assert out.shape == (1, 24, 20)
    torch.testing.assert_close(out, torch.ones(1, 24, 20))  # white: (1 - 0.5) / 0.5


def test_exif_orientation_is_applied(tmp_path):
    # stored 40x20 with the left half red, right half blue; orientation 6 displays it rotated 90
    # degrees clockwise: 20x40 with red on top. The crop then has red rows above blue rows.
    raw = np.zeros((20, 40, 3), np.uint8)
    raw[:, :20] = (255, 0, 0)
    raw[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(raw).save(tmp_path / "rotated.png", exif=exif)
    preprocess = Preprocess(resize=8, crop=8, mean=(0, 0, 0), std=(1, 1, 1), interpolation="nearest")
    out = load_images(tmp_path, preprocess, (3, 8, 8), labelled=False, max_images=1).images[0]
    torch.testing.assert_close(out[:, 0, :], torch.tensor([1.0, 0, 0])[:, None].expand(3, 8))
    torch.testing.assert_close(out[:, -1, :], torch.tensor([0, 0, 1.0])[:, None].expand(3, 8))


def test_modes_are_converted_to_the_model_channel_count(tmp_path):
    solid(tmp_path / "a_rgba.png", colour=(0, 0, 0, 0), mode="RGBA")  # fully transparent: white
    Image.new("RGB", (20, 20), (0, 255, 0)).convert("P").save(tmp_path / "b_palette.png")
    Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(tmp_path / "c_sixteen.png")
    identity = Preprocess(resize=8, crop=8, mean=(0, 0, 0), std=(1, 1, 1), interpolation="bilinear")
    rgb = load_images(tmp_path, identity, (3, 8, 8), labelled=False, max_images=5)
    assert rgb.paths == ["a_rgba.png", "b_palette.png", "c_sixteen.png"] and not rgb.skipped
    torch.testing.assert_close(rgb.images.mean(dim=(2, 3)), torch.tensor([[1.0, 1, 1], [0, 1, 0], [1, 1, 1]]))
    grey = load_images(
        tmp_path, Preprocess(8, 8, (0,), (1,), "bilinear"), (1, 8, 8), labelled=False, max_images=5
    )
    assert grey.images.shape == (3, 1, 8, 8)
    assert float(grey.images[1].mean()) == pytest.approx(0.587 * 255 // 1 / 255, abs=0.01)  # ITU-R 601 green
    rgba = load_images(
        tmp_path, Preprocess(8, 8, (0,) * 4, (1,) * 4, "bilinear"), (4, 8, 8), labelled=False, max_images=5
    )
    torch.testing.assert_close(
        rgba.images[0].mean(dim=(1, 2)), torch.zeros(4)
    )  # alpha kept: transparent black
    torch.testing.assert_close(rgba.images[1].mean(dim=(1, 2)), torch.tensor([0, 1.0, 0, 1]))


@pytest.fixture
def labelled(tmp_path):
    folder = tmp_path / "eval"
    for name, colour in (("cat", (200, 0, 0)), ("dog", (0, 200, 0))):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            solid(folder / name / f"{i}.png", colour=colour)
    (folder / "dog" / "readme.txt").write_text("x")
    solid(folder / "stray.png")
    return folder


def test_labelled_folder_gives_labels_and_class_names(labelled):
    batch = load_images(labelled, PLAIN, SHAPE, labelled=True, max_images=50)
    assert batch.class_names == ["cat", "dog"]
    assert batch.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.paths[0] == "cat/0.png" and batch.paths[-1] == "dog/2.png"
    assert dict(batch.skipped) == {"stray.png": "not in a class folder", "dog/readme.txt": "not an image"}
    red_channel = batch.images[:, 0].mean(dim=(1, 2))
    assert (red_channel[:3] > 1).all() and (red_channel[3:] < 0).all()  # labels follow the images
    check_eval_classes(batch, 2)


def test_max_images_reads_a_seeded_sample(labelled):
    first = load_images(labelled, PLAIN, SHAPE, labelled=True, max_images=4)
    again = load_images(labelled, PLAIN, SHAPE, labelled=True, max_images=4)
    assert len(first.images) == 4 and first.paths == again.paths
    assert {p.split("/")[0] for p in first.paths} == {"cat", "dog"}  # not the first four in sorted order
    # 7 .png files: each read, skipped (stray.png) or counted as not read
    assert first.unread + len(first.images) + sum(p.endswith(".png") for p, _ in first.skipped) == 7
    assert first.labels.tolist() == [0 if p.startswith("cat") else 1 for p in first.paths]
    assert "more not read (max_images)" in first.summary()


def test_class_count_mismatch_is_one_clear_error(labelled):
    batch = load_images(labelled, PLAIN, SHAPE, labelled=True, max_images=50)
    with pytest.raises(DataFormatError, match=r"has 2 classes \(cat, dog\) but timm:x has 1000 outputs"):
        check_eval_classes(batch, 1000, "timm:x")
    unlabelled = load_images(labelled / "cat", PLAIN, SHAPE, labelled=False, max_images=50)
    with pytest.raises(ConfigError, match="have no labels"):
        check_eval_classes(unlabelled, 2)


def test_empty_missing_and_unreadable_folders_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="is empty"):
        load_images(tmp_path / "empty", PLAIN, SHAPE, labelled=False, max_images=10)
    with pytest.raises(DataFormatError, match="no class sub-folders"):
        load_images(tmp_path / "empty", PLAIN, SHAPE, labelled=True, max_images=10)
    with pytest.raises(DataNotFoundError):
        load_images(tmp_path / "absent", PLAIN, SHAPE, labelled=False, max_images=10)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.png").write_bytes(b"garbage")
    (tmp_path / "junk" / "y.txt").write_text("text")
    with pytest.raises(
        DataFormatError, match=r"no readable image .* \(2 files skipped: x.png: cannot be decoded"
    ):
        load_images(tmp_path / "junk", PLAIN, SHAPE, labelled=False, max_images=10)
    with pytest.raises(ConfigError, match="max_images must be a positive"):
        load_images(tmp_path / "junk", PLAIN, SHAPE, labelled=False, max_images=0)
