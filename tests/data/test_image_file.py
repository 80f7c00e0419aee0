"""Every user image goes through one opener: a pixel cap read from the header, PIL's errors as one
UnreadableImageError naming the file. The hostile files are made by hand here."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from playground.data.folder import read_image
from playground.data.image_file import (
    MAX_IMAGE_PIXELS,
    PIXELS_ENV,
    ImageTooLargeError,
    UnreadableImageError,
    max_image_pixels,
    open_image,
)
from playground.errors import ConfigError, DataFormatError


def png_bytes(size=(16, 12), colour=(200, 30, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def header_png(width: int, height: int) -> bytes:
    """A valid 4x4 PNG whose IHDR claims ``width x height`` (its CRC fixed): nothing that size exists."""
    data = bytearray(png_bytes((4, 4)))
    data[16:24] = struct.pack(">II", width, height)  # IHDR data: after signature(8) + length(4) + type(4)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, "JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def broken_png() -> bytes:
    """A PNG whose second IDAT chunk has a garbage type: PIL raises SyntaxError while decoding."""
    data = noise_png(200)  # big enough for two IDAT chunks
    second = data.index(b"IDAT", data.index(b"IDAT") + 4)
    return data[:second] + b"\x00\x00\x00I" + data[second + 4 :]


def test_the_pixel_cap_is_read_from_the_header_before_anything_is_decoded(tmp_path, monkeypatch):
    monkeypatch.delenv(PIXELS_ENV, raising=False)
    (tmp_path / "big.png").write_bytes(header_png(8000, 7000))  # 56 M: over 50 M, under PIL's 89 M
    with pytest.raises(ImageTooLargeError) as caught:
        read_image(tmp_path / "big.png", 8, 3)
    assert caught.value.problem == f"8000x7000 pixels, more than max_pixels={MAX_IMAGE_PIXELS}"
    assert str(caught.value) == (
        f"{tmp_path / 'big.png'} cannot be read as an image: 8000x7000 pixels, more than "
        f"max_pixels={MAX_IMAGE_PIXELS}; shrink it, or raise ${PIXELS_ENV}"
    )
    with pytest.raises(UnreadableImageError) as caught:  # under a higher cap, PIL tries to decode it
        read_image(tmp_path / "big.png", 8, 3, max_pixels=60_000_000)
    assert caught.value.problem.startswith("cannot be decoded")


@pytest.mark.parametrize(
    ("width", "height"), [(30000, 30000), (10000, 10000)]
)  # over PIL's error limit; between its warning and error limits
def test_a_decompression_bomb_is_one_error_and_the_warning_filter_stays_local(width, height):
    filters = list(warnings.filters)
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png cannot be read as an image: too many pixels"):
        read_image(header_png(width, height), 8, 3, name="bomb.png", max_pixels=10**12)
    assert warnings.filters == filters


def test_the_cap_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv(PIXELS_ENV, "100")
    assert max_image_pixels() == 100 and max_image_pixels(500) == 500
    with pytest.raises(ImageTooLargeError, match="16x12 pixels, more than max_pixels=100"):
        read_image(png_bytes(), 8, 3)
    assert read_image(png_bytes(), 8, 3, max_pixels=500).shape == (8, 8, 3)
    monkeypatch.setenv(PIXELS_ENV, "lots")
    with pytest.raises(
        ConfigError, match=f"{PIXELS_ENV} must be a positive whole number of pixels, not .lots."
    ):
        read_image(png_bytes(), 8, 3)
    for bad in (0, -5, True, 1.5):
        with pytest.raises(ConfigError, match="max_pixels must be a positive whole number"):
            max_image_pixels(bad)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"just some text, not a picture", "cannot be decoded: not a format PIL recognises"),
        (truncated_jpeg(), "cannot be decoded: OSError: "),
        (noise_png(64)[:6000], "cannot be decoded: OSError: image file is truncated"),
        (broken_png(), "cannot be decoded: SyntaxError: broken PNG file"),
    ],
    ids=["text-named-png", "truncated-jpeg", "truncated-png", "broken-png-chunk"],
)
def test_broken_files_are_one_error_naming_the_file_and_the_problem(tmp_path, data, problem):
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    with pytest.raises(UnreadableImageError) as caught:
        read_image(path, 8, 3)
    assert not isinstance(caught.value, ImageTooLargeError)
    assert isinstance(caught.value, DataFormatError) and caught.value.problem.startswith(problem)
    assert str(caught.value).startswith(f"{path} cannot be read as an image: {problem}")


def test_a_missing_file_or_a_folder_is_one_error_too(tmp_path):
    with pytest.raises(
        UnreadableImageError, match="gone.png cannot be read as an image: cannot be read: No such"
    ):
        read_image(tmp_path / "gone.png", 8, 3)
    with pytest.raises(UnreadableImageError, match="cannot be read: Is a directory"):
        read_image(tmp_path, 8, 3)


def test_the_message_is_one_line_whatever_the_file_is_called(tmp_path):
    path = tmp_path / "two\nlines.png"
    path.write_bytes(b"not an image")
    with pytest.raises(UnreadableImageError) as caught:
        read_image(path, 8, 3)
    assert "\n" not in str(caught.value) and "two\\nlines.png" in str(caught.value)


def test_a_playground_error_raised_in_the_block_passes_through_unchanged():
    with pytest.raises(DataFormatError, match="^too wide$"):
        with open_image(png_bytes()):
            raise DataFormatError("too wide")


def test_an_upload_is_named_the_upload_and_decodes_from_bytes():
    assert read_image(png_bytes(colour=(255, 0, 0)), 4, 3)[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(UnreadableImageError, match="^the upload cannot be read as an image"):
        read_image(b"nope", 4, 3)


VALID = png_bytes((12, 10))


@st.composite
def mangled_images(draw) -> bytes:
    """Arbitrary bytes, or a valid PNG with some bytes overwritten, cut short or spliced in."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["set", "cut", "splice"]))
        if kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[max(1, at) :]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_images())
def test_any_bytes_give_an_image_or_one_unreadable_image_error(data):
    try:
        array = read_image(data, 8, 3, max_pixels=10_000)
    except UnreadableImageError as err:
        assert err.problem and "\n" not in str(err)
    else:
        assert array.shape == (8, 8, 3) and array.dtype == np.uint8
