"""Optimizers written out (GD, SGD, mini-batch SGD, Adagrad, RMSprop, Adam, AdaDelta), checked
against ``torch.optim``, plus 2-D test functions and the trajectories optimizers take on them."""

from playground.optimizers.catalog import (
    COLORS,
    LABELS,
    OPTIMIZERS,
    TORCH_EQUIVALENT,
    batch_size_for,
    option_names,
    torch_counterpart,
    written_out_optimizer,
)
from playground.optimizers.optimizers import (
    SGD,
    AdaDelta,
    Adagrad,
    Adam,
    GradientDescent,
    MiniBatchSGD,
    RMSprop,
)

__all__ = [
    "COLORS",
    "LABELS",
    "OPTIMIZERS",
    "SGD",
    "TORCH_EQUIVALENT",
    "AdaDelta",
    "Adagrad",
    "Adam",
    "GradientDescent",
    "MiniBatchSGD",
    "RMSprop",
    "batch_size_for",
    "written_out_optimizer",
    "torch_counterpart",
    "option_names",
]
