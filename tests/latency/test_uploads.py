"""Model files uploaded through the latency page: checked, written once, never half-written."""

from __future__ import annotations

import pytest

from playground.errors import DataFormatError
from playground.latency.uploads import save_model_upload


def test_an_upload_is_written_once_under_its_content_hash(tmp_path):
    first = save_model_upload(b"onnx bytes", "My Model (v2).onnx", tmp_path / "uploads")
    again = save_model_upload(b"onnx bytes", "My Model (v2).onnx", tmp_path / "uploads")
    assert first == again and first.read_bytes() == b"onnx bytes"
    assert first.name.endswith("-My_Model_v2_.onnx") and len(first.name.split("-")[0]) == 12
    other = save_model_upload(b"weights", "w.safetensors", tmp_path / "uploads")
    assert other != first and sorted(p.suffix for p in (tmp_path / "uploads").iterdir()) == [
        ".onnx",
        ".safetensors",
    ]  # no temporary file left behind


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"x", "model.pt", "ONNX model"),
        (b"", "model.onnx", "empty"),
        (b"x" * (2 * 2**20), "model.onnx", "up to 1 MB"),
    ],
)
def test_wrong_empty_and_oversized_uploads_are_refused(data, name, message, tmp_path):
    with pytest.raises(DataFormatError, match=message):
        save_model_upload(data, name, tmp_path, max_mb=1)
    assert not any(tmp_path.iterdir())
