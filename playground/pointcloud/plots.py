"""Bird's-eye-view figure of one frame: points coloured by height, ground-truth and proposed cuboids."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")  # reports are written headless (until this module becomes charts)
import matplotlib.pyplot as plt  # noqa: E402

from playground.pointcloud.cuboid import Cuboid

COLORS = {"car": "tab:blue", "pedestrian": "tab:orange", "pole": "tab:gray", "cyclist": "tab:purple"}


def _outline(ax, box: Cuboid, color: str, style: str, width: float) -> None:
    corners = box.bev_corners()
    loop = np.vstack([corners, corners[:1]])
    ax.plot(loop[:, 0], loop[:, 1], style, color=color, lw=width)
    front = corners[[0, 3]].mean(axis=0)  # the heading: centre to the middle of the front face
    ax.plot([box.center[0], front[0]], [box.center[1], front[1]], style, color=color, lw=width)


def bev_figure(
    points: np.ndarray,
    truth: list[Cuboid],
    proposals: list[Cuboid],
    extent: float = 35.0,
    title: str = "",
    max_points: int = 60_000,
):
    """Points within ``extent`` metres (subsampled to ``max_points``), ground truth as solid
    outlines, proposals dashed, both with a heading tick; the sensor at the origin."""

    points = np.asarray(points)
    near = points[(np.abs(points[:, 0]) <= extent) & (np.abs(points[:, 1]) <= extent)]
    if len(near) > max_points:
        near = near[np.linspace(0, len(near) - 1, max_points).astype(int)]
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.scatter(near[:, 0], near[:, 1], c=near[:, 2], s=0.2, cmap="viridis", vmin=-0.5, vmax=3.0, linewidths=0)
    for box in truth:
        _outline(ax, box, COLORS.get(box.label, "black"), "-", 1.6)
    for box in proposals:
        _outline(ax, box, "tab:red", "--", 1.0)
    ax.plot([0], [0], marker="^", color="black", ms=8)
    handles = [
        plt.Line2D([], [], color=c, label=f"truth: {n}")
        for n, c in COLORS.items()
        if any(b.label == n for b in truth)
    ] + [plt.Line2D([], [], color="tab:red", ls="--", label="proposal")]
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, forward)")
    ax.set_ylabel("y (m, left)")
    ax.set_title(title or "bird's-eye view")
    fig.tight_layout()
    return fig
