"""SwAV: swapping assignments between views (Caron et al., "Unsupervised Learning of Visual
Features by Contrasting Cluster Assignments", NeurIPS 2020).

Every view ``t`` of an image is encoded, projected and L2-normalised to ``z_t``; its scores
against K learnable unit-norm prototypes ``c_k`` are ``s_t = C^T z_t``. Codes ``q_t`` are
computed from the scores of the assignment views by Sinkhorn-Knopp
(:func:`playground.swav.sinkhorn.sinkhorn`, equal share of the batch per prototype), and
each *other* view must predict them (the "swapped" prediction problem, eq. 1-2):

    L = sum_{i in assign} mean_{v != i}  -sum_k q_i^(k) log softmax(s_v / tau)^(k)

averaged over the assignment views, with no gradient through the codes. Like the official
code, prototypes are renormalised to unit length before every training forward pass (the
weights change only by the optimiser step in between), and may be frozen for the first
steps; small batches can borrow the projections of earlier batches from a
:class:`PrototypeQueue` so that the equipartition is computed over more samples.
The representation kept for downstream use is the encoder output before the projector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from playground.core.progress import Progress
from playground.core.training import History, fit, make_optimizer
from playground.errors import ConfigError, DataFormatError
from playground.swav.augment import AugmentConfig
from playground.swav.contrastive import ProjectionHead
from playground.swav.multicrop import MultiCrop, MultiCropLoader
from playground.swav.sinkhorn import sinkhorn


class Prototypes(nn.Module):
    """K prototypes of ``dim`` numbers: ``forward(z) = z C`` (a bias-free linear layer).

    Rows of ``weight`` (K, dim) are kept at unit length by :meth:`normalize_`, called by
    :class:`SwAV` before each training forward pass, so the scores of normalised ``z`` are
    cosine similarities in [-1, 1]. ``frozen=True`` scores without a gradient to ``C``.
    """

    def __init__(self, dim: int, count: int) -> None:
        super().__init__()
        if dim < 1 or count < 2:
            raise ConfigError(
                f"SwAV needs a positive projection size and at least 2 prototypes, got {dim} and {count}"
            )
        self.weight = nn.Parameter(torch.empty(count, dim))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Linear's initialisation
        self.normalize_()

    @torch.no_grad()
    def normalize_(self) -> None:
        self.weight.copy_(F.normalize(self.weight, dim=1))

    def forward(self, z: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        return z @ (self.weight.detach() if frozen else self.weight).T


class PrototypeQueue:
    """The projections of the last ``length`` samples of one assignment view (SwAV section 3.1,
    "working with small batches"). Once full, :meth:`codes` runs Sinkhorn over the batch's scores
    and the queue's (scored against the current prototypes), keeping only the batch's rows.
    """

    def __init__(self, length: int, dim: int) -> None:
        if length < 1 or dim < 1:
            raise ConfigError(f"a prototype queue needs a positive length and size, got {length} and {dim}")
        self.features = torch.zeros(length, dim)
        self.filled = 0

    @property
    def full(self) -> bool:
        return self.filled == self.features.shape[0]

    @torch.no_grad()
    def push(self, features: torch.Tensor) -> None:
        """Put ``features`` (B, dim) first; the oldest rows fall off the end."""
        length = self.features.shape[0]
        self.features = torch.cat([features.detach().to(self.features), self.features.to(features.device)])[
            :length
        ]
        self.filled = min(length, self.filled + features.shape[0])

    @torch.no_grad()
    def codes(
        self,
        scores: torch.Tensor,
        features: torch.Tensor,
        prototypes: torch.Tensor,
        epsilon: float = 0.05,
        iterations: int = 3,
        update: bool = True,
    ) -> torch.Tensor:
        """Codes (B, K) for ``scores`` (B, K), then (if ``update``) push ``features`` (B, dim)."""
        if self.full:
            queue_scores = self.features.to(scores) @ prototypes.detach().to(scores).T
            codes = sinkhorn(torch.cat([scores, queue_scores]), epsilon, iterations)[: scores.shape[0]]
        else:
            codes = sinkhorn(scores, epsilon, iterations)
        if update:
            self.push(features)
        return codes


def _check_views(scores_per_view, codes_per_view, temperature: float, crops_for_assign) -> None:
    if temperature <= 0:
        raise ConfigError(f"the SwAV temperature must be positive, got {temperature}")
    if len(scores_per_view) < 2:
        raise DataFormatError(f"the swapped prediction needs at least 2 views, got {len(scores_per_view)}")
    if not crops_for_assign:
        raise ConfigError("crops_for_assign must name at least one view")
    for i in crops_for_assign:
        if not 0 <= i < len(scores_per_view) or i not in codes_per_view:
            raise DataFormatError(
                f"assignment view {i} has no scores or no codes ({len(scores_per_view)} views, "
                f"codes for {sorted(codes_per_view)})"
            )
        if codes_per_view[i].shape != scores_per_view[i].shape:
            raise DataFormatError(
                f"codes of view {i} have shape {tuple(codes_per_view[i].shape)}, "
                f"scores {tuple(scores_per_view[i].shape)}"
            )


def swapped_prediction_loss(
    scores_per_view: list[torch.Tensor],
    codes_per_view: dict[int, torch.Tensor],
    temperature: float = 0.1,
    crops_for_assign=(0, 1),
) -> torch.Tensor:
    """SwAV's loss: every view other than ``i`` predicts the codes ``q_i`` of each assignment
    view ``i`` by cross-entropy with ``softmax(s_v / temperature)`` (mean over the batch and
    the other views, then over the assignment views). Codes are treated as constants.
    """
    _check_views(scores_per_view, codes_per_view, temperature, crops_for_assign)
    total = 0.0
    for i in crops_for_assign:
        codes = codes_per_view[i].detach()
        others = [v for v in range(len(scores_per_view)) if v != i]
        for v in others:
            log_p = F.log_softmax(scores_per_view[v].float() / temperature, dim=1)
            total = total - (codes * log_p).sum(dim=1).mean() / len(others)
    return total / len(crops_for_assign)


class SwAVOutput(NamedTuple):
    """Per view (in input order): prototype ``scores`` (B, K) and unit ``projections`` (B, D)."""

    scores: list[torch.Tensor]
    projections: list[torch.Tensor]


@dataclass(frozen=True)
class SwAVConfig:
    """SwAV's settings (paper values in brackets, for ImageNet); the swav experiment's ``[swav]``
    section itself (``--set swav.prototypes=50``, ``--set swav.augment.flip=false``).

    The defaults suit the playground's scale (a small CNN, 10^3-10^4 small images, Adam
    without warm-up). There the paper's tau = 0.1 sits for epochs on the uniform plateau
    (loss = log K: flat scores, flat codes): on digits (15 epochs, no flips) a 5-NN probe
    reached 0.89 with tau = 0.1 and 0.96 with tau = 0.2 (a random encoder: 0.92).
    """

    prototypes: int = 30  # K [3000]; a few times the expected number of classes
    projection_dim: int = 32  # D of z [128]
    hidden_dim: int = 128  # projector hidden layer [2048]
    temperature: float = 0.2  # tau [0.1]; see the note in SwAVConfig's docstring
    epsilon: float = 0.05  # Sinkhorn entropy weight [0.05]
    sinkhorn_iterations: int = 3  # [3]
    crops_for_assign: tuple[int, ...] = (0, 1)  # views whose codes are predicted: the large crops
    large_crops: int = 2  # [2 x 224 px]
    small_crops: int = 4  # [6 x 96 px]
    small_size: int | None = None  # small crops' side; None: half the image side
    queue_length: int = 0  # 0: no queue [3840, from epoch 15, for batches of 256]
    freeze_prototypes_steps: int = 0  # prototypes get no gradient for this many steps [313]
    augment: AugmentConfig = AugmentConfig()  # jitter of every crop (its crop_scale/output_size are replaced)

    def __post_init__(self):  # messages name the key as the swav experiment's [swav] section has it
        views = self.large_crops + self.small_crops
        if not self.crops_for_assign or not all(0 <= i < views for i in self.crops_for_assign):
            raise ConfigError(
                f"swav.crops_for_assign {self.crops_for_assign} must name views among the {views} crops"
            )
        if views < 2:
            raise ConfigError("SwAV needs at least 2 views per image (swav.large_crops + swav.small_crops)")
        for key in ("temperature", "epsilon"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"swav.{key} must be positive, got {getattr(self, key)}")
        for key in ("sinkhorn_iterations", "queue_length", "freeze_prototypes_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(f"swav.{key} cannot be negative, got {getattr(self, key)}")


class SwAV(nn.Module):
    """``encoder`` (images -> representation, or an output with ``.embedding``), a projection
    head to ``projection_dim`` and :class:`Prototypes`. ``forward(*views)`` -> :class:`SwAVOutput`.

    Views of the same resolution that follow each other are encoded in one batch (as in the
    official code); the projector sees all views at once, so its batch norm spans every crop.
    A training forward renormalises the prototypes in place, so call ``backward`` on one
    forward's loss before the next training forward (as :func:`fit` does).
    """

    def __init__(
        self,
        encoder: nn.Module,
        representation_dim: int,
        prototypes: int = 30,
        projection_dim: int = 32,
        hidden_dim: int = 128,
        freeze_prototypes_steps: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = ProjectionHead(representation_dim, hidden_dim, projection_dim)
        self.prototypes = Prototypes(projection_dim, prototypes)
        self.freeze_prototypes_steps, self.steps = freeze_prototypes_steps, 0

    def _encode(self, views) -> torch.Tensor:
        groups, parts = [[views[0]]], []
        for view in views[1:]:
            if view.shape[1:] == groups[-1][0].shape[1:]:
                groups[-1].append(view)
            else:
                groups.append([view])
        for group in groups:
            encoded = self.encoder(torch.cat(group))
            parts.append(getattr(encoded, "embedding", encoded))
        return torch.cat(parts)

    def forward(self, *views: torch.Tensor) -> SwAVOutput:
        if len(views) == 1 and isinstance(views[0], (list, tuple)):
            views = tuple(views[0])
        if not views or len({v.shape[0] for v in views}) != 1:
            raise DataFormatError(
                f"SwAV needs view batches of one size, got {[tuple(v.shape) for v in views]}"
            )
        frozen = False
        if self.training:
            self.prototypes.normalize_()
            frozen, self.steps = self.steps < self.freeze_prototypes_steps, self.steps + 1
        z = F.normalize(self.projector(self._encode(views)), dim=1)
        scores = self.prototypes(z, frozen=frozen)
        batch = views[0].shape[0]
        return SwAVOutput(list(scores.split(batch)), list(z.split(batch)))

    @torch.no_grad()
    def prototype_scores(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Cosine scores (N, K) of whole ``images`` against the unit prototypes, in eval mode."""
        was_training = self.training
        self.eval()
        device = self.prototypes.weight.device
        weight = F.normalize(self.prototypes.weight, dim=1)
        parts = [
            F.normalize(self.projector(self._encode([chunk.to(device)])), dim=1) @ weight.T
            for chunk in images.split(batch_size)
        ]
        self.train(was_training)
        return torch.cat(parts).cpu() if parts else torch.empty(0, weight.shape[0])


def build_swav(encoder: nn.Module, representation_dim: int, config: SwAVConfig = SwAVConfig()) -> SwAV:
    return SwAV(
        encoder,
        representation_dim,
        config.prototypes,
        config.projection_dim,
        config.hidden_dim,
        config.freeze_prototypes_steps,
    )


class SwAVLoss:
    """A ``loss_fn(output, target)`` for :func:`fit` (target unused): Sinkhorn codes of the
    assignment views (through a :class:`PrototypeQueue` each when ``queue_length`` > 0),
    then :func:`swapped_prediction_loss`. Queues are filled only while ``model`` trains.
    """

    def __init__(self, model: SwAV, config: SwAVConfig = SwAVConfig()) -> None:
        self.model, self.config = model, config
        dim = model.prototypes.weight.shape[1]
        self.queues = (
            {i: PrototypeQueue(config.queue_length, dim) for i in config.crops_for_assign}
            if config.queue_length
            else {}
        )

    @torch.no_grad()
    def codes(self, output: SwAVOutput) -> dict[int, torch.Tensor]:
        cfg, codes = self.config, {}
        for i in cfg.crops_for_assign:
            scores = output.scores[i].detach().float()
            if i in self.queues:
                codes[i] = self.queues[i].codes(
                    scores,
                    output.projections[i],
                    self.model.prototypes.weight,
                    cfg.epsilon,
                    cfg.sinkhorn_iterations,
                    update=self.model.training,
                )
            else:
                codes[i] = sinkhorn(scores, cfg.epsilon, cfg.sinkhorn_iterations)
        return codes

    def __call__(self, output: SwAVOutput, _target: torch.Tensor) -> torch.Tensor:
        return swapped_prediction_loss(
            output.scores, self.codes(output), self.config.temperature, self.config.crops_for_assign
        )


def swav_loss(model: SwAV, config: SwAVConfig = SwAVConfig()) -> SwAVLoss:
    """The SwAV loss for :func:`playground.core.training.fit` on a :class:`MultiCropLoader`."""
    return SwAVLoss(model, config)


def train_swav(
    model: SwAV,
    images: torch.Tensor,
    config: SwAVConfig = SwAVConfig(),
    *,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 1e-6,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress = None,
) -> History:
    """Train ``model`` on unlabelled ``images`` (N, C, H, W) with multi-crop views through :func:`fit`."""
    multicrop = MultiCrop(
        config.large_crops, config.small_crops, small_size=config.small_size, augment_config=config.augment
    )
    loader = MultiCropLoader(images, multicrop, batch_size=batch_size, seed=seed, channels_last=True)
    history = fit(
        model,
        loader,
        epochs=epochs,
        optimizer=make_optimizer(model, "adamw", lr, weight_decay),
        loss_fn=swav_loss(model, config),
        device=device,
        progress=progress,
    )
    model.prototypes.normalize_()
    return history
