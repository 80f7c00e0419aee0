"""The FCT transformation h(old embedding, side-info) -> new embedding.

Ramanujan et al., "Forward Compatible Training for Large-Scale Embedding Retrieval
Systems" (CVPR 2022), section 3: two projection branches, one for the old embedding and
one for the side-information, each a small MLP with BatchNorm; their outputs are
concatenated and a mixing MLP produces the new embedding. It is trained on the new
training data with the new model frozen:

    min_h  E_x || h(phi_old(x), psi(x)) - phi_new(x) ||^2

"FCT without side-info" feeds the old embedding to both branches (``side = old``).
The paper's version uses inner width 2048 for ResNet-50 models; here ``hidden`` defaults
to 256 so that h costs under 2% of the small new model's multiply-accumulates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from playground.core.progress import Progress
from playground.core.training import History, fit, make_optimizer
from playground.data import TensorLoader


def mlp_bn(dims: list[int], last_plain: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU layers through ``dims``; the last layer plain if ``last_plain``."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        if last_plain and i == len(dims) - 2:
            layers.append(nn.Linear(d_in, d_out))
        else:
            layers += [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class Transformation(nn.Module):
    """h(old, side): old branch, side branch, mixer. Inputs ``(N, old_dim)``, ``(N, side_dim)``."""

    def __init__(self, old_dim: int, side_dim: int, new_dim: int, hidden: int = 256) -> None:
        super().__init__()
        side_hidden = max(hidden // 2, 2 * side_dim)
        self.old_branch = mlp_bn([old_dim, hidden, hidden])
        self.side_branch = mlp_bn([side_dim, side_hidden, side_hidden])
        self.mixer = mlp_bn([hidden + side_hidden, hidden, new_dim], last_plain=True)
        self.old_dim, self.side_dim, self.new_dim, self.hidden = old_dim, side_dim, new_dim, hidden

    def forward(self, old: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        return self.mixer(torch.cat([self.old_branch(old.float()), self.side_branch(side.float())], dim=1))


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error per embedding, summed over dimensions, averaged over the batch."""
    return F.mse_loss(output, target, reduction="sum") / output.shape[0]


def train_transformation(
    old: torch.Tensor,
    side: torch.Tensor,
    new: torch.Tensor,
    *,
    hidden: int = 256,
    epochs: int = 20,
    lr: float = 2e-3,
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Progress = None,
) -> tuple[Transformation, History]:
    """Fit h on precomputed ``old``/``side`` inputs and frozen-new-model targets ``new``."""
    if not (old.shape[0] == side.shape[0] == new.shape[0]):
        raise ValueError(
            f"old {tuple(old.shape)}, side {tuple(side.shape)} and new {tuple(new.shape)} "
            "must have one row per image"
        )
    torch.manual_seed(seed)
    model = Transformation(old.shape[1], side.shape[1], new.shape[1], hidden)
    loader = TensorLoader(
        old.float(),
        side.float(),
        new.float(),
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        drop_last=old.shape[0] > batch_size,
    )
    history = fit(
        model,
        loader,
        epochs=epochs,
        optimizer=make_optimizer(model, "adamw", lr, 1e-4),
        loss_fn=mse_loss,
        device=device,
        progress=progress,
    )
    return model.eval(), history


def train_for_config(
    config, old: torch.Tensor, side: torch.Tensor, new: torch.Tensor, *, seed: int, device, progress: Progress
) -> tuple[Transformation, History]:
    """:func:`train_transformation` with an FCT config's h settings (``transform_hidden``,
    ``transform_epochs``, ``transform_lr``)."""
    return train_transformation(
        old,
        side,
        new,
        hidden=config.transform_hidden,
        epochs=config.transform_epochs,
        lr=config.transform_lr,
        seed=seed,
        device=device,
        progress=progress,
    )


@torch.no_grad()
def transform(
    model: Transformation, old: torch.Tensor, side: torch.Tensor, batch_size: int = 4096
) -> torch.Tensor:
    """Apply h in eval mode, batch by batch; returns float32 ``(N, new_dim)``."""
    model.eval()
    device = next(model.parameters()).device
    parts = [
        model(old[i : i + batch_size].to(device), side[i : i + batch_size].to(device)).cpu()
        for i in range(0, old.shape[0], batch_size)
    ]
    return torch.cat(parts) if parts else torch.empty(0, model.new_dim)


TRANSFORMATION_METADATA = {key: range(1, 1 << 16) for key in ("old_dim", "side_dim", "new_dim", "hidden")}


def load_transformation(path) -> Transformation:
    """A transformation saved by an FCT run (``transformation.safetensors``)."""
    from playground.core.checkpoint import build_loaded, load_checkpoint

    state, meta = load_checkpoint(path, metadata=TRANSFORMATION_METADATA)
    dims = (meta["old_dim"], meta["side_dim"], meta["new_dim"], meta["hidden"])
    return build_loaded(path, state, lambda: Transformation(*dims)).eval()
