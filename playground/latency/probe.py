"""A stand-in for trained weights when none can be downloaded: BatchNorm statistics re-estimated on real
images, then a linear probe as the classifier.

A randomly initialised ResNet or MobileNet is a poor subject for int8 quality figures: its BatchNorm layers
hold the initial running statistics (mean 0, variance 1), so activations drift with depth and the logits
barely depend on the input (a random torchvision ResNet-50 gives 3 distinct classes on 64 Fashion-MNIST
images; timm's MobileNetV3-Large has logit margins of ~1e-3). Argmax agreement with fp32 is then either
trivially 1 or pure noise. Two cheap steps make a model whose predictions mean something:

1. **BatchNorm recalibration** (as after pruning or a resolution change, e.g. Li et al. 2017's AdaBN):
   forward real images in training mode with a cumulative average (``momentum=None``), so each BN layer's
   running mean and variance are those of the data.
2. **A linear probe** on the frozen features feeding the last ``nn.Linear`` (Alain & Bengio 2016):
   multinomial logistic regression on standardised features, folded back into the layer:
   ``W' = W / σ``, ``b' = b − W' μ``.

The convolutional features stay random, so accuracy is modest, but every variant of the model is then
scored on real, input-dependent decisions. The weights are saved as a state dict for ``--weights``.
"""

from __future__ import annotations

import torch
from torch import nn

from playground.errors import ConfigError

BATCH = 32


def recalibrate_batchnorm(module: nn.Module, images: torch.Tensor, batch: int = BATCH) -> int:
    """Re-estimate every BatchNorm layer's running statistics on ``images`` (normalised, NCHW); returns
    the number of BN layers. The module is left in eval mode."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    module.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over all batches
        norm.train()
    with torch.no_grad():
        for start in range(0, images.shape[0], batch):
            module(images[start : start + batch])
    module.eval()
    return len(norms)


def last_linear(module: nn.Module) -> nn.Linear:
    layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ConfigError("the model has no nn.Linear classifier to fit a probe into")
    return layers[-1]


def features_of(module: nn.Module, images: torch.Tensor, batch: int = BATCH) -> torch.Tensor:
    """The inputs of the last ``nn.Linear`` (the pre-logit features) for ``images``."""
    head, captured = last_linear(module), []
    hook = head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].detach()))
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch):
                module(images[start : start + batch])
    finally:
        hook.remove()
    return torch.cat(captured).flatten(1)


def fit_linear_probe(module: nn.Module, images: torch.Tensor, labels: torch.Tensor, c: float = 1.0) -> float:
    """Fit the last ``nn.Linear`` by logistic regression on its input features; returns the training
    accuracy. The layer must have as many outputs as there are classes in ``labels``."""
    from sklearn.linear_model import LogisticRegression

    head = last_linear(module)
    classes = int(labels.max()) + 1
    if head.out_features != classes:
        raise ConfigError(
            f"the classifier has {head.out_features} outputs but the labels have {classes} classes"
        )
    features = features_of(module, images).double()
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    probe = LogisticRegression(C=c, max_iter=2000)
    probe.fit(((features - mean) / std).numpy(), labels.numpy())
    weight = torch.from_numpy(probe.coef_) / std
    bias = torch.from_numpy(probe.intercept_) - weight @ mean
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight.dtype))
        head.bias.copy_(bias.to(head.bias.dtype))
    return float(probe.score(((features - mean) / std).numpy(), labels.numpy()))
