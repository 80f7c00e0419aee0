"""Zero-shot classification through label embeddings (DeViSE, Frome et al. 2013; ALE, Akata et al. 2015).

The last layer is not a weight per class but a projection P into the text-embedding space:
class k is described by a sentence whose embedding is t_k, and

    score_k(x) = s · cos(P f(x), t_k),      p(k | x) = softmax_k(score_k)

Training sees only the seen classes' descriptions. A class never seen in training is added at
inference by embedding its name or description: its column simply joins the t matrix.
Evaluation: plain zero-shot (test images of held-out classes, choosing among held-out classes
only) and generalised zero-shot (GZSL: every test image, every class; accuracy on seen and on
unseen classes and their harmonic mean H = 2·acc_s·acc_u / (acc_s + acc_u)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from playground.core.progress import Progress
from playground.core.training import fit, make_optimizer
from playground.data import TensorLoader
from playground.errors import DataFormatError
from playground.models.cnn import SmallCNN


class LabelEmbeddingClassifier(nn.Module):
    """Images -> cosine scores against the current class embeddings ``(C, text_dim)``."""

    def __init__(
        self, class_embeddings: torch.Tensor, width: int = 32, scale: float = 10.0, in_channels: int = 3
    ) -> None:
        super().__init__()
        self.backbone = SmallCNN(in_channels=in_channels, width=width, depth=3, dropout=0.1, pool_size=2)
        self.project = nn.Linear(self.backbone.feature_dim, class_embeddings.shape[1])
        self.scale = scale
        self.set_classes(class_embeddings)

    def set_classes(self, class_embeddings: torch.Tensor) -> None:
        """Swap the label space: any number of classes, each a text embedding."""
        if class_embeddings.ndim != 2 or class_embeddings.shape[1] != self.project.out_features:
            raise DataFormatError(
                f"class embeddings must be (classes, {self.project.out_features}), "
                f"got {tuple(class_embeddings.shape)}"
            )
        self.register_buffer("classes", F.normalize(class_embeddings.float(), dim=1), persistent=False)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(self.backbone(images)), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scale * self.embed(images) @ self.classes.T


@torch.no_grad()
def scores(
    model: LabelEmbeddingClassifier,
    images: torch.Tensor,
    class_embeddings: torch.Tensor,
    batch_size: int = 512,
) -> torch.Tensor:
    """Cosine scores ``(N, C)`` of ``images`` against any class embeddings."""
    model.eval()
    targets = F.normalize(class_embeddings.float(), dim=1)
    return torch.cat(
        [model.embed(images[i : i + batch_size]) @ targets.T for i in range(0, images.shape[0], batch_size)]
    )


def zero_shot_metrics(score: torch.Tensor, labels: torch.Tensor, unseen: list[int]) -> dict[str, float]:
    """``heldout_accuracy`` (unseen images, unseen classes only), ``chance``, and the GZSL
    ``seen_accuracy``, ``unseen_accuracy`` and ``harmonic_mean`` (all images, all classes)."""
    unseen_t = torch.tensor(unseen)
    is_unseen = torch.isin(labels, unseen_t)
    if not is_unseen.any() or is_unseen.all():
        raise DataFormatError("zero-shot evaluation needs test images of both seen and held-out classes")
    restricted = score[is_unseen][:, unseen_t].argmax(1)
    heldout = (unseen_t[restricted] == labels[is_unseen]).float().mean().item()
    predicted = score.argmax(1)
    seen_acc = (predicted[~is_unseen] == labels[~is_unseen]).float().mean().item()
    unseen_acc = (predicted[is_unseen] == labels[is_unseen]).float().mean().item()
    harmonic = 2 * seen_acc * unseen_acc / (seen_acc + unseen_acc) if seen_acc + unseen_acc > 0 else 0.0
    return {
        "heldout_accuracy": heldout,
        "chance": 1.0 / len(unseen),
        "seen_accuracy": seen_acc,
        "unseen_accuracy": unseen_acc,
        "harmonic_mean": harmonic,
    }


def train_zero_shot(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_embeddings: torch.Tensor,
    unseen: list[int],
    *,
    width: int = 32,
    epochs: int = 3,
    lr: float = 2e-3,
    batch_size: int = 128,
    seed: int = 0,
    progress: Progress = None,
) -> LabelEmbeddingClassifier:
    """Train on the images of the seen classes only (against the seen classes' embeddings); the
    returned model scores every class of ``class_embeddings``, unseen ones included."""
    seen = [c for c in range(class_embeddings.shape[0]) if c not in unseen]
    keep = torch.isin(labels, torch.tensor(seen))
    remap = torch.full((class_embeddings.shape[0],), -1, dtype=torch.long)
    remap[seen] = torch.arange(len(seen))
    torch.manual_seed(seed)
    model = LabelEmbeddingClassifier(class_embeddings[seen], width=width, in_channels=images.shape[1])
    loader = TensorLoader(images[keep], remap[labels[keep]], batch_size=batch_size, shuffle=True, seed=seed)
    fit(model, loader, epochs=epochs, optimizer=make_optimizer(model, "adamw", lr, 1e-4), progress=progress)
    model.set_classes(class_embeddings)
    return model.eval()
