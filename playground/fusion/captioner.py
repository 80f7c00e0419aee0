"""A slot captioner for the synthetic shapes: image -> "a {size} {colour} {shape} on a {texture} background".

The shapes captions follow one template, so captioning is four classification problems, one
per word slot, over a shared CNN: the loss is the sum of the slots' cross-entropies,
L = Σ_slot CE(z_slot, y_slot). It is trained on its own captioned pool (images with captions,
no task labels): the "language side" of vision-plus-text fusion knows what it learned there,
and that is the knowledge fusion can add when the task's own labels are few.
Its embedding (before the slot heads) also serves as the frozen encoder of the retrieval index.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from playground.data.shapes import COLOURS, SHAPES, SIZES, TEXTURES, ShapeAttributes
from playground.models.cnn import SmallCNN

SLOTS = {"size": SIZES, "colour": tuple(COLOURS), "shape": SHAPES, "texture": TEXTURES}


class CaptionOutput(NamedTuple):
    """Per-slot logits, in ``SLOTS`` order, and the shared embedding."""

    slot_logits: tuple[torch.Tensor, ...]
    embedding: torch.Tensor


class SlotCaptioner(nn.Module):
    """SmallCNN -> embedding -> one linear head per caption slot."""

    def __init__(self, width: int = 32, embedding_dim: int = 64) -> None:
        super().__init__()
        self.backbone = SmallCNN(in_channels=3, width=width, depth=3, dropout=0.1, pool_size=2)
        self.embed = nn.Sequential(nn.Linear(self.backbone.feature_dim, embedding_dim), nn.ReLU())
        self.heads = nn.ModuleList(nn.Linear(embedding_dim, len(words)) for words in SLOTS.values())
        self.embedding_dim = embedding_dim

    def forward(self, images: torch.Tensor) -> CaptionOutput:
        embedding = self.embed(self.backbone(images))
        return CaptionOutput(tuple(head(embedding) for head in self.heads), embedding)


def slot_targets(attributes: list[ShapeAttributes]) -> torch.Tensor:
    """``(N, 4)`` word indices of every slot, the captioner's training target."""
    return torch.tensor(
        [[words.index(getattr(a, slot)) for slot, words in SLOTS.items()] for a in attributes]
    )


def caption_loss(output: CaptionOutput, targets: torch.Tensor) -> torch.Tensor:
    """Σ over slots of the cross-entropy."""
    return sum(F.cross_entropy(logits, targets[:, i]) for i, logits in enumerate(output.slot_logits))


def words_of(output: CaptionOutput) -> list[dict[str, str]]:
    """The most likely word of every slot, per image."""
    picks = [logits.argmax(1).tolist() for logits in output.slot_logits]
    return [
        {slot: words[p[i]] for (slot, words), p in zip(SLOTS.items(), picks)} for i in range(len(picks[0]))
    ]


def sentence(words: dict[str, str]) -> str:
    return f"a {words['size']} {words['colour']} {words['shape']} on a {words['texture']} background"


@torch.no_grad()
def describe(
    captioner: SlotCaptioner, images: torch.Tensor, batch_size: int = 512
) -> tuple[list[str], torch.Tensor]:
    """``(captions, embeddings)`` for ``images``, in eval mode."""
    captioner.eval()
    captions, embeddings = [], []
    for start in range(0, images.shape[0], batch_size):
        output = captioner(images[start : start + batch_size])
        captions += [sentence(words) for words in words_of(output)]
        embeddings.append(output.embedding)
    return captions, torch.cat(embeddings)


@torch.no_grad()
def slot_accuracy(captioner: SlotCaptioner, images: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """The fraction of images whose word is right, per slot."""
    captioner.eval()
    logits = captioner(images).slot_logits
    return {
        slot: (z.argmax(1) == targets[:, i]).float().mean().item()
        for i, (slot, z) in enumerate(zip(SLOTS, logits))
    }
