"""Plotly figures of the uncertainty page: per-sample predictions, their spread, score histograms."""

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import torch

MARGIN = dict(t=40, b=10, l=10, r=10)
COLOURS = px.colors.qualitative.T10  # distinct hues: sets and method rows must not look alike
SCORE_LABELS = {
    "msp": "MSP (−max p̄)",
    "max_logit": "max logit (−)",
    "entropy": "entropy",
    "energy": "energy",
    "mutual_information": "mutual information (BALD)",
    "variance": "member variance",
    "disagreement": "disagreement",
    "mahalanobis": "Mahalanobis",
    "knn": "KNN distance",
}


def short_label(name: str) -> str:
    return {"test": "test (in distribution)", "near": "near (held-out classes)"}.get(name, name)


def samples_heatmap(probs: torch.Tensor, classes: list[str], title: str, noun: str) -> go.Figure:
    """Samples × classes probabilities, with the mean over samples as the last row."""
    z = torch.cat([probs, probs.mean(0, keepdim=True)]).numpy()
    labels = [f"{noun} {i + 1}" for i in range(probs.shape[0])] + ["mean"]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=classes,
            y=labels,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            showscale=False,
            texttemplate="%{z:.2f}" if z.size <= 130 else None,
            textfont=dict(size=10),
            hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>",
        )
    )
    figure.update_xaxes(type="category")
    figure.update_yaxes(type="category", autorange="reversed")
    longest = max(len(str(name)) for name in classes)
    figure.update_layout(title=title, height=100 + 22 * len(labels) + 6 * min(longest, 12), margin=MARGIN)
    return figure


def spread_chart(probs: torch.Tensor, classes: list[str], title: str) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            x=classes,
            y=probs.mean(0).numpy(),
            marker_color="#4c78a8",
            error_y=dict(array=probs.std(0, unbiased=False).numpy(), visible=probs.shape[0] > 1),
            hovertemplate="%{x}: p̄ %{y:.3f}<extra></extra>",
        )
    )
    figure.update_xaxes(type="category")
    figure.update_layout(
        title=title, yaxis=dict(range=[0, 1.05], title="probability"), height=250, margin=MARGIN
    )
    return figure


def histogram_chart(
    names: list[str], reference: dict, value: float, threshold: float, score: str
) -> go.Figure:
    """Score histograms of the sets ``names`` with this image's score and the threshold marked."""
    everything = torch.cat([v.double() for v in reference.values()])
    low, high = float(everything.min()), float(everything.max())
    bins = dict(start=low, end=high, size=(high - low) / 60 or 1.0)
    figure = go.Figure()
    for colour, name in zip(COLOURS, names):
        figure.add_histogram(
            x=reference[name].numpy(),
            name=short_label(name),
            xbins=bins,
            histnorm="percent",
            opacity=0.55,
            marker_color=colour,
            visible=True if name != "corrupted" else "legendonly",
        )
    figure.add_vline(
        x=value,
        line_width=3,
        line_color="black",
        annotation_text=f"this image {value:.3g}",
        annotation_position="top right",
    )
    figure.add_vline(
        x=threshold,
        line_dash="dash",
        line_color="#d62728",
        annotation_text=f"threshold {threshold:.3g}",
        annotation_position="top right",
        annotation_yshift=-18,
        annotation_font_color="#d62728",
    )
    figure.update_layout(
        barmode="overlay",
        title=f"Where this image falls: {SCORE_LABELS.get(score, score)} by set",
        xaxis_title="OOD score (higher: more OOD)",
        yaxis_title="% of the set",
        height=380,
        margin=dict(t=60, b=10, l=10, r=10),
        legend=dict(orientation="h", y=-0.22),
    )
    return figure


def roc_figure(roc: dict, ood_results: dict, read_with: dict, set_name: str) -> go.Figure:
    """ROC curves of every method row against one OOD set; the legend gives each row's score and AUROC."""
    figure = go.Figure()
    for row, curves in roc.items():
        if set_name not in curves:
            continue
        fpr, tpr = curves[set_name]
        auroc = ood_results.get(row, {}).get(set_name, {}).get("auroc")
        name = row + (f" ({read_with[row]})" if read_with[row] != row else "")
        figure.add_scatter(
            x=fpr, y=tpr, mode="lines", name=name + (f" · {auroc:.3f}" if auroc is not None else "")
        )
    figure.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        line=dict(dash="dot", color="grey"),
        showlegend=False,
        hoverinfo="skip",
    )
    figure.add_vline(
        x=0.05,
        line_dash="dash",
        line_color="grey",
        annotation_text="95% of test kept",
        annotation_position="bottom right",
    )
    figure.update_layout(
        title=f"In-distribution test against {set_name} (legend: AUROC)",
        height=460,
        margin=MARGIN,
        colorway=COLOURS,
        legend=dict(
            x=0.98,
            y=0.02,
            xanchor="right",
            yanchor="bottom",
            font=dict(size=11),
            bgcolor="rgba(255,255,255,0.8)",
        ),
        xaxis=dict(title="false positive rate (in-distribution flagged)", range=[0, 1]),
        yaxis=dict(title="true positive rate (OOD flagged)", range=[0, 1.02]),
    )
    return figure


def reliability_figure(bins: dict, calibration: dict, label: str) -> go.Figure:
    """Accuracy against confidence of one method, on the test and the corrupted test set."""
    figure = go.Figure()
    for split, colour in (("test", "#4c78a8"), ("corrupted", "#f58518")):
        part = bins[split]
        edges, count = np.asarray(part["edges"]), np.asarray(part["count"])
        shown = count > 0
        ece = calibration.get(split, {}).get("ece")
        figure.add_bar(
            x=((edges[:-1] + edges[1:]) / 2)[shown],
            y=np.asarray(part["accuracy"])[shown],
            name=split + (f" · ECE {ece:.3f}" if ece is not None else ""),
            marker_color=colour,
            opacity=0.75,
            customdata=np.stack([np.asarray(part["confidence"])[shown], count[shown]], axis=1),
            hovertemplate="confidence %{customdata[0]:.3f}<br>accuracy %{y:.3f}<br>%{customdata[1]:.0f} "
            "images<extra></extra>",
        )
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="perfect calibration"
    )
    figure.update_layout(
        title=f"{label}: accuracy against confidence",
        barmode="group",
        bargap=0.1,
        height=460,
        margin=MARGIN,
        legend=dict(x=0.02, y=0.98, bgcolor="rgba(255,255,255,0.7)"),
        xaxis=dict(title="confidence (max p̄)", range=[0, 1]),
        yaxis=dict(title="accuracy", range=[0, 1.02]),
    )
    return figure
