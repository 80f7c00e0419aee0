"""A Bayesian neural network in pyro: Gaussian priors on the weights, a mean-field Gaussian
posterior fitted by stochastic variational inference (Blundell et al. 2015, "Weight
Uncertainty in Neural Networks"; pyro's ``PyroModule``/``PyroSample``/``AutoNormal``).

The network is the playground's small CNN made into a ``PyroModule``. ``layers="last"`` puts a
prior ``w ~ N(0, σ_p² I)`` on the classifier layer only (a Bayesian last layer: the features
are point estimates, learned jointly by the same ELBO; cf. Kristiadi et al. 2020, "Being
Bayesian, Even Just a Bit, Fixes Overconfidence in ReLU Networks"); ``layers="head"`` also on the
embedding layer before it; ``layers="all"`` puts one on
every convolution and linear weight. Batch norm stays deterministic.

Training maximises the ELBO with minibatches of size B drawn from N training images:

    ELBO(q) = (N / B) Σ_{i ∈ batch} E_q[log p(y_i | x_i, w)] - KL(q(w) || p(w)),

so the KL term is counted once per dataset, i.e. weighted 1/N per datum. ``pyro.plate`` with
``size=N`` and the batch's dataset indices as ``subsample`` applies exactly that ``N / B``
scale. At test time ``Predictive`` draws S weight samples from q, and the S softmax outputs
are the prediction's probability samples.
"""

from __future__ import annotations

import time
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.nn import PyroModule, PyroSample
from pyro.nn.module import to_pyro_module_
from torch import nn

from playground.core.device import seed_everything
from playground.core.progress import Progress, report
from playground.data import ImageDataset, TensorLoader
from playground.errors import ConfigError, TrainingDivergedError
from playground.models import count_parameters
from playground.uncertainty.methods import NetSpec, check_images
from playground.uncertainty.scores import Prediction

Layers = Literal["last", "head", "all"]


def bayesian_modules(net: nn.Module, layers: Layers) -> list[nn.Module]:
    """The modules whose weights get priors: the classifier layer (``last``), the embedding and
    classifier layers (``head``), or every conv and linear layer (``all``)."""
    if layers == "last":
        return [net.classifier.linear]
    if layers == "head":
        return [net.embedding_head.linear, net.classifier.linear]
    if layers == "all":
        return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    raise ConfigError(f"bnn layers must be 'last', 'head' or 'all', got {layers!r}")


class PyroClassifier(PyroModule):
    """``net`` with Gaussian priors on the chosen layers; ``forward`` observes the labels."""

    def __init__(self, net: nn.Module, layers: Layers = "last", prior_scale: float = 1.0):
        super().__init__()
        if prior_scale <= 0:
            raise ConfigError(f"bnn prior_scale must be positive, got {prior_scale}")
        chosen = bayesian_modules(net, layers)
        to_pyro_module_(net)  # deterministic parameters become pyro params, learned by the same ELBO
        self.register_buffer("prior_scale", torch.tensor(float(prior_scale)))  # moves with .to(device)
        for module in chosen:  # the same objects: to_pyro_module_ changes their class in place
            for name, parameter in list(module.named_parameters(recurse=False)):
                setattr(module, name, PyroSample(self._prior(tuple(parameter.shape))))
        self.net = net

    def _prior(self, shape: tuple[int, ...]):
        """``N(0, σ_p² I)`` over a weight of ``shape``, on the device the model lives on."""

        def prior(_module):
            loc = torch.zeros(shape, device=self.prior_scale.device)
            return dist.Normal(loc, self.prior_scale).to_event(len(shape))

        return prior

    def forward(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
        size: int | None = None,
    ) -> torch.Tensor:
        logits = self.net(images).logits
        with pyro.plate("data", size=size or images.shape[0], subsample=index):
            pyro.sample("label", dist.Categorical(logits=logits), obs=labels)
        return logits


class SVIStepper:
    """Stochastic variational inference: Adam steps on the ``Trace_ELBO`` loss of model and guide.

    The parameters are module-local (``pyro.settings`` ``module_local_params``), so a plain
    torch optimizer drives them, as pyro recommends for that mode; the learning rate follows a
    cosine decay over ``steps`` like the project's training loop.
    """

    def __init__(self, model: PyroClassifier, guide: AutoNormal, lr: float, steps: int, clip: float = 10.0):
        self.model, self.guide, self.elbo, self.clip = model, guide, Trace_ELBO(), clip
        self.parameters = [*model.parameters(), *guide.parameters()]
        self.optimizer = torch.optim.Adam(self.parameters, lr=lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(1, steps))

    def step(self, *args) -> float:
        """One SVI step on a minibatch; returns the negative ELBO estimate."""
        self.optimizer.zero_grad()
        loss = self.elbo.differentiable_loss(self.model, self.guide, *args)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, self.clip * len(self.parameters) ** 0.5)
        self.optimizer.step()
        self.schedule.step()
        return float(loss.detach())


class BayesianNet:
    """The pyro BNN behind the uncertainty-method interface (``fit``, ``predict``)."""

    name = "bnn"

    def __init__(
        self,
        spec: NetSpec,
        layers: Layers = "last",
        prior_scale: float = 1.0,
        samples: int = 10,
        seed: int = 0,
        epochs: int | None = None,
        lr: float | None = None,
        init_scale: float = 0.01,
        device: str = "cpu",
    ):
        if samples < 2:
            raise ConfigError(f"the BNN needs at least 2 posterior samples, got {samples}")
        bayesian_modules(spec.build(1, 2), layers)  # reject a bad layers value before training
        self.spec, self.layers, self.prior_scale, self.samples, self.seed = (
            spec,
            layers,
            prior_scale,
            samples,
            seed,
        )
        self.epochs, self.lr, self.init_scale = epochs or spec.epochs, lr or spec.lr, init_scale
        self.device = device
        self.model: PyroClassifier | None = None
        self.guide: AutoNormal | None = None
        self.train_seconds, self.elbo_per_datum = 0.0, []

    def build(self, in_channels: int, num_classes: int) -> None:
        """A fresh model and guide on ``device``; their parameters are module-local, not in
        pyro's global store, so several BNNs can live in one process."""
        device = self.device
        with pyro.settings.context(module_local_params=True):
            self.model = PyroClassifier(
                self.spec.build(in_channels, num_classes), self.layers, self.prior_scale
            ).to(device)
            self.guide = AutoNormal(self.model, init_scale=self.init_scale)
            probe = torch.zeros(2, in_channels, 32, 32, device=device)
            self.guide(
                probe, torch.zeros(2, dtype=torch.long, device=device), None, 2
            )  # create the guide's parameters

    def fit(self, train: ImageDataset, val: ImageDataset | None = None, progress: Progress = None) -> None:
        seed_everything(self.seed)
        pyro.set_rng_seed(self.seed)
        self.build(train.image_shape[0], train.num_classes)
        loader = TensorLoader(
            train.images,
            train.labels,
            torch.arange(len(train)),
            batch_size=self.spec.batch_size,
            shuffle=True,
            seed=self.seed,
            drop_last=len(train) > self.spec.batch_size,
        )
        start = time.perf_counter()
        with pyro.settings.context(module_local_params=True):
            svi = SVIStepper(self.model, self.guide, self.lr, self.epochs * len(loader))
            self.elbo_per_datum = [
                self._epoch(svi, loader, len(train), epoch, progress) for epoch in range(1, self.epochs + 1)
            ]
        self.train_seconds = time.perf_counter() - start

    def _epoch(
        self, svi: SVIStepper, loader: TensorLoader, size: int, epoch: int, progress: Progress
    ) -> float:
        """One pass of SVI steps; returns the mean negative ELBO per datum."""
        self.model.train()
        total = 0.0
        for step, batch in enumerate(loader, start=1):
            loss = svi.step(*(t.to(self.device, non_blocking=True) for t in batch), size) / size
            if not torch.isfinite(torch.tensor(loss)):
                raise TrainingDivergedError(
                    f"BNN: the ELBO became {loss} at epoch {epoch}; lower lr or prior_scale"
                )
            total += loss
            report(
                progress,
                "bnn svi",
                step,
                len(loader),
                epoch=epoch,
                metrics={"neg_elbo_per_datum": total / step},
            )
        return total / max(1, len(loader))

    def weight_samples(
        self, num_samples: int | None = None, seed: int | None = None
    ) -> dict[str, torch.Tensor]:
        """``num_samples`` draws of every Bayesian weight from the posterior q(w)."""
        pyro.set_rng_seed(self.seed if seed is None else seed)
        probe = self._probe_images()
        with pyro.settings.context(module_local_params=True), torch.no_grad():
            self.model.eval()
            draws = Predictive(
                self.model, guide=self.guide, num_samples=num_samples or self.samples, return_sites=None
            )(probe)
        # Predictive lays global sites out as (S, 1, *shape): one dim for the data plate
        return {name: value.squeeze(1) for name, value in draws.items() if name not in ("label", "_RETURN")}

    def _probe_images(self) -> torch.Tensor:
        first = next(m for m in self.model.net.modules() if isinstance(m, nn.Conv2d))
        return torch.zeros(1, first.in_channels, 16, 16, device=self.model.prior_scale.device)

    @torch.no_grad()
    def predict(
        self, images: torch.Tensor, progress: Progress = None, weights: dict | None = None
    ) -> Prediction:
        """S posterior samples; the same S weight draws are used for every batch of ``images``."""
        check_images(images)
        weights = weights or self.weight_samples()
        predictive = Predictive(self.model, posterior_samples=weights, return_sites=["_RETURN"])
        logits, steps = [], max(1, -(-images.shape[0] // 512))
        with pyro.settings.context(module_local_params=True):
            self.model.eval()
            for step, start in enumerate(range(0, images.shape[0], 512), start=1):
                batch = images[start : start + 512].to(self.model.prior_scale.device)
                logits.append(predictive(batch)["_RETURN"].float().cpu())
                report(progress, "bnn predict", step, steps)
        logits = torch.cat(logits, dim=1)
        return Prediction(torch.softmax(logits, -1), logits, None)

    @property
    def parameters(self) -> int:
        """Variational parameters: the point-estimate weights plus a mean and a scale per Bayesian weight."""
        return count_parameters(self.model) + count_parameters(self.guide)
