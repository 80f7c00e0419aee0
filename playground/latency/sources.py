"""Where the benchmarked model comes from: a torchvision or timm architecture, or an ONNX file.

:func:`load_source` turns a spec into a :class:`ModelSource`:

- ``torchvision:NAME``: ``torchvision.models.get_model(NAME, weights=None)`` (classification models);
- ``timm:NAME`` (``NAME`` may carry a pretrained tag, ``resnet50.a1_in1k``):
  ``timm.create_model(NAME, pretrained=False)``;
- a path to an ``.onnx`` file, checked with ``onnx.checker``; its input shape comes from the graph.

Nothing is downloaded: architectures start from random weights unless ``weights`` names a state
dict (``.safetensors``, or ``.pt``/``.pth`` read with ``torch.load(weights_only=True)``; nothing
is ever unpickled), which must fit the architecture exactly: a mismatch names the first tensor
whose shape differs and the missing and unexpected keys. The number of classes is found by one
forward of a zero batch at the input shape (or read from the ONNX output), so a model that cannot
run at that shape fails here, before any timing starts.

Each source carries its :class:`Preprocess` (resize the shorter side, centre crop, normalise):
timm's ``pretrained_cfg`` for timm models, ImageNet's (resize 256, crop 224, scaled to the input
size) otherwise, with any field overridable. :func:`count_macs` counts a torch model's MACs at
batch 1 with torch-pruning. Every bad input is one :mod:`playground.errors` error.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from playground.errors import ConfigError, DataNotFoundError
from playground.latency.weights import first_line, listed, load_weights

ACCEPTED_FORMS = (
    "torchvision:NAME (e.g. torchvision:resnet50), timm:NAME (e.g. timm:mobilenetv3_large_100) "
    "or the path of an .onnx file"
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_CROP_PCT = 224 / 256  # resize 256 -> crop 224
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
RANDOM_WEIGHTS = "random (no weights given)"
SHAPE_HINT = "pass --input-shape 3x224x224 (channels x height x width)"


@dataclass(frozen=True)
class Preprocess:
    """Eval preprocessing: resize the shorter side to ``resize``, centre crop ``crop``, normalise.

    ``interpolation`` is one of :data:`INTERPOLATIONS`; ``mean`` and ``std`` have one value per
    input channel (of the 0..1 pixel values).
    """

    resize: int
    crop: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str

    def describe(self) -> str:
        mean = ", ".join(f"{v:.3f}" for v in self.mean)
        std = ", ".join(f"{v:.3f}" for v in self.std)
        return (
            f"resize {self.resize} ({self.interpolation}), centre crop {self.crop}, "
            f"mean ({mean}), std ({std})"
        )


@dataclass
class ModelSource:
    """A model ready to benchmark, and what the report should say about it.

    ``module`` is an ``nn.Module`` in eval mode (None for ONNX); ``onnx_path`` the ONNX file
    (None for torch models); ``input_shape`` is ``(C, H, W)``; ``weights`` says where the
    weights came from; ``notes`` are lines for the report (e.g. a fixed ONNX batch size).
    """

    name: str
    module: nn.Module | None
    onnx_path: Path | None
    input_shape: tuple[int, int, int]
    num_classes: int
    weights: str
    preprocess: Preprocess
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``"torchvision"``, ``"timm"`` or ``"onnx"``."""
        return self.name.split(":", 1)[0]

    def example(self, batch: int = 1) -> torch.Tensor:
        """A zero batch at the input shape (for export, MAC counting, warm-up)."""
        return torch.zeros(batch, *self.input_shape)


def model_slug(spec: str) -> str:
    """A short, file-safe name for a model spec: ``torchvision:resnet50`` -> ``resnet50``,
    ``~/models/My Net.onnx`` -> ``My-Net``."""
    name = Path(str(spec).strip()).stem if str(spec).lower().endswith(".onnx") else str(spec).split(":")[-1]
    return re.sub(r"[^A-Za-z0-9_.]+", "-", name).strip("-.")[:60] or "model"


def parse_input_shape(value: str | tuple | list | None) -> tuple[int, int, int] | None:
    """``"3x224x224"`` or ``(3, 224, 224)`` as a checked ``(C, H, W)``; None for ``""``/None.

    C must be 1..4 and H, W 8..2048.
    """
    if value is None or value == "" or value == ():
        return None
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"input shape {value!r} is not CxHxW; {SHAPE_HINT}") from None
    elif isinstance(value, (tuple, list)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        dims = tuple(value)
    else:
        raise ConfigError(f"input shape {value!r} is not CxHxW; {SHAPE_HINT}")
    if len(dims) != 3:
        raise ConfigError(f"input shape {value!r} has {len(dims)} numbers, not 3; {SHAPE_HINT}")
    channels, height, width = dims
    if not 1 <= channels <= 4:
        raise ConfigError(f"input shape {value!r}: channels must be 1 to 4, not {channels}")
    if not (8 <= height <= 2048 and 8 <= width <= 2048):
        raise ConfigError(f"input shape {value!r}: height and width must be 8 to 2048 pixels")
    return channels, height, width


def _fit_channels(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    """Per-channel mean/std for ``channels``: averaged for greyscale, 0.5 for extra (alpha) channels."""
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    base = values if channels >= len(values) else (sum(values) / len(values),)
    return (base + (0.5,) * channels)[:channels]


def _scaled(input_shape: tuple[int, int, int], crop_pct: float, mean, std, interpolation: str) -> Preprocess:
    channels, height, width = input_shape
    crop = max(height, width)
    return Preprocess(
        resize=math.floor(crop / crop_pct),
        crop=crop,
        mean=_fit_channels(mean, channels),
        std=_fit_channels(std, channels),
        interpolation=interpolation,
    )


def imagenet_preprocess(input_shape: tuple[int, int, int]) -> Preprocess:
    """ImageNet's eval preprocessing (resize 256 -> crop 224, bilinear) scaled to ``input_shape``."""
    return _scaled(input_shape, IMAGENET_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, "bilinear")


def timm_preprocess(model: nn.Module, input_shape: tuple[int, int, int]) -> Preprocess:
    """Preprocessing from a timm model's data config (crop_pct, interpolation, mean, std)."""
    from timm.data import resolve_data_config

    config = resolve_data_config({}, model=model)
    interpolation = config.get("interpolation", "bilinear")
    if interpolation not in INTERPOLATIONS:
        interpolation = "bicubic" if interpolation == "random" else "bilinear"
    crop_pct = float(config.get("crop_pct") or IMAGENET_CROP_PCT)
    return _scaled(input_shape, crop_pct, config["mean"], config["std"], interpolation)


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"preprocess {key} must be a positive number of pixels, not {value!r}")
    return value


def _per_channel(key: str, value: Any, channels: int) -> tuple[float, ...]:
    values = (value,) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"preprocess {key} must be numbers, one per channel, not {value!r}") from None
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ConfigError(
            f"preprocess {key} has {len(values)} values but the model takes {channels} channels"
        )
    if key == "std" and min(values) <= 0:
        raise ConfigError(f"preprocess std must be positive, not {value!r}")
    return values


PREPROCESS_KEYS = ("resize", "crop", "mean", "std", "interpolation")


def check_override_keys(overrides: dict | None) -> None:
    """ConfigError for a preprocess override that is not a :class:`Preprocess` field."""
    unknown = sorted(str(key) for key in overrides or {} if key not in PREPROCESS_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown preprocess setting(s) {', '.join(unknown)}; known: {', '.join(PREPROCESS_KEYS)}"
        )


def apply_overrides(preprocess: Preprocess, overrides: dict | None, channels: int) -> Preprocess:
    """``preprocess`` with the fields in ``overrides`` replaced (checked); unknown keys are an error."""
    if not overrides:
        return preprocess
    check_override_keys(overrides)
    checked: dict[str, Any] = {}
    for key in ("resize", "crop"):
        if key in overrides:
            checked[key] = _positive_int(key, overrides[key])
    for key in ("mean", "std"):
        if key in overrides:
            checked[key] = _per_channel(key, overrides[key], channels)
    if "interpolation" in overrides:
        value = str(overrides["interpolation"]).lower()
        if value not in INTERPOLATIONS:
            raise ConfigError(f"preprocess interpolation {value!r} is not one of {', '.join(INTERPOLATIONS)}")
        checked["interpolation"] = value
    result = replace(preprocess, **checked)
    if result.crop > result.resize:
        raise ConfigError(
            f"preprocess crop {result.crop} is larger than resize {result.resize}: the centre crop "
            "must fit in the resized image; raise resize or lower crop"
        )
    return result


# ---------------------------------------------------------------- user weights


def _unknown(kind: str, name: str, names: list[str]) -> ConfigError:
    close = difflib.get_close_matches(name.lower(), names, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(f'{kind}:{c}' for c in close)}?" if close else ""
    return ConfigError(f"unknown {kind} model {name!r}{hint} ({len(names)} {kind} models are known)")


def _check_torchvision_name(name: str) -> None:
    import torchvision

    classifiers = torchvision.models.list_models(module=torchvision.models)
    if name not in classifiers:
        if name in torchvision.models.list_models():
            raise ConfigError(
                f"torchvision:{name} is not an image classifier (a detection, segmentation, video or "
                "optical-flow model); the benchmark times classification models"
            )
        raise _unknown("torchvision", name, classifiers)


def _torchvision_module(name: str, num_classes: int, channels: int) -> nn.Module:
    import torchvision

    _check_torchvision_name(name)
    if channels != 3:
        raise ConfigError(
            f"torchvision:{name} takes 3 input channels, not {channels}; "
            "use timm:NAME (in_chans) or an ONNX file"
        )
    kwargs = {"num_classes": num_classes} if num_classes else {}
    try:
        return torchvision.models.get_model(name, weights=None, **kwargs)
    except Exception as exc:
        raise ConfigError(f"torchvision:{name} cannot be built ({first_line(exc)})") from None


def _import_timm():
    try:
        import timm
    except ImportError:
        raise ConfigError("timm models need the timm package: pip install timm") from None
    return timm


def _timm_config(name: str):
    """timm's pretrained config of ``name`` (``arch`` or ``arch.tag``); ConfigError for an unknown name."""
    timm = _import_timm()
    arch, _, tag = name.partition(".")
    if not timm.is_model(arch):
        raise _unknown("timm", arch, timm.list_models())
    try:
        return timm.models.get_pretrained_cfg(name)
    except RuntimeError:  # timm's "Invalid pretrained tag"
        tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{arch}.*")]
        raise ConfigError(
            f"timm:{arch} has no pretrained config {tag!r}; known tags: {listed(tags)}"
        ) from None


def _timm_module(name: str, num_classes: int, input_shape: tuple[int, int, int], config) -> nn.Module:
    timm = _import_timm()
    kwargs: dict[str, Any] = {"in_chans": input_shape[0]}
    if num_classes:
        kwargs["num_classes"] = num_classes
    default = tuple(getattr(config, "input_size", None) or (3, 224, 224))
    if getattr(config, "fixed_input_size", False) and default[1:] != input_shape[1:]:
        kwargs["img_size"] = input_shape[1:]  # ViT-like models build their position embedding for it
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except Exception as exc:
        raise ConfigError(f"timm:{name} cannot be built with {kwargs} ({first_line(exc)})") from None


def _outputs(module: nn.Module, name: str, input_shape: tuple[int, int, int]) -> int:
    """The number of classes, from one forward of a zero batch at ``input_shape``."""
    shape = "x".join(map(str, input_shape))
    try:
        with torch.inference_mode():
            output = module(torch.zeros(1, *input_shape))
    except Exception as exc:
        raise ConfigError(
            f"{name} does not run at input shape {shape} ({first_line(exc)}); {SHAPE_HINT}"
        ) from None
    logits = getattr(output, "logits", output)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ConfigError(f"{name} does not output (batch, classes) logits (got {got}); give a classifier")
    return int(logits.shape[1])


def _torch_source(kind: str, name: str, weights: str, shape, num_classes: int) -> ModelSource:
    if kind == "timm":
        config = _timm_config(name)
        input_shape = shape or tuple(getattr(config, "input_size", None) or (3, 224, 224))
        module = _timm_module(name, num_classes, input_shape, config)
        preprocess = timm_preprocess(module, input_shape)
    else:
        input_shape = shape or (3, 224, 224)
        module = _torchvision_module(name, num_classes, input_shape[0])
        preprocess = imagenet_preprocess(input_shape)
    module.eval()
    weights_note = load_weights(module, weights) if weights else RANDOM_WEIGHTS
    full_name = f"{kind}:{name}"
    classes = _outputs(module, full_name, input_shape)
    return ModelSource(full_name, module, None, input_shape, classes, weights_note, preprocess)


# ---------------------------------------------------------------- ONNX files


def _parse_spec(spec: str) -> tuple[str, str]:
    """``(kind, name)``: ``("onnx", path)``, ``("torchvision", NAME)`` or ``("timm", NAME)``."""
    spec = str(spec).strip()
    kind, _, name = spec.partition(":")
    if spec.lower().endswith(".onnx") or (spec and Path(spec).expanduser().is_file()):
        return "onnx", spec
    if kind.lower() in ("torchvision", "timm") and name.strip():
        return kind.lower(), name.strip()
    raise ConfigError(f"model {spec!r} is not one of the accepted forms: {ACCEPTED_FORMS}")


def check_model_spec(spec: str) -> None:
    """Refuse a model spec that cannot be loaded, without building the model (cheap enough for a page
    to call on every change): the form, a known torchvision/timm name (close matches listed), an ONNX
    file that exists."""
    kind, name = _parse_spec(spec)
    if kind == "onnx" and not Path(name).expanduser().is_file():
        raise DataNotFoundError(f"ONNX file {name} does not exist")
    if kind == "torchvision":
        _check_torchvision_name(name)
    if kind == "timm":
        _timm_config(name)


def load_source(
    spec: str,
    *,
    weights: str | Path = "",
    input_shape: str | tuple = "",
    num_classes: int = 0,
    preprocess_overrides: dict | None = None,
) -> ModelSource:
    """The model named by ``spec`` (``torchvision:NAME``, ``timm:NAME`` or an ``.onnx`` path).

    ``weights``: a state dict file for a torchvision/timm architecture (random weights without
    one). ``input_shape``: ``"CxHxW"`` or a tuple; default timm's config, 3x224x224 for
    torchvision, the graph's for ONNX. ``num_classes``: build the architecture with this many
    outputs (0: its default). ``preprocess_overrides``: any of resize, crop, mean, std,
    interpolation. Raises ConfigError, DataFormatError, DataNotFoundError or CheckpointError.
    """
    spec = str(spec).strip()
    shape = parse_input_shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(
            f"num_classes must be a positive whole number (0 for the model's own), not {num_classes!r}"
        )
    check_override_keys(preprocess_overrides)  # before the model is built
    weights = str(weights) if weights else ""
    kind, name = _parse_spec(spec)
    if kind == "onnx":
        from playground.latency.onnx_source import onnx_source  # it builds on this module's ModelSource

        source = onnx_source(Path(name).expanduser(), shape, num_classes, weights)
    else:
        source = _torch_source(kind, name, weights, shape, num_classes)
    source.preprocess = apply_overrides(source.preprocess, preprocess_overrides, source.input_shape[0])
    return source


def count_macs(source: ModelSource) -> int | None:
    """MACs of one forward at batch 1 (torch-pruning's count); None for ONNX or a model it cannot trace."""
    if source.module is None:
        return None
    from playground.latency.pruning import count

    try:
        return count(source.module, source.example(1))[0]
    except Exception:  # an op torch-pruning cannot follow: the report shows no MAC count
        return None
