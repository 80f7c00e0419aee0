"""The learned detector's part of a pointcloud run's metrics and report.

Metric names: ``detect/<proposer>/<class>/ap_<bev|3d><50|70>`` and ``edits/<start>/<kind>_per_frame``
on the run's frames, the same under ``other_sensor/`` for the frames the other sensor saw;
``detector/latency/<backend>/<stage>_ms_per_100k_points`` (backend ``torch`` or ``onnxruntime``,
stage ``pillarize``, ``network``, ``decode`` or ``total``), ``detector/onnx_max_abs_difference``,
``detector/train_seconds`` and ``detector/final_loss``.
"""

from __future__ import annotations

import statistics

from playground.core.runs import Metrics, format_number, markdown_table
from playground.pointcloud.evaluation import EDIT_KINDS

DOMAINS = ("", "other_sensor/")
STAGES = ("pillarize", "network", "decode", "total")
BACKENDS = ("torch", "onnxruntime")


def add_detector_metrics(
    metrics: Metrics, timing: dict, train_seconds: float, losses: list[float] | None
) -> None:
    """The detector's latency per stage and backend, its ONNX parity, its training time and final loss."""
    for backend in BACKENDS:
        for stage in STAGES:
            metrics.add(
                f"detector/latency/{backend}/{stage}_ms_per_100k_points",
                timing[backend][stage],
                "ms",
                backend=backend,
                stage=stage,
                measure="ms_per_100k_points",
            )
    difference = timing["parity"]["max_abs_difference"]
    metrics.add("detector/onnx_max_abs_difference", difference, "logit", measure="onnx_parity")
    metrics.add("detector/train_seconds", train_seconds, "s", measure="train_seconds")
    if losses:
        final = statistics.fmean(losses[-min(20, len(losses)) :])
        metrics.add("detector/final_loss", final, "loss", "train", measure="final_loss")


def detector_sections(
    values: dict, labels: tuple[str, ...], settings, sensor, other_frames: int
) -> list[str]:
    """The report's sections: AP of both proposers on both sensors, the edits from each start on
    both sensors, and the latency table."""

    def cell(name: str, scale: float = 1.0) -> str:
        return format_number(values[name] * scale) if name in values else "n/a"

    ap_rows = [
        [
            "run's sensor"
            if not domain
            else f"other sensor ({sensor.rings} rings, noise {sensor.noise:g} m)",
            proposer,
            label,
            *(cell(f"{domain}detect/{proposer}/{label}/ap_{k}{round(100 * t)}", 100) for k, t in settings),
        ]
        for domain in DOMAINS
        for proposer in ("geometric", "learned")
        for label in labels
    ]
    ap_header = ["frames", "proposer", "class", *(f"AP {k.upper()} {t:g} (%)" for k, t in settings)]
    edit_rows = [
        [
            "run's sensor" if not domain else "other sensor",
            start,
            *(cell(f"{domain}edits/{start}/{kind}_per_frame") for kind in (*EDIT_KINDS, "edits")),
        ]
        for domain in DOMAINS
        for start in ("nothing", "geometric", "learned")
    ]
    latency_rows = [
        [backend, *(cell(f"detector/latency/{backend}/{stage}_ms_per_100k_points") for stage in STAGES)]
        for backend in BACKENDS
    ]
    return [
        "## The learned detector against the geometric proposals",
        "PointPillars' pillar encoder with a CenterPoint head, trained on domain-randomised synthetic scenes "
        f"(`detector.safetensors`, `detector.onnx`). The other sensor sees the same {other_frames} scenes "
        f"with {sensor.rings} rings, range noise {sensor.noise:g} m and dropout {sensor.dropout:g}.",
        markdown_table(ap_header, ap_rows),
        "## Edits per frame from each starting point",
        "The learned pre-labels are its boxes with confidence at least `detector.prelabel_score`.",
        markdown_table(["frames", "starting from", *EDIT_KINDS, "edits (all but accepted)"], edit_rows),
        "## The detector's latency (median ms per 100k points, this machine's CPU)",
        markdown_table(["backend", *STAGES], latency_rows),
        f"Largest difference between the PyTorch and ONNX Runtime head maps: "
        f"{cell('detector/onnx_max_abs_difference')}. Training took {cell('detector/train_seconds')} s "
        f"(final loss {cell('detector/final_loss')}).",
        "![training](detector_training.png)",
    ]
