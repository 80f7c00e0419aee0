"""FCT compatibility of a compressed embedder: can its embeddings still search a gallery embedded in fp32?

The project's CNN is an embedder as well as a classifier (``ModelOutput(embedding, logits)``). A retrieval
system that compresses its query model (bf16, fp16, int8) but keeps the gallery it embedded in fp32 is
doing what forward compatible training calls a model update (Ramanujan et al., "Forward Compatible
Training for Large-Scale Embedding Retrieval Systems", CVPR 2022): queries from the new model φ_new
against a gallery from the old one φ_old. Compatibility is measured as there: retrieval with the cross
pair against the old model with itself,

    mAP(φ_new(query), φ_old(gallery)) / mAP(φ_old(query), φ_old(gallery)),

here with φ_old the fp32 model and φ_new each reduced-precision variant, every image of the set a query
against all the others (:func:`playground.fct.retrieval.retrieval_metrics`, L2 distance as in the paper).
Each variant is built again from the embedding output (``SingleOutput(model, "embedding")``), with the
same calibration images, so int8 ranges are calibrated for the embedding rather than the logits.
"""

from __future__ import annotations

import dataclasses

import torch

from playground.core.runs import markdown_table
from playground.errors import ConfigError
from playground.fct.retrieval import retrieval_metrics
from playground.latency.onnx_export import SingleOutput
from playground.latency.variants import OTHER_MODELS, PRECISION, BuildContext, build_variant

BATCH = 256


def compressed(names) -> list[str]:
    """The reduced-precision variants among ``names`` (the ones whose embedding can drift)."""
    return [n for n in names if PRECISION.get(n) != "fp32" and n not in OTHER_MODELS]


def _embed(run, images: torch.Tensor) -> torch.Tensor:
    # on the CPU: a CUDA variant's embeddings are searched against a gallery that CPU-only variants share
    return torch.cat(
        [run(images[start : start + BATCH]).float().cpu() for start in range(0, len(images), BATCH)]
    )


def fct_compatibility(
    ctx: BuildContext, names: list[str], images: torch.Tensor, labels: torch.Tensor
) -> tuple[dict[str, dict], dict[str, str]]:
    """``({variant: {compat_map, compat_top1, compat_map_ratio}}, {variant: why it did not build})`` for
    the embedder variants of ``ctx.model`` named in ``names``; ``torch_fp32`` (the gallery's model) is
    the first row, its ratio 1 by definition."""
    folder = ctx.folder / "embedder"
    folder.mkdir(exist_ok=True)
    embed = dataclasses.replace(
        ctx,
        model=SingleOutput(ctx.model, "embedding"),
        folder=folder,
        others={},
        skipped={},
        export_note="",
        onnx_path=None,
    )
    reference = build_variant(embed, "torch_fp32")
    if reference is None:
        raise ConfigError(f"the fp32 embedder could not be built: {embed.skipped.get('torch_fp32')}")
    gallery = _embed(reference.run, images)
    base = retrieval_metrics(gallery, gallery, labels)
    rows = {"torch_fp32": {"compat_map": base["mAP"], "compat_top1": base["top1"], "compat_map_ratio": 1.0}}
    for name in names:
        variant = build_variant(embed, name)
        if variant is None:
            continue
        cross = retrieval_metrics(_embed(variant.run, images), gallery, labels)
        rows[name] = {
            "compat_map": cross["mAP"],
            "compat_top1": cross["top1"],
            "compat_map_ratio": cross["mAP"] / base["mAP"],
        }
    return rows, embed.skipped


def compat_section(rows: dict[str, dict], images: int) -> list[str]:
    """The report's section (nothing when compatibility was not measured)."""
    if len(rows) < 2:
        return []
    headers = ["variant", "mAP against the fp32 gallery", "ratio to fp32", "top-1"]
    body = [
        [name, f"{row['compat_map']:.4f}", f"{row['compat_map_ratio']:.4f}", f"{row['compat_top1']:.4f}"]
        for name, row in rows.items()
    ]
    return [
        "## FCT compatibility of the compressed embedder\n\n"
        f"Each variant's embeddings of {images} test images as queries against the same images embedded by "
        "torch_fp32 (the gallery a retrieval system already holds); a query never matches its own entry. "
        "Ratio: the cross mAP over fp32's own (1.0: the compressed model searches the old gallery as well as "
        "fp32 does).\n\n" + markdown_table(headers, body)
    ]
