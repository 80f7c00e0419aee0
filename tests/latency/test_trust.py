"""Trust flags on hand-made result rows: a latency with too wide a spread or too few timed calls is flagged
(exactly at the limits it is not), a speed-up from a flagged latency is flagged, missing fields read as
unknown; the same flags in report.md's table and warning."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from playground.core.timing import LatencyStats
from playground.latency import report, trust
from playground.latency import results as lat
from playground.latency.trust import MIN_CALLS, SPREAD_LIMIT, Concern


def timing(variant: str, p50: float, std: float, iters: int, batch: int = 1) -> dict:
    return {
        "variant": variant,
        "backend": "torch",
        "batch": batch,
        "iters": iters,
        "p50_ms": p50,
        "p99_ms": p50 * 2,
        "std_ms": std,
        "accuracy": 0.9,
        "ood_accuracy": 0.7,
    }


def results_of(*rows: dict) -> dict:
    return {"hardware": {}, "rows": list(rows), "checks": {}, "skipped": {}}


@pytest.mark.parametrize(
    "std, iters, concerns",
    [
        (SPREAD_LIMIT * 4.0, MIN_CALLS, ()),  # std / p50 exactly at the limit, exactly enough calls
        (SPREAD_LIMIT * 4.0 + 0.001, MIN_CALLS, (Concern.WIDE_SPREAD,)),
        (SPREAD_LIMIT * 4.0, MIN_CALLS - 1, (Concern.FEW_CALLS,)),
        (3.0, 5, (Concern.WIDE_SPREAD, Concern.FEW_CALLS)),
        (0.1, 500, ()),
    ],
)
def test_a_latency_is_flagged_only_past_the_limits(std, iters, concerns):
    flag = trust.latency_flag(timing("ort_fp32", 4.0, std, iters))
    assert (flag.concerns if flag else ()) == concerns
    if flag:
        assert flag.variant == "ort_fp32" and flag.batch == 1 and flag.is_latency and "\n" not in flag.reason


def test_the_testers_figures_flag_the_baseline_and_every_speed_up_from_it():
    """torch_fp32 at p50 192 ms, std 115 ms over 10 calls (the quick preset) and a 341x "speed-up"."""
    results = results_of(
        timing("torch_fp32", 192.0, 115.0, 10),
        timing("torch_compile", 0.563, 0.01, 400),
        timing("x", 2, 0.1, 400),
    )
    flags = lat.trust_flags(results, 1)
    baseline, *speedups = flags
    assert baseline.concerns == (Concern.WIDE_SPREAD, Concern.FEW_CALLS)
    assert "0.60 of the p50" in baseline.reason and "10 timed calls (fewer than 30)" in baseline.reason
    assert baseline.short == "std/p50 0.60, 10 calls"
    assert [(f.variant, f.figure, f.concerns) for f in speedups] == [
        ("torch_compile", "speedup_vs_torch_fp32", (Concern.FLAGGED_INPUT,)),
        ("x", "speedup_vs_torch_fp32", (Concern.FLAGGED_INPUT,)),
    ]
    assert "flagged p50 (torch_fp32's)" in speedups[0].reason
    frame = lat.with_trust(lat.at_batch(results, 1), flags)
    assert list(frame.columns[:2]) == ["variant", "trust"] and frame["speedup_vs_torch_fp32"][1] == 341.03
    assert list(frame["trust"]) == [
        "⚠ std/p50 0.60, 10 calls",
        "⚠ speed-up: flagged baseline",
        "⚠ speed-up: flagged baseline",
    ]
    warning = lat.trust_warning(flags)
    assert warning.startswith("**3 figure(s) cannot be trusted**")
    assert (
        "batch 1: p50 of torch_fp32 (std/p50 0.60, 10 calls); speed-ups over torch_fp32 of torch_compile, x"
        in (warning)
    )
    assert "--preset full" in warning and "--threads" in warning and "bench.min_iters" in warning


def test_a_flagged_variant_flags_its_own_speed_up_only_and_trusted_figures_say_ok():
    results = results_of(
        timing("torch_fp32", 4.0, 0.2, 200),
        timing("noisy", 2.0, 1.0, 200),
        timing("quiet", 2.0, 0.1, 200),
        timing("noisy", 20.0, 1.0, 200, batch=16),
    )
    flags = lat.trust_flags(results, 1)
    assert [(f.variant, f.figure) for f in flags] == [("noisy", "p50_ms"), ("noisy", "speedup_vs_torch_fp32")]
    assert "flagged p50 (its own)" in flags[1].reason
    assert list(lat.with_trust(lat.at_batch(results, 1), flags)["trust"]) == [
        "ok",
        "⚠ std/p50 0.50; speed-up: flagged own p50",
        "ok",
    ]
    assert lat.trust_flags(results, 16) == []  # no torch_fp32 at batch 16: no speed-up to flag
    assert lat.trust_warning([]) == ""


@pytest.mark.parametrize(
    "change, concerns, words",
    [
        ({"std_ms": None}, (Concern.SPREAD_UNKNOWN,), "spread unknown (no std_ms recorded)"),
        ({"std_ms": float("nan")}, (Concern.SPREAD_UNKNOWN,), "spread unknown"),
        ({"p50_ms": 0.0}, (Concern.SPREAD_UNKNOWN,), "no positive p50"),
        ({"iters": None}, (Concern.CALLS_UNKNOWN,), "calls unknown (no iters recorded)"),
    ],
)
def test_a_missing_field_reads_as_unknown_not_as_trusted(change, concerns, words):
    row = timing("torch_fp32", 4.0, 0.1, 200) | change
    row = {key: value for key, value in row.items() if value is not None}  # an older run: no such field
    flag = trust.latency_flag(row)
    assert flag.concerns == concerns and words in flag.reason


# --------------------------------------------------------------------- report.md


def variant(backend: str = "torch") -> SimpleNamespace:
    return SimpleNamespace(
        backend=backend,
        precision="fp32",
        size_mb=1.0,
        parity=None,
        parity_ok=True,
        ran_int8=None,
        int8_evidence="",
        notes="",
    )


def measured(p50: float, std: float, iters: int) -> dict:
    stats = {1: LatencyStats(1, iters, p50, p50, p50 * 2, p50, std, 1000 / p50)}
    return {"latency": stats, "accuracy": 0.9, "ood_accuracy": 0.7, "far_agreement": 1.0, "peak_mb": 1.0}


def test_the_report_names_the_flagged_figures_above_its_table_and_lists_skipped_variants():
    variants = {"torch_fp32": variant(), "ort_fp32": variant("onnxruntime")}
    results = {"torch_fp32": measured(192.0, 115.0, 10), "ort_fp32": measured(2.0, 0.1, 200)}
    config = SimpleNamespace(
        name="latency",
        batch_sizes=[1],
        width=8,
        depth=2,
        epochs=1,
        bench=SimpleNamespace(warmup=1, min_iters=10, min_seconds=0.2, max_seconds=3.0),
    )
    ctx = SimpleNamespace(skipped={"torch_fp16": "fp16 needs a GPU"}, export_note="ONNX export: dynamo")
    text = report.single_report(config, None, variants, results, ctx, {})
    warning, table = text.index("cannot be trusted"), text.index("| variant | trust |")
    assert warning < table and "--preset full" in text[warning:table]
    assert "| torch_fp32 | ⚠ b1: std/p50 0.60, 10 calls | torch |" in text
    assert "| ort_fp32 | ok | onnxruntime |" in text  # its speed-up is flagged in the warning, not the table
    assert "speed-ups over torch_fp32 of ort_fp32 (the baseline is flagged)" in text
    assert "## Skipped variants\n\n- torch_fp16: fp16 needs a GPU" in text
    kept = report.benchmark_results(variants, results, {}, ctx.skipped)
    assert kept["skipped"] == {"torch_fp16": "fp16 needs a GPU"}
    quiet = {"torch_fp32": measured(4.0, 0.1, 200), "ort_fp32": measured(2.0, 0.1, 200)}
    assert "cannot be trusted" not in report.single_report(config, None, variants, quiet, ctx, {})
