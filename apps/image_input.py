"""Image input widgets for pages that score one image: an upload (size-checked before decoding) and a
drawing pad (streamlit-drawable-canvas), both converted to a model's input shape ``(C, H, W)``."""

import numpy as np
import streamlit as st
import torch

from playground.data.image_file import ImageTooLargeError, UnreadableImageError, open_image
from playground.data.ood import fit_images
from playground.errors import DataFormatError

MAX_UPLOAD_MB = 5
MAX_SIDE = 4096  # pixels; anything larger is refused before it is decoded
CANVAS = 224


def to_image(rgb: np.ndarray, shape: tuple[int, int, int], invert: bool) -> torch.Tensor:
    """An (H, W, 3) uint8 array as one (C, H, W) image in the model's input shape."""
    tensor = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    return fit_images(1.0 - tensor if invert else tensor, shape)[0]


def decode_upload(data: bytes, name: str, shape: tuple[int, int, int], invert: bool) -> torch.Tensor:
    """An uploaded file as one image in the model's input shape; clear errors for anything else
    (the pixel cap and PIL's errors through :func:`playground.data.image_file.open_image`)."""
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise DataFormatError(
            f"{name} is {len(data) / 2**20:.1f} MB; upload an image under {MAX_UPLOAD_MB} MB"
        )
    try:
        with open_image(data, name) as image:  # reads the header only
            if max(image.size) > MAX_SIDE:
                raise DataFormatError(
                    f"{name} is {image.size[0]}×{image.size[1]} pixels; "
                    f"upload one at most {MAX_SIDE} pixels on a side"
                )
            rgb = np.asarray(image.convert("RGB"))
    except ImageTooLargeError:
        raise
    except UnreadableImageError as err:
        raise DataFormatError(
            f"{err.file} is not an image that can be read (PNG, JPEG, GIF, BMP, WebP or TIFF): {err.problem}"
        ) from None
    return to_image(rgb, shape, invert)


def uploaded_image(shape: tuple[int, int, int], prefix: str):
    """A file uploader (with an invert box): ``(image or None, caption)``."""
    upload = st.file_uploader(
        "An image file",
        type=["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"],
        key=f"{prefix}_upload",
        max_upload_size=MAX_UPLOAD_MB,
    )
    invert = st.checkbox(
        "Invert (a dark object on a light background)",
        key=f"{prefix}_invert",
        help="The benchmark's images are light objects on a black background",
    )
    if upload is None:
        st.caption(
            f"It is converted to the model's {shape[1]}×{shape[2]} "
            f"{'grey' if shape[0] == 1 else 'RGB'} images."
        )
        return None, ""
    return decode_upload(upload.getvalue(), upload.name, shape, invert), f"upload: {upload.name}"


def drawn_image(shape: tuple[int, int, int], prefix: str):
    """A drawing pad, white on black: ``(image or None, caption)``."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:
        st.info(
            "Drawing needs the streamlit-drawable-canvas package: `pip install streamlit-drawable-canvas`."
        )
        return None, ""
    brush = st.slider("Brush", min_value=4, max_value=40, value=18, key=f"{prefix}_brush")
    drawing = st_canvas(
        stroke_width=brush,
        stroke_color="#ffffff",
        background_color="#000000",
        height=CANVAS,
        width=CANVAS,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"{prefix}_canvas",
    )
    pixels = drawing.image_data
    if pixels is None or not pixels[..., :3].any():
        st.caption(
            "Draw with the mouse: white on black, like the training images. The toolbar undoes or clears."
        )
        return None, ""
    return to_image(pixels[..., :3], shape, invert=False), "your drawing"
