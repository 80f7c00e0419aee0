"""The labelling loop page's tables and charts, built from :func:`playground.label.summary.project_summary`.

- :func:`rounds_figure`: each round's pool as stacked bars, split by where each image stood: labelled
  by people before the round, auto-labelled, escalated to people (uncertain, seed and calibration
  picks), flagged OOD, deferred to a later round, and not scored (queued in an earlier round and not
  labelled yet, or no model to score with in the seed round). The bar's height is the pool.
- :func:`versions_figure`: each model version's held-out accuracy against the labels people had given
  when it was trained (training labels plus the held-out ones that measure it).
- :func:`annotators_figure`: per annotator, decisions per hour and the accuracy Dawid-Skene estimates
  from how they agree with the others.

The figures are plotly's (the loop writes no run report to save as PNG, and the shared
:class:`~playground.core.charts.Chart` has no stacked bars); the colours are its palette.
"""

from __future__ import annotations

import math
import time

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from playground.core.charts import GREY, PALETTE

# (column, colour) of each stacked segment, bottom to top
SEGMENTS = (
    ("labelled by people", PALETTE[4]),
    ("auto-labelled", PALETTE[0]),
    ("escalated", PALETTE[1]),
    ("OOD", PALETTE[2]),
    ("deferred", PALETTE[9]),
    ("not scored", "#DDDDDD"),
)
HEIGHT = 340
MARGIN = dict(t=50, b=10, l=10, r=10)


def _number(value) -> float | None:
    """``value`` as a finite float, else None (JSON's Infinity and NaN, missing figures)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------- rounds


def round_segments(entry: dict) -> dict[str, int]:
    """One round's pool split into :data:`SEGMENTS` (all zero for a round with no counts yet)."""
    counts = entry.get("counts") or {}
    segments = {
        "labelled by people": counts.get("labelled", 0),
        "auto-labelled": counts.get("auto", 0),
        "escalated": sum(counts.get(key, 0) for key in ("escalate", "seed", "calibration")),
        "OOD": counts.get("ood", 0),
        "deferred": counts.get("defer", 0),
    }
    segments["not scored"] = max(counts.get("pool", 0) - sum(segments.values()), 0)
    return segments


def _threshold_text(threshold: dict) -> str:
    if "note" in threshold:
        return "none (seed set)"
    confidence = _number(threshold.get("confidence"))
    if confidence is None:
        return "none certified" if threshold else ""
    return f"{confidence:.3f} (error ≤ {threshold['alpha']:g} w.p. {1 - threshold['delta']:g})"


def round_rows(rounds: list[dict]) -> list[dict]:
    """The rounds table: number, model, status, the segments, the auto-label threshold, time taken."""
    rows = []
    for entry in rounds:
        took = None
        if entry.get("ended_at") and entry.get("started_at"):
            took = round(entry["ended_at"] - entry["started_at"], 1)
        version = entry["model_version"]
        rows.append(
            {
                "round": entry["number"],
                "model": f"v{version}" if version else "none",
                "status": entry["status"],
                "pool": (entry.get("counts") or {}).get("pool"),
                **round_segments(entry),
                "threshold λ": _threshold_text(entry.get("threshold") or {}),
                "seconds": took,
                "error": entry.get("error", ""),
            }
        )
    return rows


def rounds_figure(rounds: list[dict]) -> go.Figure:
    """Each round with counts as one stacked bar of its pool (see the module docstring)."""
    counted = [entry for entry in rounds if entry.get("counts")]
    names = [f"round {entry['number']}" for entry in counted]
    segments = [round_segments(entry) for entry in counted]
    figure = go.Figure()
    for column, colour in SEGMENTS:
        values = [s[column] for s in segments]
        if any(values):
            figure.add_bar(name=column, x=names, y=values, marker_color=colour)
    figure.update_layout(
        barmode="stack",
        title="Where the pool's images went, per round",
        yaxis_title="images",
        height=HEIGHT,
        margin=MARGIN,
        legend=dict(traceorder="normal"),
    )
    if not counted:
        _empty(figure, "no finished round yet")
    return figure


# --------------------------------------------------------------------- model versions


def version_rows(versions: list[dict]) -> list[dict]:
    """The versions table: number, policy, parent, labels, held-out labels, accuracy, steps, seconds."""
    return [
        {
            "version": f"v{v['version']}",
            "policy": v.get("policy", ""),
            "from": f"v{v['parent']}" if v.get("parent") else "scratch",
            "training labels": v.get("labels"),
            "new labels": v.get("new_labels"),
            "held-out labels": v.get("held_out"),
            "held-out accuracy": _number(v.get("accuracy")),
            "steps": v.get("steps"),
            "seconds": v.get("seconds"),
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(v["created_at"])),
        }
        for v in versions
    ]


def versions_figure(versions: list[dict]) -> go.Figure:
    """Held-out accuracy (%) of each version against the labels people had given for it."""
    measured = [v for v in versions if _number(v.get("accuracy")) is not None]
    figure = go.Figure()
    figure.add_scatter(
        name="held-out accuracy",
        x=[v["labels"] + v["held_out"] for v in measured],
        y=[100 * v["accuracy"] for v in measured],
        text=[f"v{v['version']}" for v in measured],
        mode="lines+markers+text",
        textposition="top center",
        marker=dict(color=PALETTE[0], size=9),
        line=dict(color=PALETTE[0]),
    )
    figure.update_layout(
        title="Held-out accuracy per model version",
        xaxis_title="labels people gave (training + held-out)",
        yaxis_title="held-out accuracy (%)",
        yaxis_range=[0, 105],
        height=HEIGHT,
        margin=MARGIN,
        showlegend=False,
    )
    if not measured:
        _empty(figure, "no version measured yet: people label held-out images in every round")
    return figure


# --------------------------------------------------------------------- annotators


def annotator_rows(annotators: list[dict]) -> list[dict]:
    return [
        {
            "annotator": a["annotator"],
            "decisions": a["decisions"],
            "per hour": round(a["per_hour"], 1),
            "estimated accuracy": _number(a.get("estimated_accuracy")),
        }
        for a in annotators
    ]


def annotators_figure(annotators: list[dict]) -> go.Figure:
    """Two bar panels: decisions per hour, and Dawid-Skene's estimated accuracy (%) per annotator."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["Decisions per hour", "Estimated accuracy (Dawid-Skene)"],
        horizontal_spacing=0.12,
    )
    names = [a["annotator"] for a in annotators]
    figure.add_bar(x=names, y=[a["per_hour"] for a in annotators], marker_color=PALETTE[0], row=1, col=1)
    rated = [a for a in annotators if _number(a.get("estimated_accuracy")) is not None]
    figure.add_bar(
        x=[a["annotator"] for a in rated],
        y=[100 * a["estimated_accuracy"] for a in rated],
        marker_color=PALETTE[4],
        row=1,
        col=2,
    )
    figure.update_yaxes(title_text="decisions per hour", row=1, col=1)
    figure.update_yaxes(title_text="estimated accuracy (%)", range=[0, 105], row=1, col=2)
    figure.update_layout(height=HEIGHT, margin=MARGIN, showlegend=False)
    if not annotators:
        _empty(figure, "nobody has labelled anything yet")
    elif not rated:
        _empty(figure, "estimated once two or more people label", x=0.78)
    return figure


def agreement_rows(agreement: dict) -> list[dict]:
    """Krippendorff's alpha and the share of agreeing label pairs, overall then per class."""
    if agreement.get("alpha") is None and "per_class" not in agreement:
        return []
    rows = [_agreement_row("all classes", agreement)]
    for figures in (agreement.get("per_class") or {}).values():
        rows.append(_agreement_row(figures["class"], figures))
    return rows


def _agreement_row(name: str, figures: dict) -> dict:
    return {
        "classes": name,
        "alpha": _number(figures.get("alpha")),
        "percent agreement": _number(figures.get("percent_agreement")),
        "note": figures.get("reason") or "",
    }


def _empty(figure: go.Figure, text: str, x: float = 0.5) -> None:
    figure.add_annotation(
        text=text, x=x, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(color=GREY)
    )
