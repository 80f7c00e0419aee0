"""Retrieval evaluation: CMC top-k and mean average precision over the full ranking.

Query and gallery are the same image set embedded by two (possibly different) models;
a query is never matched against its own gallery entry. For each query the gallery is
ranked by distance (L2 by default, as in the FCT paper's evaluation; or cosine), and

- CMC top-k: the fraction of queries with a same-class item among the first k results;
- AP: mean over the ranking positions r of the same-class items of precision@r,
  mAP is its mean over queries (queries with no same-class item are skipped).

Everything is vectorised and chunked over queries, so a 10k x 10k evaluation takes
seconds on a CPU while holding only ``chunk x N`` distances at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

Distance = Literal["l2", "cosine"]


def distances(query: torch.Tensor, gallery: torch.Tensor, distance: Distance = "l2") -> torch.Tensor:
    """Pairwise distances ``(Q, G)``: Euclidean, or 1 - cosine similarity."""
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery must be (N, D) with the same D, got "
            f"{tuple(query.shape)} and {tuple(gallery.shape)}"
        )
    query, gallery = query.float(), gallery.float()
    if distance == "cosine":
        return 1.0 - F.normalize(query, dim=1) @ F.normalize(gallery, dim=1).T
    if distance == "l2":
        squared = query.pow(2).sum(1, keepdim=True) - 2 * query @ gallery.T + gallery.pow(2).sum(1)
        return squared.clamp_min(0).sqrt()
    raise ValueError(f"unknown distance {distance!r}; choose l2 or cosine")


def _chunk_scores(dist: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor, topk: Sequence[int]):
    """Top-k hits and AP for the queries ``rows`` whose distances to the gallery are ``dist``."""
    dist[torch.arange(len(rows)), rows] = float("inf")  # a query never matches itself
    order = dist.argsort(dim=1)[:, :-1]  # drop the self entry, now last
    relevant = labels[order] == labels[rows, None]
    hits = relevant.float()
    first = {k: hits[:, :k].amax(dim=1) for k in topk}
    cumulative = hits.cumsum(dim=1)
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float32)
    n_relevant = hits.sum(dim=1)
    ap = (cumulative / ranks * hits).sum(dim=1) / n_relevant.clamp_min(1)
    return first, ap, n_relevant > 0


def retrieval_metrics(
    query: torch.Tensor,
    gallery: torch.Tensor,
    labels: torch.Tensor,
    distance: Distance = "l2",
    topk: Sequence[int] = (1, 5),
    chunk: int = 512,
    query_rows: torch.Tensor | None = None,
) -> dict[str, float]:
    """``{"top1", "top5", ..., "mAP"}``; ``labels`` are the gallery's.

    Query ``i`` is the image in gallery row ``query_rows[i]`` (by default every gallery image,
    in order), and that row is left out of its ranking."""
    if query_rows is None:
        query_rows = torch.arange(gallery.shape[0])
    if query.shape[0] != query_rows.shape[0] or labels.shape != (gallery.shape[0],):
        raise ValueError(
            f"query {tuple(query.shape)}, gallery {tuple(gallery.shape)}, labels {tuple(labels.shape)} "
            f"and query rows {tuple(query_rows.shape)} must describe the same images"
        )
    if gallery.shape[0] < 2:
        raise ValueError("retrieval needs at least 2 images")
    labels, query_rows = labels.cpu(), query_rows.cpu().long()
    top = {k: 0.0 for k in topk}
    ap_sum, valid = 0.0, 0
    for start in range(0, query.shape[0], chunk):
        rows = query_rows[start : start + chunk]
        first, ap, has_match = _chunk_scores(
            distances(query[start : start + chunk], gallery, distance).cpu(), rows, labels, topk
        )
        for k in topk:
            top[k] += first[k][has_match].sum().item()
        ap_sum += ap[has_match].sum().item()
        valid += int(has_match.sum())
    if valid == 0:
        raise ValueError("no query has a same-class item in the gallery")
    return {**{f"top{k}": top[k] / valid for k in topk}, "mAP": ap_sum / valid}


def nearest(
    query: torch.Tensor,
    gallery: torch.Tensor,
    k: int = 5,
    distance: Distance = "l2",
    exclude: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest gallery items ``(indices, distances)`` for each query row.

    ``exclude`` gives, per query, a gallery index to leave out (the query's own entry).
    """
    dist = distances(query, gallery, distance)
    if exclude is not None:
        dist[torch.arange(dist.shape[0]), exclude] = float("inf")
    values, indices = dist.topk(min(k, dist.shape[1]), dim=1, largest=False)
    return indices, values
