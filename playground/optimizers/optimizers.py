"""Gradient descent, SGD, mini-batch SGD, Adagrad, RMSprop, Adam and AdaDelta, written out.

Every class is a :class:`torch.optim.Optimizer` whose ``step`` spells the update rule out
with tensor arithmetic (no call into ``torch.optim``'s functional code), so it can be read
next to its paper. ``tests/optimizers/test_parity.py`` checks each one against its
``torch.optim`` equivalent (:data:`TORCH_EQUIVALENT`) to 1e-6 over 200 steps.

Notation: parameters :math:`\\theta_t`, gradient :math:`g_t = \\nabla_\\theta L(\\theta_{t-1})`
(plus :math:`\\lambda\\theta_{t-1}` when ``weight_decay`` :math:`\\lambda > 0`, i.e. L2
regularisation added to the gradient, as ``torch.optim`` does), learning rate :math:`\\eta`.

Gradient descent, SGD and mini-batch SGD share one update rule; they differ in the data the
gradient is computed on: the whole training set, one sample, or a mini-batch of ``B``. The
class says which through its ``feeding`` attribute and ``catalog.batch_size_for`` turns that into
the batch size the experiment feeds it. Full-batch gradient descent on a training set too
large for one forward pass is fed in chunks: :class:`GradientDescent` sums the chunk
gradients and updates once per ``accumulate`` calls, which is the exact full-batch step
whenever the loss is a mean over samples and the chunks are the same size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from playground.errors import ConfigError


def _check(
    name: str, value: float, low: float = 0.0, high: float = math.inf, *, open_low: bool = False
) -> None:
    """Raise ConfigError unless ``low <= value < high`` (``low < value`` if ``open_low``)."""
    bad = not math.isfinite(value) or value < low or value >= high or (open_low and value == low)
    if bad:
        bound = f"({low}, {high})" if open_low else f"[{low}, {high})"
        raise ConfigError(f"{name} must be in {bound}, got {value!r}")


class _Written(torch.optim.Optimizer):
    """Shared plumbing: the closure, the loop over parameters with a gradient, weight decay."""

    feeding = "mini-batch"

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if p.grad.is_sparse:
                        raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                    grad = p.grad if group["weight_decay"] == 0 else p.grad + group["weight_decay"] * p
                    self._update(p, grad, self.state[p], group)
        return loss

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError


class SGD(_Written):
    r"""Stochastic gradient descent on one sample per step, with optional (Nesterov) momentum.

    Robbins & Monro, "A stochastic approximation method", Ann. Math. Stat. 1951; momentum:
    Polyak 1964; Nesterov momentum as in Sutskever et al., "On the importance of
    initialization and momentum in deep learning", ICML 2013. The rule (``torch.optim.SGD``'s):

    .. math::
        b_t = \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1), \qquad
        d_t = g_t + \mu b_t \text{ if Nesterov else } b_t \text{ (}g_t\text{ without momentum)},
        \qquad \theta_t = \theta_{t-1} - \eta d_t

    with momentum :math:`\mu` and dampening :math:`\tau`. ``feeding = "single"``: the gradient
    is that of one training sample (see :class:`MiniBatchSGD` and :class:`GradientDescent`).
    """

    feeding = "single"

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        _check("lr", lr, open_low=True)
        _check("momentum", momentum)
        _check("dampening", dampening)
        _check("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigError("nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(
            params,
            dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov),
        )

    def _update(self, p, grad, state, group) -> None:
        mu = group["momentum"]
        if mu > 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.clone()
            else:
                state["momentum_buffer"].mul_(mu).add_(grad, alpha=1 - group["dampening"])
            buffer = state["momentum_buffer"]
            grad = grad + mu * buffer if group["nesterov"] else buffer
        p.add_(grad, alpha=-group["lr"])


class MiniBatchSGD(SGD):
    r"""Mini-batch SGD: :class:`SGD`'s rule with :math:`g_t` the mean gradient over a batch of ``B``.

    .. math:: g_t = \frac{1}{B} \sum_{i \in \mathcal{B}_t} \nabla_\theta \ell_i(\theta_{t-1}),
        \qquad \theta_t = \theta_{t-1} - \eta d_t

    Bottou, "Large-scale machine learning with stochastic gradient descent", COMPSTAT 2010;
    Goodfellow, Bengio & Courville, *Deep Learning* 2016, sec. 8.1.3. The update rule is
    identical to :class:`SGD`; only the data fed per step differs (``feeding = "mini-batch"``).
    """

    feeding = "mini-batch"


class GradientDescent(SGD):
    r"""(Full-batch) gradient descent: one update per pass over the whole training set.

    Cauchy, "Méthode générale pour la résolution des systèmes d'équations simultanées", 1847.

    .. math:: \theta_t = \theta_{t-1} - \eta \frac{1}{N}\sum_{i=1}^{N} \nabla_\theta \ell_i(\theta_{t-1})

    The data is fed in ``accumulate`` equal chunks (one forward pass cannot hold a large
    training set): each ``step()`` adds the chunk's mean gradient to a running sum and
    every ``accumulate``-th call applies :class:`SGD`'s rule (momentum, if any, is heavy-ball
    gradient descent) to the average, i.e. the full-batch gradient. ``accumulate=1`` feeds
    the whole set as one batch. ``feeding = "full"``.
    """

    feeding = "full"

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        accumulate: int = 1,
    ):
        if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
            raise ConfigError(f"accumulate must be an integer >= 1, got {accumulate!r}")
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov)
        self.accumulate, self.calls = accumulate, 0

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        if self.accumulate == 1:
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.calls += 1
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        for p in params:
            summed = self.state[p].get("grad_sum")
            self.state[p]["grad_sum"] = p.grad.clone() if summed is None else summed.add_(p.grad)
        if self.calls % self.accumulate == 0:
            for p in params:
                p.grad = self.state[p].pop("grad_sum").div_(self.accumulate)
            super().step()
        return loss


class Adagrad(_Written):
    r"""Adagrad: per-coordinate steps shrink with the root of the summed squared gradients.

    Duchi, Hazan & Singer, "Adaptive subgradient methods for online learning and stochastic
    optimization", JMLR 2011. With learning-rate decay :math:`\delta` (``lr_decay``) and
    :math:`G_0` = ``initial_accumulator_value``:

    .. math::
        G_t = G_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \frac{\eta}{1 + (t - 1)\delta} \, \frac{g_t}{\sqrt{G_t} + \epsilon}
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        _check("lr", lr, open_low=True)
        for name, value in (
            ("lr_decay", lr_decay),
            ("weight_decay", weight_decay),
            ("initial_accumulator_value", initial_accumulator_value),
            ("eps", eps),
        ):
            _check(name, value)
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                eps=eps,
            ),
        )

    def _update(self, p, grad, state, group) -> None:
        if not state:
            state["step"] = 0
            state["sum"] = torch.full_like(p, group["initial_accumulator_value"])
        state["step"] += 1
        state["sum"].addcmul_(grad, grad)
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        p.addcdiv_(grad, state["sum"].sqrt().add_(group["eps"]), value=-lr)


class RMSprop(_Written):
    r"""RMSprop: divide by a running root-mean-square of recent gradients.

    Tieleman & Hinton, COURSERA *Neural Networks for Machine Learning*, lecture 6.5, 2012;
    the centred variant and momentum from Graves, "Generating sequences with recurrent
    neural networks", arXiv:1308.0850, 2013. With smoothing :math:`\alpha`:

    .. math::
        v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2, \qquad
        \bar g_t = \alpha \bar g_{t-1} + (1 - \alpha) g_t \ \text{(centred only)}, \qquad
        s_t = \sqrt{v_t - \bar g_t^2} + \epsilon \ \text{(centred) or } \sqrt{v_t} + \epsilon,

    then :math:`\theta_t = \theta_{t-1} - \eta g_t / s_t`, or with momentum :math:`\mu`:
    :math:`b_t = \mu b_{t-1} + g_t / s_t`, :math:`\theta_t = \theta_{t-1} - \eta b_t`.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        _check("lr", lr, open_low=True)
        _check("alpha", alpha, 0.0, 1.0)
        for name, value in (("eps", eps), ("weight_decay", weight_decay), ("momentum", momentum)):
            _check(name, value)
        super().__init__(
            params,
            dict(
                lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered
            ),
        )

    def _update(self, p, grad, state, group) -> None:
        alpha = group["alpha"]
        if not state:
            state["step"] = 0
            state["square_avg"] = torch.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = torch.zeros_like(p)
        state["step"] += 1
        square_avg = state["square_avg"].mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"].mul_(alpha).add_(grad, alpha=1 - alpha)
            scale = (square_avg - grad_avg * grad_avg).sqrt_().add_(group["eps"])
        else:
            scale = square_avg.sqrt().add_(group["eps"])
        if group["momentum"] > 0:
            buffer = state["momentum_buffer"].mul_(group["momentum"]).addcdiv_(grad, scale)
            p.add_(buffer, alpha=-group["lr"])
        else:
            p.addcdiv_(grad, scale, value=-group["lr"])


class Adam(_Written):
    r"""Adam: momentum on the gradient and on its square, both bias-corrected.

    Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015; AMSGrad from
    Reddi, Kale & Kumar, "On the convergence of Adam and beyond", ICLR 2018.

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2,

        \hat v_t = \max(\hat v_{t-1}, v_t) \text{ (AMSGrad) or } v_t, \qquad
        \theta_t = \theta_{t-1} - \frac{\eta}{1 - \beta_1^t} \,
        \frac{m_t}{\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    ``weight_decay`` adds :math:`\lambda\theta` to the gradient (L2, as ``torch.optim.Adam``;
    decoupled decay is AdamW, Loshchilov & Hutter 2019).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        _check("lr", lr, open_low=True)
        _check("betas[0]", betas[0], 0.0, 1.0)
        _check("betas[1]", betas[1], 0.0, 1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        super().__init__(
            params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        )

    def _update(self, p, grad, state, group) -> None:
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        m = state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
        v = state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group["amsgrad"]:
            v = torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
        p.addcdiv_(m, denom, value=-group["lr"] / (1 - beta1**t))


class AdaDelta(_Written):
    r"""AdaDelta: a step size with the units of the parameters, from two running averages.

    Zeiler, "ADADELTA: an adaptive learning rate method", arXiv:1212.5701, 2012.

    .. math::
        v_t = \rho v_{t-1} + (1 - \rho) g_t^2, \qquad
        \Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} \, g_t, \qquad
        u_t = \rho u_{t-1} + (1 - \rho) \Delta_t^2, \qquad \theta_t = \theta_{t-1} - \eta \Delta_t

    The paper has no learning rate (:math:`\eta = 1`, the default); ``torch.optim.Adadelta``
    adds one, and so does this class.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ):
        _check("lr", lr, open_low=True)
        _check("rho", rho, 0.0, 1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _update(self, p, grad, state, group) -> None:
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"], state["acc_delta"] = torch.zeros_like(p), torch.zeros_like(p)
        state["step"] += 1
        square_avg = state["square_avg"].mul_(rho).addcmul_(grad, grad, value=1 - rho)
        delta = (state["acc_delta"] + eps).sqrt_().div_((square_avg + eps).sqrt_()).mul_(grad)
        state["acc_delta"].mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=-group["lr"])


# --------------------------------------------------------------------- registry
