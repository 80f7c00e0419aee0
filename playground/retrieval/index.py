"""Exact cosine-similarity nearest-neighbour indexes over (training) embeddings.

Both indexes store L2-normalised embeddings, so the inner product is the cosine similarity
``s(q, e) = <q / |q|, e / |e|>``, and both are exact (no approximation):

- :class:`ExactIndex` — pure torch, one ``(chunk, N)`` similarity block at a time, so memory
  stays bounded by ``chunk_size * N`` whatever the number of queries;
- :class:`FaissIndex` — ``faiss.IndexFlatIP`` from the optional package ``faiss-cpu``.

``search(queries, k, exclude)`` returns ``(similarities, indices)``, both ``(Q, k)``, sorted by
descending similarity. ``exclude[i]`` is a database index that query ``i`` must never get back
(so a training sample never retrieves its own entry); ``-1`` excludes nothing.
:func:`build_index` picks the backend by name (``"torch"``, ``"faiss"`` or ``"auto"``).
"""

from __future__ import annotations

import importlib
import logging

import torch
import torch.nn.functional as F

from playground.errors import ConfigError, DataFormatError

log = logging.getLogger("playground.retrieval")
BACKENDS = ("auto", "torch", "faiss")
FAISS_HINT = "backend 'faiss' needs the optional package faiss-cpu: pip install faiss-cpu"
_auto_choice_logged = False


def check_database(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    """Raise DataFormatError/ConfigError unless ``embeddings`` (N, D) and ``labels`` (N,) fit together."""
    if embeddings.dim() != 2:
        raise DataFormatError(f"index embeddings must be 2-D (N, D), got shape {tuple(embeddings.shape)}")
    if embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise DataFormatError(
            f"cannot build an index from an empty database, got embeddings of shape "
            f"{tuple(embeddings.shape)}; pass at least one (N, D) embedding with D > 0"
        )
    if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        raise DataFormatError(
            f"index labels must have shape ({embeddings.shape[0]},) to match embeddings "
            f"{tuple(embeddings.shape)}, got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise DataFormatError(f"index labels must be integer class ids, got dtype {labels.dtype}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise DataFormatError(
            f"index labels must lie in [0, {num_classes}), got range "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    if not torch.isfinite(embeddings).all():
        raise DataFormatError("index embeddings contain NaN or infinite values")


class _BaseIndex:
    """What both backends share: the normalised database, its labels and argument checks."""

    def __init__(self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        embeddings, labels = torch.as_tensor(embeddings), torch.as_tensor(labels)
        check_database(embeddings, labels, num_classes)
        if not embeddings.is_floating_point():
            embeddings = embeddings.float()
        self.embeddings = F.normalize(embeddings.detach(), dim=1)
        self.labels = labels.to(device=embeddings.device, dtype=torch.int64)
        self.num_classes = int(num_classes)

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @property
    def dim(self) -> int:
        """The embedding dimension D."""
        return self.embeddings.shape[1]

    def _check_query(
        self, queries: torch.Tensor, k: int, exclude: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validate a search call; return the queries as a tensor and ``exclude`` as int64 (or None)."""
        queries = torch.as_tensor(queries)
        if queries.dim() != 2 or queries.shape[1] != self.dim:
            raise DataFormatError(
                f"queries must have shape (Q, {self.dim}) to match the index embeddings "
                f"{tuple(self.embeddings.shape)}, got {tuple(queries.shape)}"
            )
        if exclude is not None:
            exclude = torch.as_tensor(exclude, device=self.embeddings.device).long()
            if exclude.shape != (queries.shape[0],):
                raise DataFormatError(
                    f"exclude must have shape ({queries.shape[0]},) (one database index per "
                    f"query, -1 for none), got {tuple(exclude.shape)}"
                )
            if exclude.numel() and (int(exclude.min()) < -1 or int(exclude.max()) >= len(self)):
                raise DataFormatError(f"exclude entries must be -1 or a database index in [0, {len(self)})")
        excluding = exclude is not None and bool((exclude >= 0).any())
        available = len(self) - int(excluding)
        if k < 1 or k > available:
            detail = f"{len(self)} entries, one excluded per query" if excluding else f"{len(self)} entries"
            raise ConfigError(
                f"k={k} neighbours asked for, but the index can return 1 to {available} "
                f"({detail}); lower k or add entries to the database"
            )
        return queries, exclude


class ExactIndex(_BaseIndex):
    """Exact cosine-similarity search in torch, chunked over queries to bound memory."""

    def __init__(
        self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, chunk_size: int = 1024
    ) -> None:
        super().__init__(embeddings, labels, num_classes)
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = int(chunk_size)

    def search(
        self, queries: torch.Tensor, k: int, exclude: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(similarities, indices)`` of the ``k`` most similar entries, both ``(Q, k)``,
        best first.
        """
        queries, exclude = self._check_query(queries, k, exclude)
        queries = F.normalize(queries.to(self.embeddings), dim=1)
        sims, ids = [], []
        for start in range(0, queries.shape[0], self.chunk_size):
            block = queries[start : start + self.chunk_size] @ self.embeddings.T
            if exclude is not None:
                drop = exclude[start : start + self.chunk_size]
                rows = torch.nonzero(drop >= 0).squeeze(1)
                block = block.index_put(
                    (rows, drop[rows]), torch.tensor(float("-inf"), dtype=block.dtype, device=block.device)
                )
            top = block.topk(k, dim=1)
            sims.append(top.values)
            ids.append(top.indices)
        if not sims:
            empty = queries.new_zeros(0, k)
            return empty, empty.long()
        return torch.cat(sims), torch.cat(ids)


class FaissIndex(_BaseIndex):
    """Exact cosine-similarity search with ``faiss.IndexFlatIP`` (optional package ``faiss-cpu``)."""

    def __init__(self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        faiss = import_faiss()
        super().__init__(embeddings, labels, num_classes)
        self.index = faiss.IndexFlatIP(self.dim)
        self.index.add(self.embeddings.detach().cpu().float().contiguous().numpy())

    def search(
        self, queries: torch.Tensor, k: int, exclude: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(similarities, indices)`` of the ``k`` most similar entries, both ``(Q, k)``,
        best first.
        """
        queries, exclude = self._check_query(queries, k, exclude)
        device = self.embeddings.device
        unit = F.normalize(queries.detach().cpu().float(), dim=1).contiguous()
        extra = 1 if exclude is not None else 0
        sims, ids = self.index.search(unit.numpy(), k + extra)
        sims, ids = torch.from_numpy(sims).to(device), torch.from_numpy(ids).long().to(device)
        if exclude is not None:
            drop = ids == exclude.unsqueeze(1)
            drop[:, -1] |= ~drop.any(dim=1)  # nothing excluded in this row: drop the (k+1)-th instead
            keep = ~drop
            sims = sims[keep].view(-1, k)
            ids = ids[keep].view(-1, k)
        return sims.to(self.embeddings.dtype), ids


def import_faiss():
    """Import and return the optional ``faiss`` module, or raise ConfigError saying how to install it."""
    try:
        return importlib.import_module("faiss")
    except ImportError as error:
        raise ConfigError(FAISS_HINT) from error


def faiss_available() -> bool:
    """Whether the optional ``faiss`` package can be imported."""
    try:
        import_faiss()
    except ConfigError:
        return False
    return True


def build_index(
    embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, backend: str = "auto"
) -> ExactIndex | FaissIndex:
    """Build an exact cosine index: ``"torch"`` (ExactIndex), ``"faiss"`` (FaissIndex) or ``"auto"``.

    ``"auto"`` takes faiss when it is importable, else torch, and logs its choice once.
    """
    global _auto_choice_logged
    if backend not in BACKENDS:
        raise ConfigError(f"unknown retrieval backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "faiss" if faiss_available() else "torch"
        if not _auto_choice_logged:
            reason = "faiss is installed" if backend == "faiss" else "faiss-cpu is not installed"
            log.info("retrieval index backend 'auto' chose %r (%s)", backend, reason)
            _auto_choice_logged = True
    if backend == "faiss":
        return FaissIndex(embeddings, labels, num_classes)
    return ExactIndex(embeddings, labels, num_classes)
