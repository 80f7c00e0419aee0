"""Metrics, the results (rows, checks, hardware) and their CSV, and the Markdown report of a latency
benchmark run."""

from __future__ import annotations

import csv
import io
import math

from playground.core.runs import Metrics, RunDir, markdown_table
from playground.latency import trust
from playground.latency.variants import TOLERANCE, Variant

COUNTERPART = {
    "torch_int8": "torch_fp32",
    "ort_int8_dynamic": "ort_fp32",
    "ort_int8_static": "ort_fp32",
    "ort_int8_entropy": "ort_fp32",
    "ort_int8_percentile": "ort_fp32",
    "torch_bf16": "torch_fp32",
    "ort_fp16": "ort_fp32",
    "torch_fp16": "torch_fp32",
}
SLOW_REASONS = {
    "ort_int8_dynamic": "dynamic quantization re-quantizes every activation at run time "
    "(DynamicQuantizeLinear) and ConvInteger has no fused VNNI kernel in ORT's CPU provider; "
    "use static QDQ for CNNs",
    "torch_int8": "the quantized graph runs only after inductor fuses it into oneDNN kernels; "
    "small batches pay per-op quantize/dequantize overhead",
    "ort_fp16": "ORT's CPU provider has no fp16 Conv: it casts back to fp32 around every op",
    "ort_int8_static": "quantize/dequantize at the graph's edges and per-call overhead outweigh the int8 "
    "arithmetic on a model this small",
}
PARITY_VERDICT = {
    True: "within tolerance",
    False: "outside tolerance",
    None: "another model (agreement only)",
}
OVERHEAD_MS = 2.0  # below this fp32 latency at batch 1, timings measure overhead more than compute


def slow_reason(name: str, info: dict) -> str:
    """The likely reason ``name`` is slower than its fp32 counterpart on this hardware."""
    if name == "torch_bf16":
        flags = info.get("cpu_flags", {})
        if flags.get("avx512_bf16") or flags.get("amx_bf16") or info.get("gpu"):
            return (
                "the hardware has bf16 arithmetic, so autocast's casts around every op cost more than they "
                "save on a model this small"
            )
        return "without AVX512-BF16 or AMX, bf16 convolutions are emulated"
    return SLOW_REASONS.get(name, "see the notes in the checks table")


# bench/<variant>/<name>: (unit, split); timings, sizes and counts are about no data split
PER_VARIANT = {
    "accuracy": ("fraction", "test"),  # with labels only (the test set, or the team's eval folder)
    "ece": ("fraction", "test"),
    "ood_accuracy": ("fraction", "test_corrupted"),  # the corrupted copy of the test set
    "agreement": ("fraction", "test"),  # argmax agreement with the reference variant
    "far_agreement": ("fraction", "test"),  # with the reference, on the far-OOD set's test images
    "ood_auroc_msp": ("", "test"),  # telling far images from in-distribution ones
    "ood_auroc_energy": ("", "test"),
    "peak_mb": ("MiB", ""),
    "compat_map": ("", "test"),  # the project CNN's embedder against its fp32 gallery (latency.compat)
    "compat_map_ratio": ("fraction", "test"),
    "compat_top1": ("fraction", "test"),
}


def metrics_of(config, variants: dict[str, Variant], results: dict[str, dict]) -> Metrics:
    """``bench/<variant>/...`` records tagged ``variant``, ``measure`` and, per batch, ``batch_size``."""
    metrics = Metrics()
    for name, result in results.items():
        key, variant = f"bench/{name}", variants[name]
        for batch, stats in result["latency"].items():
            at = dict(variant=name, batch_size=int(batch))
            for stat in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms"):
                metrics.add(f"{key}/b{batch}/{stat}", getattr(stats, stat), "ms", **at, measure=stat)
            metrics.add(
                f"{key}/b{batch}/throughput", stats.throughput, "images/s", **at, measure="throughput"
            )
        for measure, (unit, split) in PER_VARIANT.items():
            if result.get(measure) is not None:
                metrics.add(f"{key}/{measure}", result[measure], unit, split, variant=name, measure=measure)
        metrics.add(f"{key}/size_mb", variant.size_mb, "MB", variant=name, measure="size_mb")
        if "macs" in result:
            metrics.add(f"{key}/macs", result["macs"], "MACs", variant=name, measure="macs")
            metrics.add(f"{key}/params", result["params"], "parameters", variant=name, measure="params")
        if variant.parity is not None:  # against torch_fp32's logits on test images
            for measure, unit in (("max_abs_diff", ""), ("argmax_agreement", "fraction")):
                value = getattr(variant.parity, measure)
                metrics.add(f"{key}/parity/{measure}", value, unit, "test", variant=name, measure=measure)
        if variant.ran_int8 is not None:
            metrics.add(f"{key}/ran_int8", float(variant.ran_int8), variant=name, measure="ran_int8")
    _add_speedups(metrics, results, min(config.batch_sizes))
    return metrics


def _add_speedups(metrics: Metrics, results: dict, batch: int) -> None:
    """``bench/<v>/b<batch>/speedup_vs_<ref>``: the reference's p50 over the variant's."""
    for reference in ("torch_fp32", "ort_fp32"):
        if reference not in results:
            continue
        base = results[reference]["latency"][batch].p50_ms
        for name, result in results.items():
            if name != reference:
                metrics.add(
                    f"bench/{name}/b{batch}/speedup_vs_{reference}",
                    base / result["latency"][batch].p50_ms,
                    "x",
                    variant=name,
                    batch_size=int(batch),
                    reference=reference,
                    measure="speedup",
                )


def rows(variants: dict[str, Variant], results: dict) -> list[dict]:
    """One flat row per variant and batch size (the CSV)."""
    out = []
    for name, result in results.items():
        variant = variants[name]
        for batch, stats in result["latency"].items():
            out.append(
                {
                    "variant": name,
                    "backend": variant.backend,
                    "precision": variant.precision,
                    "batch": batch,
                    **{k: round(v, 4) for k, v in stats.to_dict().items() if k != "batch"},
                    **{key: _rounded(result.get(key)) for key in QUALITY_COLUMNS},
                    "size_mb": round(variant.size_mb, 3),
                    "peak_mb": round(result["peak_mb"], 1),
                }
            )
    return out


QUALITY_COLUMNS = (
    "accuracy",
    "ood_accuracy",
    "agreement",
    "far_agreement",
    "ece",
    "ood_auroc_msp",
    "ood_auroc_energy",
    "compat_map_ratio",  # the project CNN's compressed embedders against the fp32 gallery
)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _cell(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def slow_int8_flags(results: dict, batch: int, info: dict | None = None) -> list[str]:
    """Every reduced-precision variant slower than its fp32 counterpart, with the likely reason."""
    flags = []
    if "torch_fp32" in results and results["torch_fp32"]["latency"][batch].p50_ms < OVERHEAD_MS:
        flags.append(
            f"- fp32 eager takes {results['torch_fp32']['latency'][batch].p50_ms:.2f} ms at batch {batch}, "
            f"under {OVERHEAD_MS:g} ms: these timings measure per-call overhead more than compute."
        )
    for name, reference in COUNTERPART.items():
        if name in results and reference in results:
            mine, theirs = results[name]["latency"][batch].p50_ms, results[reference]["latency"][batch].p50_ms
            if mine > theirs:
                flags.append(
                    f"- **{name} is slower than {reference}** at batch {batch} "
                    f"({mine:.2f} vs {theirs:.2f} ms p50). Likely: {slow_reason(name, info or {})}."
                )
    return flags


def benchmark_results(
    variants: dict[str, Variant], results: dict, info: dict, skipped: dict[str, str] | None = None
) -> dict:
    """What the run keeps in ``results.json`` (section :data:`playground.latency.results.BENCHMARK`):
    the hardware, the rows (:func:`rows`), each variant's checks with its parity explanation, and each
    variant asked for that did not run with the reason (``skipped``)."""
    return {
        "hardware": info,
        "rows": rows(variants, results),
        "checks": {
            n: {**_check_of(v), "explanation": parity_explanation(n, v, results)} for n, v in variants.items()
        },
        "skipped": dict(skipped or {}),
    }


def write_csv(run_dir: RunDir, table: list[dict]) -> None:
    """``results.csv``: the rows, for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows(table)
    (run_dir.path / "results.csv").write_text(buffer.getvalue(), encoding="utf-8")


def _check_of(variant: Variant) -> dict:
    parity = variant.parity
    return {
        "max_abs_diff": parity.max_abs_diff if parity else None,
        "mean_abs_diff": parity.mean_abs_diff if parity else None,
        "logit_range": parity.logit_range if parity else None,
        "argmax_agreement": parity.argmax_agreement if parity else None,
        "parity_ok": variant.parity_ok,
        "ran_int8": variant.ran_int8,
        "int8_evidence": variant.int8_evidence,
        "notes": variant.notes,
    }


def results_table(variants: dict, results: dict, batches: list[int], flags: list | None = None) -> str:
    """One row per variant: p50 / p99 at every batch size, accuracies, size, MACs, and (with ``flags``,
    :func:`trust_flags`) whether its latencies can be trusted."""
    headers = [
        "variant",
        *(["trust"] if flags is not None else []),
        "backend",
        *(f"p50 / p99 ms, b{b}" for b in batches),
        "accuracy",
        "corrupted acc.",
        "agreement",
        "ECE",
        "far-OOD agreement",
        "OOD AUROC (MSP / energy)",
        "size MB",
        "MMACs",
    ]
    body, latencies = [], [flag for flag in flags or [] if flag.is_latency]  # no speed-up column here
    for name, result in results.items():
        latency = result["latency"]
        macs = f"{result['macs'] / 1e6:.1f}" if "macs" in result else "-"
        body.append(
            [
                name,
                *([trust.cell(latencies, name, with_batch=True)] if flags is not None else []),
                variants[name].backend,
                *(f"{latency[b].p50_ms:.3f} / {latency[b].p99_ms:.3f}" for b in batches),
                _cell(result.get("accuracy")),
                _cell(result.get("ood_accuracy")),
                _cell(result.get("agreement")),
                _cell(result.get("ece")),
                _cell(result.get("far_agreement"), ".3f"),
                " / ".join(_cell(result.get(k), ".3f") for k in ("ood_auroc_msp", "ood_auroc_energy")),
                f"{variants[name].size_mb:.3f}",
                macs,
            ]
        )
    return markdown_table(headers, body)


def checks_table(variants: dict) -> str:
    body = []
    for name, v in variants.items():
        parity = (
            f"{v.parity.max_abs_diff:.2g} ({v.parity.mean_abs_diff:.2g}) / {v.parity.argmax_agreement:.4f}"
            if v.parity
            else "-"
        )
        verdict = PARITY_VERDICT[v.parity_ok]
        body.append([name, parity, verdict, v.int8_evidence or "-", v.notes or "-"])
    return markdown_table(
        [
            "variant",
            "max (mean) abs logit diff / argmax agreement vs torch_fp32",
            "parity",
            "int8 execution",
            "notes",
        ],
        body,
    )


def hardware_line(info: dict) -> str:
    """CPU, logical cores, torch threads and version, GPU, and the CPU flags that are present."""
    flags = ", ".join(k for k, v in info.get("cpu_flags", {}).items() if v) or "none detected"
    gpu = f"; GPU {info['gpu']}" if info.get("gpu") else ""
    return (
        f"{info.get('cpu', '?')}, {info.get('logical_cores', '?')} logical cores, torch threads "
        f"{info.get('torch_threads', '?')}, torch {info.get('torch_version', '?')}{gpu}; CPU flags: {flags}."
    )


PARITY_REASONS = {
    "int8": "int8 rounding: every activation tensor gets one scale, fixed on the calibration images, so the "
    "largest activations of a few images are clipped or coarsely rounded",
    "bf16": "bf16 keeps 8 bits of mantissa, so large logits move by a few hundredths of their size",
    "fp16": "fp16 keeps 11 bits of mantissa and overflows above 65,504",
    "fp32": "an fp32 conversion should match to float rounding: look for a graph or kernel difference",
}


def parity_explanation(name: str, v: Variant, results: dict) -> str | None:
    """For a variant outside its parity tolerance: by how much, on what scale, and why (else None)."""
    if v.parity_ok is not False:
        return None
    atol, agreement = TOLERANCE[v.precision]
    p, reference = v.parity, results.get("torch_fp32", {}).get("accuracy")
    share = p.max_abs_diff / p.logit_range if p.logit_range else math.inf
    accuracy = results.get(name, {}).get("accuracy")
    change = (
        f"; test accuracy {100 * (accuracy - reference):+.2f} points against torch_fp32"
        if accuracy is not None and reference is not None
        else ""
    )
    return (
        f"**{name}** is outside its {v.precision} tolerance (max |Δ| ≤ {atol:g}, argmax agreement "
        f"≥ {agreement:g}): max |Δ| {p.max_abs_diff:.3g} on logits spanning {p.logit_range:.3g} "
        f"({100 * share:.1f}% of the range), mean |Δ| {p.mean_abs_diff:.3g}, argmax agreement "
        f"{p.argmax_agreement:.4f} over {p.samples} images{change}. Likely: "
        f"{PARITY_REASONS.get(v.precision, 'see the notes in the checks table')}."
    )


def parity_explanations(variants: dict, results: dict) -> list[str]:
    """One Markdown line for each variant outside its parity tolerance."""
    found = (parity_explanation(name, v, results) for name, v in variants.items())
    return [f"- {line}" for line in found if line]


def distillation_section(config, results: dict) -> list[str]:
    """The KD student against the same student from scratch, when both ran."""
    if not {"student_scratch", "student_kd"} <= set(results):
        return []
    scratch, kd = results["student_scratch"]["accuracy"], results["student_kd"]["accuracy"]
    images = (
        f"{config.student_train_limit:,} training images"
        if config.student_train_limit
        else "every training image"
    )
    return [
        f"## Distillation\n\nStudent (width {config.student_width}) on {images} for "
        f"{config.student_epochs or config.epochs} epochs: from scratch {scratch:.4f}, "
        f"by KD from the benchmark CNN (α {config.kd_alpha:g}, τ {config.kd_temperature:g}) "
        f"{kd:.4f}: **{100 * (kd - scratch):+.2f} points**."
    ]


def trust_flags(variants: dict, results: dict, batches: list[int]) -> list[trust.TrustFlag]:
    """The latencies and speed-ups over torch_fp32 that cannot be trusted, at every batch size
    (:func:`playground.latency.trust.flags_at` on the rows the run keeps)."""
    table = rows(variants, results)
    return [flag for batch in batches for flag in trust.flags_at(table, batch)]


def single_report(
    config, metrics: Metrics, variants: dict, results: dict, ctx, info: dict, notes=(), sections=()
) -> str:
    """The run's report: the model and data (``notes``), the table, charts, checks, the verdict
    (``sections``: the pick and the share of the hardware's peak), flags and skipped variants."""
    batches = sorted(config.batch_sizes)
    skipped = "\n".join(f"- {name}: {why}" for name, why in ctx.skipped.items()) or "none"
    distrust = trust_flags(variants, results, batches)
    flags = slow_int8_flags(results, batches[0], info)
    bench = config.bench
    return (
        "\n\n".join(
            [
                f"# {getattr(config, 'model', '') or config.name}: latency and accuracy of every variant",
                "Hardware: " + hardware_line(info),
                "\n".join(f"- {note}" for note in notes),
                f"Each latency: {bench.warmup} warm-up calls, then at least {bench.min_iters} calls and "
                f"{bench.min_seconds:g} s (at most {bench.max_seconds:g} s). {ctx.export_note}.",
                *([trust.warning(distrust)] if distrust else []),
                results_table(variants, results, batches, distrust),
                "![Pareto](pareto.png)",
                "![Latency](latency.png)",
                "## Checks\n\n"
                + checks_table(variants)
                + "".join("\n\n" + line for line in parity_explanations(variants, results)),
                *distillation_section(config, results),
                *sections,
                "## Flags\n\n"
                + (
                    "\n".join(flags)
                    if flags
                    else "No reduced-precision variant is slower than its fp32 counterpart."
                ),
                "## Skipped variants\n\n" + skipped,
            ]
        )
        + "\n"
    )
