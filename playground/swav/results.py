"""Read SwAV runs back (single or multi-seed) for the page and for scripts; never trains.

A run keeps two sections in its ``results.json`` (older runs: a side file each, still read):
:data:`PROBES` and :data:`SINKHORN`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from playground.core.checkpoint import TensorSpec, build_loaded, check_fields, load_checkpoint, short
from playground.core.config import build_config, rename_keys, renamed_keys_of
from playground.core.runs import RunInfo, list_runs, read_result, read_run_config
from playground.core.seeds import Band, band, first_seed, seed_folders
from playground.errors import CheckpointError, DataFormatError, DataNotFoundError, PlaygroundError
from playground.swav.experiment import CHECKPOINT, EXPERIMENT, Config
from playground.swav.report import EXAMPLES_FILE
from playground.swav.swav import SwAV, build_swav

# init -> label fraction -> accuracy as "linear_probe" and "lowshot" (fine-tuned), the SwAV loss per epoch
PROBES = "probes"
# one test batch through Sinkhorn-Knopp: "codes" (32 samples x K per iteration), "errors", "epsilon"
SINKHORN = "sinkhorn"
PROBE_FIELDS = {"linear_probe": dict, "lowshot": dict, "swav_loss": list[float]}
SINKHORN_FIELDS = {"codes": list, "errors": list}
MODEL_METADATA = {"experiment": str, "config": dict, "in_channels": range(1, 65)}


def find_swav_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The SwAV runs under ``root``, newest first."""
    return list_runs(root, EXPERIMENT)


def load_probes(path: str | Path) -> list[dict]:
    """Per seed: ``{"linear_probe": {init: {fraction: accuracy}}, "lowshot": ..., "swav_loss": [...]}``."""
    path = Path(path)
    folders = seed_folders(path) or [path]
    out = []
    for folder in folders:
        where = f"the {PROBES} results of {folder}"
        raw = check_fields(
            read_result(folder, PROBES, legacy="probes.json"), where, PROBE_FIELDS, error=DataFormatError
        )
        out.append(
            {
                "linear_probe": _float_keys(raw["linear_probe"], where),
                "lowshot": _float_keys(raw["lowshot"], where),
                "swav_loss": raw["swav_loss"],
            }
        )
    return out


def _float_keys(table: dict, where: str) -> dict[str, dict[float, float]]:
    """``{init: {fraction: accuracy}}`` with the fractions as floats; a :class:`DataFormatError` when
    ``table`` is not of that shape."""
    try:
        return {init: {float(f): _number(v) for f, v in curve.items()} for init, curve in table.items()}
    except (AttributeError, TypeError, ValueError):
        raise DataFormatError(
            f"{where}: a curve is not a table of label fractions to accuracies ({short(table)})"
        ) from None


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return value


def load_sinkhorn(path: str | Path) -> dict:
    """``{"errors": [[sample, prototype], ...], "codes": [B x K per iteration], "epsilon": ...}``."""
    folder = first_seed(path)
    section = read_result(folder, SINKHORN, legacy="sinkhorn.json")
    return check_fields(
        section, f"the {SINKHORN} results of {folder}", SINKHORN_FIELDS, error=DataFormatError
    )


def has_model(path: str | Path) -> bool:
    """Whether the run (for a multi-seed run: its first seed) saved its pretrained SwAV model."""
    return (first_seed(path) / CHECKPOINT).is_file()


def read_config(path: str | Path) -> dict:
    """The ``[config]`` table of a run's config.toml, the flat keys of runs made before the ``[swav]``
    section moved into it (``prototypes`` -> ``swav.prototypes``)."""
    return normalised(read_run_config(path).get("config", {}), str(path))


def normalised(values: dict, source: str) -> dict:
    """A run's config values with old keys under their new names (no notice: this reads old runs)."""
    return rename_keys(values, source, renamed_keys_of(Config), notify=False)


def no_model_reason(path: str | Path) -> str:
    """Why a run has no pretrained model: ``save_models = false``, or the file is gone."""
    path, folder = Path(path), first_seed(path)
    try:
        saved = read_config(folder).get("save_models", True)
    except PlaygroundError:
        saved = True
    if saved is False:
        return (
            f"SwAV run {path.name} saved no model (save_models = false), so its prototypes cannot score "
            "new images; re-run it with save_models = true to see the prototype assignments"
        )
    return (
        f"SwAV run {path.name} has no {CHECKPOINT} (the run was interrupted or the file was removed); "
        "re-run it to see the prototype assignments"
    )


def load_model(path: str | Path) -> tuple[SwAV, Config, list[str]]:
    """The pretrained SwAV model of a run (eval mode), its config and the class names.

    A run that saved no model (``save_models = false``) is a :class:`DataNotFoundError` saying so.
    """
    folder = first_seed(path)
    if not has_model(path):
        raise DataNotFoundError(no_model_reason(path))
    file = folder / CHECKPOINT
    state, meta = load_checkpoint(file, metadata=MODEL_METADATA, optional_metadata={"classes": list[str]})
    if meta["experiment"] != EXPERIMENT:
        raise CheckpointError(f"{file} is not a SwAV checkpoint written by this playground")
    config = build_config(Config, normalised(meta["config"], str(file)), str(file))
    channels = meta["in_channels"]
    model = build_loaded(
        file, state, lambda: build_swav(config.encoder(channels), config.representation_dim, config.swav)
    )
    return model.eval(), config, meta.get("classes", [])


def load_examples(
    path: str | Path, prototypes: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """``(examples (K, m, C, H, W), class counts (K, C), class names)`` of a run's prototypes; with
    ``prototypes``, K must be that many (the model's)."""
    file = first_seed(path) / EXAMPLES_FILE
    specs = {
        "examples": TensorSpec((prototypes or "K", None, None, None, None), "number"),
        "counts": TensorSpec((prototypes or "K", None), "number"),
    }
    state, meta = load_checkpoint(file, tensors=specs, optional_metadata={"classes": list[str]})
    if state["examples"].shape[2] not in (1, 3):
        raise CheckpointError(
            f"{file}: the prototype examples have {state['examples'].shape[2]} channels, not 1 or 3"
        )
    return state["examples"], state["counts"], meta.get("classes", [])


# --------------------------------------------------------------------- what the page draws


def class_name(classes: list[str], index: int) -> str:
    """Class ``index``'s name, or the index itself when the run named fewer classes."""
    return classes[index] if 0 <= index < len(classes) else str(index)


@dataclass(frozen=True)
class ProbeCurve:
    """One initialisation's test accuracy against the fraction of labels, over seeds."""

    init: str  # "swav", "supervised", "random_init"...
    fractions: list[float]  # linear probe: label fractions, ascending
    probe: Band  # linear-probe accuracy, mean ± std over seeds
    shots: list[float]  # fine-tuning (low-shot): label fractions, ascending (empty: not fine-tuned)
    tuned: np.ndarray | None  # fine-tuned accuracy, the mean over seeds (None without shots)


def probe_curves(probes: list[dict]) -> list[ProbeCurve]:
    """Per initialisation (in the run's order) its probe and fine-tuning curves over the seeds of
    :func:`load_probes`."""
    curves = []
    for init in probes[0]["linear_probe"]:
        fractions = sorted(probes[0]["linear_probe"][init])
        shots = sorted(probes[0]["lowshot"].get(init, {}))
        curves.append(
            ProbeCurve(
                init,
                fractions,
                band([[p["linear_probe"][init][f] for f in fractions] for p in probes]),
                shots,
                band([[p["lowshot"][init][f] for f in shots] for p in probes]).mean if shots else None,
            )
        )
    return curves


@dataclass(frozen=True)
class PrototypeMatch:
    """One prototype an image is assigned to: its index, probability and the class it mostly holds."""

    prototype: int
    probability: float
    majority_class: int  # the class most of the prototype's test images have (from the examples file)


def top_prototypes(
    scores: torch.Tensor, temperature: float, counts: torch.Tensor, top: int = 3
) -> list[list[PrototypeMatch]]:
    """Per image, its ``top`` most probable prototypes, most probable first.

    ``scores``: cosine scores ``(N, K)`` (:meth:`SwAV.prototype_scores`), turned into probabilities by a
    softmax at ``temperature``; ``counts``: class counts per prototype ``(K, C)`` (:func:`load_examples`).
    """
    probabilities = (scores / temperature).softmax(1)
    majority = counts.argmax(1)
    best = probabilities.topk(min(top, probabilities.shape[1]), dim=1)
    return [
        [PrototypeMatch(int(k), float(v), int(majority[k])) for v, k in zip(values, indices)]
        for values, indices in zip(best.values, best.indices)
    ]


def prototype_examples(examples: torch.Tensor, prototype: int) -> list[torch.Tensor]:
    """The test images prototype ``prototype`` holds (``examples`` ``(K, m, C, H, W)`` from
    :func:`load_examples`), without the all-zero slots that pad a prototype holding fewer than ``m``."""
    return [image for image in examples[prototype] if image.abs().sum() > 0]
