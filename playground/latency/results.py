"""Read latency benchmark runs back (section :data:`BENCHMARK` of ``results.json``) for the page and for
scripts; never measures.

``load_results`` gives ``{"hardware": {...}, "rows": [one per variant and batch], "checks":
{variant: {...}}}`` as :func:`playground.latency.report.benchmark_results` made it (runs made before the
one results file kept it as the whole of their ``results.json``: :data:`LEGACY_FILE`); the helpers below
turn it into tables (pandas), the Pareto front, the int8 verdicts and the slow-variant flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from playground.core.runs import RESULTS, RunInfo, list_runs, read_result
from playground.errors import DataFormatError
from playground.latency import charts, report

if TYPE_CHECKING:
    import pandas as pd

BENCHMARK = "benchmark"  # the results.json section: hardware, rows, checks
LEGACY_FILE = "results.json"  # where runs made before the sections kept them (the same name, no "format")
ROW_KEYS = ("variant", "batch", "p50_ms", "p99_ms", "accuracy", "ood_accuracy")
REFERENCE = "torch_fp32"


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
    checks, hardware = data.get("checks", {}), data.get("hardware", {})
    if not isinstance(checks, dict) or not isinstance(hardware, dict):
        raise DataFormatError(f"{file}: 'checks' and 'hardware' must be objects; the run folder is damaged")
    return {"hardware": hardware, "rows": rows, "checks": checks}


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


hardware_line = report.hardware_line
