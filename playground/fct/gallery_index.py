"""A FAISS index per gallery version (faiss-cpu), built from the version's shards and kept beside them.

Kinds (chosen per gallery at ``create``):

- ``flat``: ``IndexFlatL2``, exact; the same ranking as comparing the query with every vector.
- ``hnsw``: ``IndexHNSWFlat`` (Malkov and Yashunin, "Efficient and robust approximate nearest
  neighbor search using Hierarchical Navigable Small World graphs", TPAMI 2018): a graph of
  ``M = 32`` links per vector searched greedily from the top layer down, for galleries of millions
  where an exact scan is too slow; approximate, and slower to build.

``VERSION/index-<kind>.faiss`` is written whole, and ``VERSION/index.json`` records its SHA-256 and
a fingerprint of the shards it was built from (name, size, modification time). :func:`version_index`
rebuilds the index whenever the fingerprint has changed (images added, vectors backfilled, a shard
repaired), and never hands a file to FAISS's reader unless its digest is the recorded one: FAISS
reads its own binary format, so only files this module wrote are opened.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from playground.core.checkpoint import write_json_whole
from playground.errors import ConfigError
from playground.fct.model_pack import file_digest

INDEX_KINDS = ("flat", "hnsw")
HNSW_LINKS = 32


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ConfigError("the gallery's index needs faiss-cpu: pip install faiss-cpu") from None
    return faiss


def build_index(vectors: torch.Tensor, kind: str = "flat"):
    """A FAISS L2 index over ``vectors`` (N, D), row i of the index being vector i."""
    if kind not in INDEX_KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; choose {' or '.join(INDEX_KINDS)}")
    faiss = _faiss()
    dim = int(vectors.shape[1])
    index = faiss.IndexFlatL2(dim) if kind == "flat" else faiss.IndexHNSWFlat(dim, HNSW_LINKS)
    index.add(np.ascontiguousarray(vectors.float().numpy()))
    return index


def search_index(index, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(distances, rows)`` of the ``k`` nearest vectors to each query, nearest first (Euclidean)."""
    k = min(k, index.ntotal)
    squared, rows = index.search(np.ascontiguousarray(queries.float().numpy()), k)
    return torch.from_numpy(squared).clamp_min(0).sqrt(), torch.from_numpy(rows).long()


def shards_fingerprint(shards: list[Path]) -> str:
    """What the index was built from: each shard's name, size and modification time."""
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in shards]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()


def _read_saved(folder: Path, kind: str, fingerprint: str):
    """The saved index when it is this kind, built from these shards and untouched since; else None."""
    try:
        record = json.loads((folder / "index.json").read_text())
        file = folder / f"index-{kind}.faiss"
        if record.get("kind") != kind or record.get("shards") != fingerprint:
            return None
        if file_digest(file, 64) != record.get("sha256"):
            return None
    except (OSError, ValueError, AttributeError):
        return None
    return _faiss().read_index(str(file))


def version_index(folder: Path, shards: list[Path], read_vectors, kind: str = "flat"):
    """The version's index: the saved one when still valid, else built from ``read_vectors()`` and
    saved (the file written whole, then its record)."""
    fingerprint = shards_fingerprint(shards)
    index = _read_saved(folder, kind, fingerprint)
    if index is not None:
        return index
    index = build_index(read_vectors(), kind)
    file = folder / f"index-{kind}.faiss"
    tmp = file.with_name(f".{file.name}.{os.getpid()}")
    _faiss().write_index(index, str(tmp))
    tmp.replace(file)
    record = {
        "kind": kind,
        "sha256": file_digest(file, 64),
        "shards": fingerprint,
        "vectors": int(index.ntotal),
    }
    write_json_whole(folder / "index.json", record)
    return index
