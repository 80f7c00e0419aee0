"""How good is a representation? The linear probe and low-shot fine-tuning.

**Linear probe** (the standard self-supervised protocol; SwAV section 4.1, SEER section 4):
freeze the encoder, embed every image once, standardise the features with the training mean
and standard deviation, and fit a multinomial logistic regression to convergence,

    min_{W, b}  mean_i CE(W x_i + b, y_i) + l2 * ||W||^2,

with full-batch L-BFGS. Only the classifier learns, so its test accuracy says how linearly
separable the frozen features already are. Probing on a class-balanced fraction of the labels
gives the accuracy-versus-labels curve.

**Low-shot fine-tuning** (SEER's low-shot table at toy scale): a class-balanced 1% or 10% of
the labels trains the whole network, the encoder plus a new linear head, for a fixed number of
steps. From a random initialisation this is plain supervised training on the few labels.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from playground.core.progress import Progress
from playground.core.training import evaluate, fit, make_optimizer
from playground.data import ImageDataset, TensorLoader
from playground.errors import ConfigError, DataFormatError


def balanced_subset(labels: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``fraction`` of each class (at least one image per class)."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"a label fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return torch.arange(labels.shape[0])
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        keep = max(1, round(fraction * members.numel()))
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:keep]])
    return torch.cat(chosen).sort().values


def fit_linear(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, l2: float = 1e-4, iterations: int = 200
) -> nn.Linear:
    """Multinomial logistic regression on ``features`` (N, D) by full-batch L-BFGS."""
    if features.ndim != 2 or features.shape[0] != labels.shape[0] or features.shape[0] == 0:
        raise DataFormatError(
            f"a linear probe needs features (N, D) and N labels, got {tuple(features.shape)} "
            f"and {tuple(labels.shape)}"
        )
    with torch.enable_grad():
        head = nn.Linear(features.shape[1], num_classes)
        nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
        optimizer = torch.optim.LBFGS(
            head.parameters(),
            lr=1.0,
            max_iter=iterations,
            history_size=20,
            tolerance_grad=1e-6,
            tolerance_change=1e-9,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(head(features), labels) + l2 * head.weight.square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    return head.eval()


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    l2: float = 1e-4,
) -> float:
    """Test accuracy of a logistic regression on standardised frozen features."""
    mean, std = train_features.mean(0), train_features.std(0, unbiased=False) + 1e-6
    head = fit_linear((train_features - mean) / std, train_labels, num_classes, l2)
    with torch.no_grad():
        predicted = head((test_features - mean) / std).argmax(1)
    return (predicted == test_labels).float().mean().item()


class WithHead(nn.Module):
    """An encoder (images -> embedding, or an output with ``.embedding``) plus a linear head."""

    def __init__(self, encoder: nn.Module, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(embedding_dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        encoded = self.encoder(images)
        return self.head(getattr(encoded, "embedding", encoded))


def finetune(
    encoder: nn.Module,
    embedding_dim: int,
    train: ImageDataset,
    test: ImageDataset,
    *,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress = None,
) -> float:
    """Test accuracy after training a copy of ``encoder`` plus a new head on ``train`` for ``steps``."""
    if steps < 1 or len(train) == 0:
        raise ConfigError(f"fine-tuning needs at least one step and one image, got {steps} and {len(train)}")
    torch.manual_seed(seed)
    model = WithHead(copy.deepcopy(encoder), embedding_dim, train.num_classes)
    batch = min(batch_size, len(train))
    loader = TensorLoader.of(train, batch_size=batch, shuffle=True, seed=seed, drop_last=True)
    fit(
        model,
        loader,
        epochs=math.ceil(steps / len(loader)),
        device=device,
        schedule="cosine",
        optimizer=make_optimizer(model, "adamw", lr, 1e-4),
        progress=progress,
    )
    return evaluate(model, TensorLoader.of(test, batch_size=1024), device=device)["accuracy"]
