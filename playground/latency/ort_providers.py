"""Which ONNX Runtime execution provider a variant runs on, asked for explicitly and checked after loading.

- ``cpu``: the CPU provider (MLAS kernels, VNNI int8).
- ``cuda``: NVIDIA's CUDA provider (cuDNN convolutions); it needs the ``onnxruntime-gpu`` wheel in place of
  ``onnxruntime`` and a visible GPU.
- ``tensorrt``: the TensorRT provider, which compiles supported subgraphs into TensorRT engines (fp16 kernels
  when ``trt_fp16_enable`` is set); it needs ``onnxruntime-gpu`` and the ``tensorrt`` package. The engine is
  built on the session's first run, so the builder runs one batch before timing starts.

ONNX Runtime silently falls back to the next provider in the list when one fails to load (a missing CUDA or
cuDNN library, say), so a GPU figure could quietly be a CPU one: :func:`check_provider` refuses a session
whose first provider is not the one asked for.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from playground.errors import ConfigError

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
INSTALL_HINT = {
    "cuda": "install onnxruntime-gpu in place of onnxruntime (pip uninstall onnxruntime && pip install "
    "onnxruntime-gpu) on a machine with an NVIDIA GPU",
    "tensorrt": "it needs onnxruntime-gpu and the tensorrt package (pip install tensorrt) on a machine "
    "with an NVIDIA GPU",
}


def provider_kind(device: str) -> str:
    """The provider for a run's torch device: ``cuda`` for a CUDA device, else ``cpu``."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


def providers_for(kind: str, fp16: bool = False, cache_dir: Path | None = None) -> list:
    """The provider list for ``InferenceSession`` (the one asked for first, then its fallbacks); ConfigError
    when this ONNX Runtime build does not have it."""
    if kind not in PROVIDER_NAMES:
        raise ConfigError(f"unknown ONNX Runtime provider {kind!r}; choose from {', '.join(PROVIDER_NAMES)}")
    wanted = PROVIDER_NAMES[kind]
    available = ort.get_available_providers()
    if wanted not in available:
        raise ConfigError(
            f"ONNX Runtime {ort.__version__} here has no {wanted} (it has {', '.join(available)}); "
            f"{INSTALL_HINT[kind]}"
        )
    if kind == "cpu":
        return [wanted]
    if kind == "cuda":
        return [wanted, PROVIDER_NAMES["cpu"]]
    options = {"trt_fp16_enable": fp16}
    if cache_dir is not None:
        options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)}
    return [(wanted, options), PROVIDER_NAMES["cuda"], PROVIDER_NAMES["cpu"]]


def check_provider(session: ort.InferenceSession, kind: str, path: Path) -> None:
    """Refuse a session that fell back from the provider asked for (ORT only warns)."""
    got = session.get_providers()
    if got[0] != PROVIDER_NAMES[kind]:
        raise ConfigError(
            f"ONNX Runtime could not start {PROVIDER_NAMES[kind]} for {path.name} and fell back to {got[0]} "
            "(check the CUDA, cuDNN and TensorRT libraries this onnxruntime-gpu build expects); a figure "
            "from it would not be a GPU figure"
        )
