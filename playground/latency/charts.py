"""The latency benchmark's charts, each built once from a run's result rows (one per variant and batch
size, as :func:`playground.latency.report.rows` makes them and ``results.json`` keeps them): the report
saves them as PNG, the page draws them live for the batch size it shows."""

from __future__ import annotations

from playground.core.charts import GREY, Chart, Panel, Trace

BACKENDS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}  # one series (and colour) per backend


def rows_at(rows: list[dict], batch: int) -> list[dict]:
    """The rows measured at ``batch``, in the run's variant order."""
    return [row for row in rows if int(row["batch"]) == batch]


def pareto_front(rows: list[dict], accuracy: str = "accuracy") -> list[str]:
    """The variants no other variant beats on both p50 latency and ``accuracy``, fastest first."""
    front, best = [], float("-inf")
    for row in sorted(rows, key=lambda r: (r["p50_ms"], -r[accuracy])):
        if row[accuracy] > best:
            front.append(row["variant"])
            best = row[accuracy]
    return front


def _by_backend(rows: list[dict], accuracy: str) -> list[Trace]:
    """One scatter per backend: p50 against ``accuracy``, each point labelled with its variant."""
    traces = []
    for index, (backend, label) in enumerate(BACKENDS.items()):
        mine = [row for row in rows if row["backend"] == backend]
        if mine:
            x, y = [row["p50_ms"] for row in mine], [row[accuracy] for row in mine]
            traces.append(Trace("scatter", label, x, y, text=[row["variant"] for row in mine], color=index))
    return traces


# (key, panel title, axis label): with labels, accuracy and corrupted accuracy; without, the agreement
# with the reference and how well far-OOD images are still told apart
WITH_LABELS = (
    ("accuracy", "Test accuracy", "test accuracy"),
    ("ood_accuracy", "Corrupted images", "accuracy"),
)
WITHOUT_LABELS = (
    ("agreement", "Agreement with the reference", "argmax agreement"),
    ("ood_auroc_msp", "Far-OOD detection (MSP)", "AUROC"),
)


def pareto_chart(rows: list[dict], batch: int) -> Chart:
    """Test accuracy (top, with the Pareto front) and corrupted-test accuracy (bottom) against p50
    latency at ``batch`` (log scale): two panels, each with its own scale, so variants a tenth of a point
    apart stay apart. A run without labels plots the agreement with the reference and the far-OOD AUROC."""
    shown = rows_at(rows, batch)
    labelled = all(row.get("accuracy") is not None for row in shown)
    (top, top_title, top_axis), (low, low_title, low_axis) = WITH_LABELS if labelled else WITHOUT_LABELS
    by_name = {row["variant"]: row for row in shown}
    front = [by_name[name] for name in pareto_front(shown, top)]
    x, y = [row["p50_ms"] for row in front], [row[top] for row in front]
    line = Trace("line", "Pareto front", x, y, color=GREY, dash=True)
    x_label = f"p50 latency at batch {batch} (ms, log scale)"
    panels = [
        Panel([*_by_backend(shown, top), line], top_title, x_label, top_axis, log_x=True),
        Panel(_by_backend(shown, low), low_title, x_label, low_axis, log_x=True),
    ]
    title = f"{top_title} against p50 latency at batch {batch}"
    return Chart("pareto", panels, title=title, columns=1, height=300)


def latency_chart(rows: list[dict], batch: int) -> Chart:
    """p50 and p99 latency of every variant at ``batch``."""
    shown = rows_at(rows, batch)
    names = [row["variant"] for row in shown]
    bars = [Trace("bar", stat, names, [row[f"{stat}_ms"] for row in shown]) for stat in ("p50", "p99")]
    panel = Panel(bars, x_label="variant", y_label="ms")
    return Chart("latency", [panel], title=f"p50 and p99 latency at batch {batch}", columns=1, height=420)


def charts(rows: list[dict], batch: int) -> list[Chart]:
    """Accuracy against latency (``pareto``) and the latency bars (``latency``) at ``batch``."""
    return [pareto_chart(rows, batch), latency_chart(rows, batch)]
