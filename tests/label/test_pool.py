"""Tests for the labelling pool: scanning a folder, reading a labelled one, the diverse seed set."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from playground.errors import DataFormatError, DataNotFoundError
from playground.label.pool import (
    LabelledImage,
    PoolImage,
    Skipped,
    diverse_seed,
    read_labelled,
    scan_images,
    thumbnail_features,
)


def _solid(path: Path, colour, size=(16, 16), mode="RGB", **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, **save)
    return path


def _noise_png(path: Path, seed: int, size: int = 32) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR claims ``width x height`` RGB pixels, with no pixel data at all."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def _scan(folder: Path, **options) -> dict[str, PoolImage | Skipped]:
    return {item.path: item for item in scan_images(folder, **options)}


def test_every_skip_reason_is_listed_and_good_images_are_kept(tmp_path):
    _noise_png(tmp_path / "a_good.png", seed=0)
    _noise_png(tmp_path / "sub" / "b_copy.png", seed=0)  # same bytes as a_good.png
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a jpeg at all")
    (tmp_path / "notes.txt").write_text("hello")
    data = _noise_png(tmp_path / "whole.png", seed=1).read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    _noise_png(tmp_path / "big.png", seed=2, size=64)
    big_bytes = (tmp_path / "big.png").stat().st_size

    items = _scan(tmp_path, image_size=16, max_bytes=big_bytes - 1)
    reasons = {path: item.reason for path, item in items.items() if isinstance(item, Skipped)}
    assert set(reasons) == {
        "sub/b_copy.png",
        "empty.png",
        "text.jpg",
        "notes.txt",
        "truncated.png",
        "bomb.png",
        "big.png",
    }
    assert reasons["sub/b_copy.png"] == "duplicate of a_good.png"
    assert reasons["empty.png"] == "empty file"
    assert reasons["notes.txt"] == "not an image"
    assert reasons["text.jpg"] == "cannot be decoded: not a format PIL recognises"
    assert (
        reasons["truncated.png"].startswith("cannot be decoded")
        and "truncat" in reasons["truncated.png"].lower()
    )
    assert "pixels" in reasons["bomb.png"]
    assert reasons["big.png"] == f"{big_bytes} bytes, more than max_bytes={big_bytes - 1}"
    assert sorted(p for p, item in items.items() if isinstance(item, PoolImage)) == [
        "a_good.png",
        "whole.png",
    ]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_max_pixels_is_checked_in_the_header_and_the_bomb_warning_is_local(tmp_path):
    _noise_png(tmp_path / "small.png", seed=0, size=32)
    _png_header_only(
        tmp_path / "warn.png", 10_000, 10_000
    )  # 1e8 pixels: PIL warns (between 1x and 2x its limit)
    filters_before = list(warnings.filters)
    items = _scan(tmp_path, image_size=8, max_pixels=32 * 32 - 1)
    assert items["small.png"].reason == f"32x32 pixels, more than max_pixels={32 * 32 - 1}"
    items = _scan(tmp_path, image_size=8, max_pixels=10**9)
    assert isinstance(items["small.png"], PoolImage)
    assert items["warn.png"].reason.startswith("too many pixels")
    assert warnings.filters == filters_before


def test_copies_have_the_model_size_and_dtype_and_keep_the_aspect_ratio(tmp_path):
    _solid(tmp_path / "wide.png", (200, 10, 10), size=(40, 20))
    for channels in (1, 3):
        item = _scan(tmp_path, image_size=12, channels=channels)["wide.png"]
        assert item.image.shape == (12, 12, channels) and item.image.dtype == np.uint8
        assert (item.width, item.height) == (40, 20)
        assert len(item.sha256) == 64
        # 40x20 -> 12x6, padded with 3 black rows above and below
        assert item.image[:3].max() == 0 and item.image[-3:].max() == 0
        expected = [200, 10, 10] if channels == 3 else [round(0.299 * 200 + 0.587 * 10 + 0.114 * 10)]
        np.testing.assert_allclose(item.image[6, 6], expected, atol=1)


def test_order_is_sorted_deterministic_and_skips_hidden_files(tmp_path):
    for i, rel in enumerate(
        ["b.png", "a/z.png", "a/b/c.png", "c.png", ".hidden.png", ".git/x.png", "a/.cache/y.png"]
    ):
        _noise_png(tmp_path / rel, seed=i, size=8)
    first = [item.path for item in scan_images(tmp_path, image_size=8)]
    second = [item.path for item in scan_images(tmp_path, image_size=8)]
    assert first == second == ["a/b/c.png", "a/z.png", "b.png", "c.png"]


def test_progress_counts_every_candidate_file(tmp_path):
    _noise_png(tmp_path / "a.png", seed=0, size=8)
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / "c.png").write_bytes(b"")
    calls = []
    items = list(
        scan_images(tmp_path, image_size=8, progress=lambda done, total: calls.append((done, total)))
    )
    assert len(items) == 3
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_scanning_streams_one_file_at_a_time(tmp_path):
    _noise_png(tmp_path / "a.png", seed=0, size=8)
    _noise_png(tmp_path / "b.png", seed=1, size=8)
    items = scan_images(tmp_path, image_size=8)
    assert next(items).path == "a.png"
    (tmp_path / "b.png").unlink()  # read lazily: the scan sees the folder as it is when it gets there
    assert next(items).reason.startswith("cannot be read")


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)  # stored: red on the left, blue on the right
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise: the left half goes on top
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    item = _scan(tmp_path, image_size=40)["rotated.jpg"]
    assert (item.width, item.height) == (20, 40)
    np.testing.assert_allclose(item.image[5, 20], [255, 0, 0], atol=30)
    np.testing.assert_allclose(item.image[35, 20], [0, 0, 255], atol=30)
    assert item.image[20, :5].max() == 0  # padded left and right


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path):
    values = (np.arange(256, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    item = _scan(tmp_path, image_size=16, channels=1)["deep.png"]
    np.testing.assert_array_equal(item.image[..., 0], np.arange(256).reshape(16, 16))
    rgb = _scan(tmp_path, image_size=16, channels=3)["deep.png"]
    np.testing.assert_array_equal(rgb.image[15, 15], [255, 255, 255])
    np.testing.assert_array_equal(rgb.image[8, 0], [128, 128, 128])


def test_alpha_is_composited_on_white(tmp_path):
    pixels = np.zeros((16, 16, 4), dtype=np.uint8)  # transparent black
    pixels[:, 8:] = (255, 0, 0, 255)  # opaque red
    pixels[8:, :8] = (0, 0, 0, 128)  # half-transparent black
    Image.fromarray(pixels).save(tmp_path / "alpha.png")
    image = _scan(tmp_path, image_size=16)["alpha.png"].image
    np.testing.assert_array_equal(image[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(image[0, 12], [255, 0, 0])
    np.testing.assert_allclose(image[12, 0], [127, 127, 127], atol=1)


def test_palette_cmyk_and_animated_gif_convert_to_rgb(tmp_path):
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    transparent = Image.new("P", (16, 16), 0)
    transparent.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    transparent.save(tmp_path / "palette_transparent.png", transparency=0)
    _solid(tmp_path / "cmyk.jpg", (0, 255, 255, 0), mode="CMYK", quality=95)  # cyan 0, magenta+yellow: red
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    items = _scan(tmp_path, image_size=16)
    np.testing.assert_array_equal(items["palette.png"].image[4, 4], [10, 200, 30])
    np.testing.assert_array_equal(items["palette_transparent.png"].image[4, 4], [255, 255, 255])
    np.testing.assert_allclose(items["cmyk.jpg"].image[8, 8], [255, 0, 0], atol=8)
    np.testing.assert_allclose(items["anim.gif"].image[8, 8], [255, 0, 0], atol=8)


def test_a_missing_folder_or_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        scan_images(tmp_path / "nowhere")
    with pytest.raises(DataFormatError, match="channels must be 1"):
        scan_images(tmp_path, channels=2)


def _labelled_tree(root: Path) -> None:
    _solid(root / "cat" / "c1.png", (200, 0, 0))
    _solid(root / "cat" / "c2.png", (190, 0, 0))
    _solid(root / "dog" / "d1.png", (0, 0, 200))
    (root / "dog" / "broken.png").write_bytes(b"")
    _solid(root / "loose.png", (0, 200, 0))


def test_labelled_reader_uses_the_projects_class_order(tmp_path):
    _labelled_tree(tmp_path)
    items = {
        item.path: item for item in read_labelled(tmp_path, ["dog", "cat", "bird"], image_size=8, channels=3)
    }
    labels = {p: item.label for p, item in items.items() if isinstance(item, LabelledImage)}
    assert labels == {"cat/c1.png": 1, "cat/c2.png": 1, "dog/d1.png": 0}
    assert items["dog/broken.png"].reason == "empty file"
    assert items["loose.png"].reason == "not in a class folder"
    assert items["cat/c1.png"].image.shape == (8, 8, 3)


def test_labelled_reader_refuses_an_unknown_class_folder(tmp_path):
    _labelled_tree(tmp_path)
    _solid(tmp_path / "horse" / "h.png", (1, 2, 3))
    with pytest.raises(DataFormatError, match=r"sub-folder\(s\) horse .*\(cat, dog\)"):
        read_labelled(tmp_path, ["cat", "dog"], image_size=8, channels=3)


def test_known_hashes_mark_pool_images_already_in_the_labelled_set(tmp_path):
    _noise_png(tmp_path / "labelled" / "cat" / "a.png", seed=0)
    _noise_png(tmp_path / "pool" / "same.png", seed=0)
    _noise_png(tmp_path / "pool" / "new.png", seed=1)
    known: dict[str, str] = {}
    list(read_labelled(tmp_path / "labelled", ["cat"], image_size=8, channels=3, known=known))
    items = _scan(tmp_path / "pool", image_size=8, known=known)
    assert items["same.png"].reason == "duplicate of cat/a.png"
    assert isinstance(items["new.png"], PoolImage)


def test_thumbnail_features_are_standardised_and_separate_different_images():
    rng = np.random.default_rng(0)
    reds = np.clip(rng.normal((220, 30, 30), 10, (20, 16, 16, 3)), 0, 255).astype(np.uint8)
    blues = np.clip(rng.normal((40, 60, 240), 10, (20, 16, 16, 3)), 0, 255).astype(np.uint8)
    features = thumbnail_features(np.concatenate([reds, blues]))
    assert features.shape == (40, 64 + 64) and features.dtype == torch.float32
    torch.testing.assert_close(features.mean(0), torch.zeros(128), atol=1e-5, rtol=0)
    distances = torch.cdist(features, features)
    within = max(distances[:20, :20].max(), distances[20:, 20:].max())
    assert distances[:20, 20:].min() > 1.3 * within  # 1.88 against 1.20 on this seed
    grey = thumbnail_features(reds[..., :1])
    assert grey.shape == (20, 64 + 16)


def _blobs(counts, dims=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 50, (len(counts), dims))
    points = np.concatenate([rng.normal(c, 1.0, (n, dims)) for c, n in zip(centres, counts)])
    labels = np.repeat(np.arange(len(counts)), counts)
    return torch.tensor(points, dtype=torch.float32), labels


def test_diverse_seed_covers_every_blob_where_random_picks_miss_some():
    counts = [400, 200, 100, 50, 50, 20, 20, 10, 10, 5]
    features, labels = _blobs(counts)
    for seed in range(5):
        picks = diverse_seed(features, 10, seed=seed, batch_size=100)
        assert len(set(picks.tolist())) == 10
        assert sorted(labels[picks.numpy()]) == list(range(10))
    generator = torch.Generator().manual_seed(0)
    random_blobs = [
        len(set(labels[torch.randperm(len(labels), generator=generator)[:10].numpy()])) for _ in range(20)
    ]
    assert max(random_blobs) < 10  # random picks never covered all ten blobs in 20 tries


def test_diverse_seed_has_a_smaller_covering_radius_than_random_picks():
    features = torch.rand(3000, 2, generator=torch.Generator().manual_seed(1))

    def radius(picks):
        return torch.cdist(features, features[picks]).min(1).values.max().item()

    greedy = radius(diverse_seed(features, 50, seed=0))
    randoms = [
        radius(torch.randperm(3000, generator=torch.Generator().manual_seed(s))[:50]) for s in range(5)
    ]
    assert greedy < 0.75 * min(randoms)  # 0.114 against at best 0.207 on these seeds


def test_diverse_seed_edge_cases():
    features = torch.zeros(6, 3)  # all duplicates: indices must still be distinct
    picks = diverse_seed(features, 4, seed=0)
    assert len(set(picks.tolist())) == 4
    torch.testing.assert_close(diverse_seed(features, 10, seed=0), torch.arange(6))
    assert diverse_seed(features, 0, seed=0).numel() == 0
    assert diverse_seed(features, 4, seed=3).tolist() == diverse_seed(features, 4, seed=3).tolist()


def test_many_unknown_class_folders_give_a_short_error(tmp_path):
    """Issue 25: every unknown sub-folder was listed, each name in full (a 3,000-character line for 300)."""
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "cat" / "a.png")
    for index in range(300):
        (tmp_path / f"odd\tfolder {index:03d} {'x' * 60}").mkdir()
    with pytest.raises(DataFormatError, match="that are not classes of the project") as refused:
        read_labelled(tmp_path, ["cat", "dog"], image_size=8, channels=3)
    message = str(refused.value)
    assert "and 290 more" in message and "\t" not in message and len(message) < 900
