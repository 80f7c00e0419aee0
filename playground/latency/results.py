"""Read latency benchmark runs back (section :data:`BENCHMARK` of ``results.json``) for the page and for
scripts; never measures.

``load_results`` gives ``{"hardware": {...}, "rows": [one per variant and batch], "checks":
{variant: {...}}, "skipped": {variant: why}}`` as :func:`playground.latency.report.benchmark_results` made it
(runs made before the one results file kept it as the whole of their ``results.json``: :data:`LEGACY_FILE`;
runs made before ``skipped`` was kept have ``{}``: :func:`skipped_variants` reads their report instead); the
helpers below turn it into tables (pandas), the Pareto front, the int8 verdicts, the slow-variant flags and
the trust flags (:func:`trust_flags`: too wide a spread, too few timed calls; see
:mod:`playground.latency.trust` for :data:`SPREAD_LIMIT` and :data:`MIN_CALLS` and why).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from playground.core.runs import RESULTS, RunInfo, list_runs, read_result, read_run_config
from playground.errors import DataFormatError, PlaygroundError
from playground.latency import charts, report, trust
from playground.latency.trust import TrustFlag

if TYPE_CHECKING:
    import pandas as pd

BENCHMARK = "benchmark"  # the results.json section: hardware, rows, checks
LEGACY_FILE = "results.json"  # where runs made before the sections kept them (the same name, no "format")
ROW_KEYS = ("variant", "batch", "p50_ms", "p99_ms", "accuracy", "ood_accuracy")
REFERENCE = "torch_fp32"
NO_REASON = "asked for, but the run recorded no reason it did not run"
SPREAD_LIMIT = trust.SPREAD_LIMIT  # largest std / p50 of a trusted latency (why: the trust module)
MIN_CALLS = trust.MIN_CALLS  # fewest timed calls behind a trusted latency


def find_latency_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The latency benchmark runs under ``root``, newest first."""
    from playground.latency.experiment import EXPERIMENT  # the experiment module imports this one

    return list_runs(root, EXPERIMENT)


def load_results(path: str | Path) -> dict:
    """A run's benchmark results: DataNotFoundError when missing, DataFormatError when damaged."""
    file = Path(path) / RESULTS
    data = read_result(path, BENCHMARK, legacy=LEGACY_FILE)
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise DataFormatError(f"{file} has no result rows; the run folder is damaged")
    for row in rows:
        missing = [key for key in ROW_KEYS if not isinstance(row, dict) or key not in row]
        if missing:
            raise DataFormatError(f"{file} has a row without {', '.join(missing)}; the run folder is damaged")
    checks, hardware, skipped = data.get("checks", {}), data.get("hardware", {}), data.get("skipped", {})
    if not all(isinstance(part, dict) for part in (checks, hardware, skipped)):
        raise DataFormatError(
            f"{file}: 'checks', 'hardware' and 'skipped' must be objects; the run folder is damaged"
        )
    return {"hardware": hardware, "rows": rows, "checks": checks, "skipped": skipped}


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as a DataFrame (one row per variant and batch size)."""
    import pandas as pd

    return pd.DataFrame(rows)


def batch_sizes(results: dict) -> list[int]:
    """The batch sizes the run measured, smallest first."""
    return sorted({int(row["batch"]) for row in results["rows"]})


def at_batch(results: dict, batch: int) -> pd.DataFrame:
    """One row per variant at ``batch``, with the speed-up over ``torch_fp32`` (its p50 over the
    variant's).
    """
    frame = results_frame(results["rows"])
    frame = frame[frame["batch"] == batch].reset_index(drop=True)
    reference = frame.loc[frame["variant"] == REFERENCE, "p50_ms"]
    if len(reference):
        frame.insert(
            frame.columns.get_loc("p50_ms"),
            "speedup_vs_torch_fp32",
            (float(reference.iloc[0]) / frame["p50_ms"]).round(2),
        )
    return frame


def pareto_front(frame: pd.DataFrame, accuracy: str = "accuracy") -> list[str]:
    """The variants no other variant beats on both p50 latency and ``accuracy``, fastest first."""
    return charts.pareto_front(frame.to_dict("records"), accuracy)


def _p50(results: dict, batch: int) -> dict[str, float]:
    return {row["variant"]: float(row["p50_ms"]) for row in results["rows"] if int(row["batch"]) == batch}


def slow_flags(results: dict, batch: int) -> list[dict]:
    """Every reduced-precision variant slower (p50 at ``batch``) than its fp32 counterpart, with the likely
    reason on the run's hardware (:func:`playground.latency.report.slow_reason`)."""
    p50 = _p50(results, batch)
    return [
        {
            "variant": name,
            "counterpart": reference,
            "p50_ms": p50[name],
            "counterpart_p50_ms": p50[reference],
            "reason": report.slow_reason(name, results["hardware"]),
        }
        for name, reference in report.COUNTERPART.items()
        if name in p50 and reference in p50 and p50[name] > p50[reference]
    ]


def overhead_note(results: dict, batch: int) -> str:
    """A warning when ``torch_fp32`` is so fast at ``batch`` that the timings measure per-call
    overhead; else "".
    """
    fp32 = _p50(results, batch).get(REFERENCE)
    if fp32 is None or fp32 >= report.OVERHEAD_MS:
        return ""
    return (
        f"fp32 eager takes {fp32:.2f} ms at batch {batch}, under {report.OVERHEAD_MS:g} ms: these timings "
        "measure per-call overhead more than compute."
    )


def checks_frame(results: dict) -> pd.DataFrame:
    """Parity against ``torch_fp32`` and int8 execution evidence, one row per variant."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "variant": name,
                "max_abs_diff": check.get("max_abs_diff"),
                "argmax_agreement": check.get("argmax_agreement"),
                "parity": report.PARITY_VERDICT[check.get("parity_ok")],
                "ran_int8": check.get("ran_int8"),
                "int8_evidence": check.get("int8_evidence") or "",
                "notes": check.get("notes") or "",
            }
            for name, check in results["checks"].items()
        ]
    )


def int8_verdicts(results: dict) -> list[tuple[str, bool, str]]:
    """``(variant, ran int8 kernels, evidence)`` for every int8 variant of the run."""
    return [
        (name, bool(check["ran_int8"]), check.get("int8_evidence") or "no evidence recorded")
        for name, check in results["checks"].items()
        if check.get("ran_int8") is not None
    ]


def compare_frame(runs: dict[str, dict], batch: int = 1) -> pd.DataFrame:
    """p50 at ``batch`` (NaN where it was not measured) and accuracy per variant per run, variants
    together.
    """
    import pandas as pd

    records = []
    for name, results in runs.items():
        frame = results_frame(results["rows"])
        for variant, rows in frame.groupby("variant", sort=False):
            at = rows.loc[rows["batch"] == batch, "p50_ms"]
            records.append(
                {
                    "variant": variant,
                    "run": name,
                    f"p50_ms_b{batch}": float(at.iloc[0]) if len(at) else None,
                    "accuracy": float(rows["accuracy"].iloc[0]),
                }
            )
    table = pd.DataFrame(records, columns=["variant", "run", f"p50_ms_b{batch}", "accuracy"])
    return table.sort_values(["variant", "run"], kind="stable").reset_index(drop=True)


def trust_flags(results: dict, batch: int) -> list[TrustFlag]:
    """The figures at ``batch`` that cannot be trusted: each latency (p50) whose spread is too wide or
    that rests on too few timed calls (or whose run did not record them), then each speed-up over
    ``torch_fp32`` computed from a flagged latency; each flag with a one-line ``reason``."""
    return trust.flags_at(results["rows"], batch, REFERENCE)


def with_trust(frame: pd.DataFrame, flags: list[TrustFlag]) -> pd.DataFrame:
    """``frame`` (one row per variant, as :func:`at_batch` gives it) with a ``trust`` column after the
    variant: "ok", or what is wrong with the row's latency and speed-up."""
    frame = frame.copy()
    frame.insert(1, "trust", [trust.cell(flags, variant) for variant in frame["variant"]])
    return frame


def trust_warning(flags: list[TrustFlag]) -> str:
    """Markdown naming the flagged figures and how to get trustworthy ones; "" when none is flagged."""
    return trust.warning(flags)


def skipped_variants(path: str | Path, results: dict) -> dict[str, str]:
    """Every variant the run was asked for that did not run, with the reason: as the results recorded
    it, else (a run made before they did) as its ``report.md`` states it, else :data:`NO_REASON` for a
    variant of the run's ``config.toml`` that has no result row."""
    skipped = dict(results.get("skipped") or {}) or _report_skipped(Path(path) / "report.md")
    ran = {row["variant"] for row in results["rows"]}
    for name in _asked_for(Path(path)):
        if name not in ran and name not in skipped:
            skipped[name] = NO_REASON
    return skipped


def _report_skipped(file: Path) -> dict[str, str]:
    """The "## Skipped variants" list of a report ("- name: why" lines); {} without one."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    _, found, section = text.partition("\n## Skipped variants\n")
    skipped = {}
    for line in section.split("\n## ")[0].splitlines() if found else []:
        name, colon, why = line.removeprefix("- ").partition(": ")
        if line.startswith("- ") and colon:
            skipped[name.strip()] = why.strip()
    return skipped


def _asked_for(path: Path) -> list[str]:
    """The variants in the run's ``config.toml`` (``methods``, or ``variants`` in older runs); [] when it
    cannot be read."""
    try:
        config = read_run_config(path).get("config", {})
    except PlaygroundError:
        return []
    names = config.get("methods", config.get("variants", [])) if isinstance(config, dict) else []
    return [str(name) for name in names] if isinstance(names, list) else []


hardware_line = report.hardware_line
