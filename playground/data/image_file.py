"""Opening a user's image file safely: the one place every reader of user images goes through.

``Image.open`` reads only the header, so the pixel count is known before anything is decoded. An
image with more pixels than the cap is refused there: the cap is the reader's ``max_pixels`` when it
gives one, else ``$PLAYGROUND_MAX_IMAGE_PIXELS``, else :data:`MAX_IMAGE_PIXELS` (50 million: an
8000x6000 photo passes). PIL's own decompression-bomb check (``Image.MAX_IMAGE_PIXELS``, about 89
million; its warning is raised as an error here, inside the block only) applies as well, so the
smaller of the two limits wins.

Whatever goes wrong while the file is opened or decoded inside :func:`open_image`'s block (an unknown
format, a truncated file, a broken PNG chunk, which PIL raises as ``SyntaxError``, a missing or
unreadable file) becomes one :class:`UnreadableImageError`, a
:class:`~playground.errors.DataFormatError` naming the file and the problem. Its ``problem``
attribute is the reason alone, for the readers that skip a bad file and list why.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

from playground.core.config_values import env_count
from playground.errors import ConfigError, DataFormatError, PlaygroundError

MAX_IMAGE_PIXELS = 50_000_000
PIXELS_ENV = "PLAYGROUND_MAX_IMAGE_PIXELS"


class UnreadableImageError(DataFormatError):
    """An image file that cannot be read; ``file`` and ``problem`` say which and why."""

    def __init__(self, file: str, problem: str, hint: str = ""):
        self.file, self.problem = file, problem
        super().__init__(f"{file} cannot be read as an image: {problem}" + (f"; {hint}" if hint else ""))


class ImageTooLargeError(UnreadableImageError):
    """More pixels than the cap, or than PIL's decompression-bomb limit."""


def max_image_pixels(max_pixels: int | None = None) -> int:
    """The pixel cap: ``max_pixels`` when given, else ``$PLAYGROUND_MAX_IMAGE_PIXELS``, else
    :data:`MAX_IMAGE_PIXELS`. A cap that is not a positive whole number is a ConfigError."""
    if max_pixels is not None:
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ConfigError(f"max_pixels must be a positive whole number, not {max_pixels!r}")
        return max_pixels
    return env_count(PIXELS_ENV, MAX_IMAGE_PIXELS, "pixels")


def shown(name: str, limit: int = 200) -> str:
    """``name`` on one line: control characters (a newline in a file name) escaped, cut to ``limit``."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name))
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def open_image(
    source: str | Path | bytes | IO[bytes], name: str | None = None, max_pixels: int | None = None
) -> Iterator[Image.Image]:
    """The image in ``source`` (a path, encoded bytes or a binary file), opened lazily with its pixel
    count checked against the cap (:func:`max_image_pixels`); decode it inside the block, because
    the file is closed after it. Every failure in the block is an :class:`UnreadableImageError`
    naming ``name`` (default: the path, or "the upload"); a PlaygroundError raised in the
    block passes through unchanged."""
    cap = max_image_pixels(max_pixels)
    if name is None:
        name = str(source) if isinstance(source, (str, Path)) else "the upload"
    name = shown(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
                width, height = image.size
                if width * height > cap:
                    hint = f"shrink it, or raise ${PIXELS_ENV}" if max_pixels is None else "shrink it"
                    problem = f"{width}x{height} pixels, more than max_pixels={cap}"
                    raise ImageTooLargeError(name, problem, hint)
                yield image
        except PlaygroundError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageTooLargeError(name, f"too many pixels: {shown(err, 300)}") from None
        except UnidentifiedImageError:
            raise UnreadableImageError(name, "cannot be decoded: not a format PIL recognises") from None
        except OSError as err:
            if err.filename is not None:  # the file itself: missing, a folder, no permission
                raise UnreadableImageError(name, f"cannot be read: {err.strerror or err}") from None
            raise UnreadableImageError(name, _decode_problem(err)) from None
        except Exception as err:  # decoders raise many types on corrupt files (SyntaxError, ValueError...)
            raise UnreadableImageError(name, _decode_problem(err)) from None


def _decode_problem(err: Exception) -> str:
    return f"cannot be decoded: {type(err).__name__}: {shown(err, 300)}"
