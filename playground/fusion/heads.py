"""Fusion heads: image features ``(N, C, h, w)`` plus context tokens ``(N, K, d)`` -> fused features.

Context tokens come from any source (a caption's sentence embedding, knowledge-graph entity
embeddings, a retrieved neighbourhood); :class:`ContextTokens` projects each source to ``d``
and tags it with a learned source embedding. Four ways to fuse, with c the masked mean token:

- ``concat``: F' = Conv1x1([F ; broadcast(c)])
- ``gating`` (gated multimodal unit, Arevalo et al. 2017): z = σ(W[pool(F) ; c]),
  F' = z ⊙ F + (1 − z) ⊙ broadcast(U c)
- ``film`` (Perez et al., "FiLM", 2018): (γ, β) = Linear(c), F' = (1 + γ) ⊙ F + β
- ``cross_attention`` (Vaswani et al. 2017): every pixel queries the tokens,
  F' = F + MHA(Q = F, K = V = tokens), masked where a token is padding.
"""

from __future__ import annotations

import torch
from torch import nn

from playground.errors import ConfigError, DataFormatError

FUSIONS = ("concat", "gating", "film", "cross_attention")


class ContextTokens(nn.Module):
    """Per-source linear projections to ``dim`` plus a learned source tag; concatenated tokens."""

    def __init__(self, source_dims: dict[str, int], dim: int) -> None:
        super().__init__()
        self.names = list(source_dims)
        self.project = nn.ModuleDict({name: nn.Linear(d, dim) for name, d in source_dims.items()})
        self.tag = nn.Parameter(torch.zeros(len(self.names), dim))

    def forward(self, context: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``context``: (tokens, mask) per source, flattened in ``names`` order."""
        if len(context) != 2 * len(self.names):
            raise DataFormatError(
                f"expected tokens and a mask for each of {self.names}, got {len(context)} tensors"
            )
        tokens, masks = [], []
        for i, name in enumerate(self.names):
            source, mask = context[2 * i], context[2 * i + 1]
            tokens.append(self.project[name](source) + self.tag[i])
            masks.append(mask.bool())
        mask = torch.cat(masks, 1)
        mask[:, 0] |= ~mask.any(1)  # a row with no valid token attends to its first (zero-context) token
        return torch.cat(tokens, 1), mask


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.float().unsqueeze(-1)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class FusionHead(nn.Module):
    """Fuse ``features (N, C, h, w)`` with ``tokens (N, K, d)`` by one of :data:`FUSIONS`."""

    def __init__(self, method: str, channels: int, token_dim: int, heads: int = 4) -> None:
        super().__init__()
        if method not in FUSIONS:
            raise ConfigError(f"unknown fusion {method!r}; choose one of {', '.join(FUSIONS)}")
        self.method = method
        if method == "concat":
            self.mix = nn.Conv2d(channels + token_dim, channels, kernel_size=1)
        elif method == "gating":
            self.gate, self.value = nn.Linear(channels + token_dim, channels), nn.Linear(token_dim, channels)
        elif method == "film":
            self.film = nn.Linear(token_dim, 2 * channels)
            nn.init.zeros_(self.film.weight), nn.init.zeros_(self.film.bias)
        else:
            self.keys = nn.Linear(token_dim, channels)
            self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
            self.norm = nn.LayerNorm(channels)

    def forward(self, features: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = features.shape
        if self.method == "cross_attention":
            return self._attend(features, tokens, mask)
        context = masked_mean(tokens, mask)
        if self.method == "concat":
            return self.mix(torch.cat([features, context[:, :, None, None].expand(-1, -1, height, width)], 1))
        if self.method == "gating":
            z = torch.sigmoid(self.gate(torch.cat([features.mean((2, 3)), context], 1)))[:, :, None, None]
            return z * features + (1 - z) * self.value(context)[:, :, None, None]
        gamma, beta = self.film(context).chunk(2, dim=1)
        return (1 + gamma[:, :, None, None]) * features + beta[:, :, None, None]

    def _attend(self, features: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = features.shape
        queries = features.flatten(2).transpose(1, 2)  # (N, h*w, C)
        keys = self.keys(tokens)
        attended, _ = self.attention(self.norm(queries), keys, keys, key_padding_mask=~mask)
        return (queries + attended).transpose(1, 2).reshape(n, channels, height, width)
