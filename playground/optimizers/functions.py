"""2-D test functions for optimizers, and the trajectory an optimizer takes on one.

Each :class:`TestFunction` is differentiable with torch, knows its minima (and saddle
points), a plot window and a starting point. :func:`trajectory` runs one of the written-out
optimizers (:data:`playground.optimizers.OPTIMIZERS`) on it and records every point and loss.

On a deterministic function there is no data to sample, so full-batch GD, SGD and
mini-batch SGD are the same rule; ``noise`` adds Gaussian noise of that standard deviation to
each gradient to mimic the sampling noise of a stochastic gradient.

References: Rosenbrock, Comput. J. 1960; Beale 1958 and Himmelblau, *Applied Nonlinear
Programming* 1972 (as listed by Jamil & Yang, "A literature survey of benchmark functions
for global optimization problems", 2013); saddle-point escape: Dauphin et al., "Identifying
and attacking the saddle point problem in high-dimensional non-convex optimization", NeurIPS 2014.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from playground.errors import ConfigError
from playground.optimizers.catalog import check_name, written_out_optimizer

Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DIVERGED = 1e6  # a coordinate beyond this (or not finite) ends the trajectory


@dataclass(frozen=True)
class TestFunction:
    """``f(x, y)`` with its minima, saddle points, plot window and a default start."""

    __test__ = False  # not a pytest test class

    name: str
    formula: str  # LaTeX
    fn: Fn
    minima: tuple[tuple[float, float], ...]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    start: tuple[float, float]
    saddles: tuple[tuple[float, float], ...] = ()
    log_scale: bool = True  # contour levels on log(f - f_min + 1)

    def __call__(self, point: torch.Tensor) -> torch.Tensor:
        """``f`` at ``point[..., 0], point[..., 1]``."""
        return self.fn(point[..., 0], point[..., 1])

    @property
    def minimum_value(self) -> float:
        return float(self(torch.tensor(self.minima[0], dtype=torch.float64))) if self.minima else -math.inf

    def grid(self, n: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(xs (n,), ys (n,), values (n, n))`` over the plot window, rows along y."""
        xs = torch.linspace(*self.x_range, n, dtype=torch.float64)
        ys = torch.linspace(*self.y_range, n, dtype=torch.float64)
        with torch.no_grad():
            values = self.fn(xs[None, :], ys[:, None])
        return xs, ys, values

    def display_grid(self, n: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`grid` with values as drawn: ``log(1 + f - f_min)`` when ``log_scale``, else ``f``."""
        xs, ys, values = self.grid(n)
        return xs, ys, torch.log1p(values - self.minimum_value) if self.log_scale else values

    def nearest_minimum(self, point) -> tuple[tuple[float, float], float]:
        """The closest known minimum to ``point`` and its Euclidean distance."""
        if not self.minima:
            return (math.nan, math.nan), math.nan
        distances = [math.dist(tuple(map(float, point)), m) for m in self.minima]
        best = min(range(len(distances)), key=distances.__getitem__)
        return self.minima[best], distances[best]


def rosenbrock(a: float = 1.0, b: float = 100.0) -> TestFunction:
    """A long curved valley: easy to find, slow to follow. Minimum ``(a, a^2)`` with value 0."""
    return TestFunction(
        "rosenbrock",
        rf"f(x,y) = ({a:g} - x)^2 + {b:g}\,(y - x^2)^2",
        lambda x, y: (a - x) ** 2 + b * (y - x**2) ** 2,
        ((a, a * a),),
        (-2.0, 2.0),
        (-1.0, 3.0),
        (-1.2, 1.0),
    )


def beale() -> TestFunction:
    """Flat plateaus and steep walls; minimum ``(3, 0.5)`` with value 0."""

    def f(x, y):
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    return TestFunction(
        "beale",
        r"f(x,y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
        f,
        ((3.0, 0.5),),
        (-4.5, 4.5),
        (-4.5, 4.5),
        (1.0, 1.4),
    )


# Himmelblau's four minima (value 0): (3, 2) exactly, the other three to 6 decimals
HIMMELBLAU_MINIMA = ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126))


def himmelblau() -> TestFunction:
    """Four minima of value 0; which one an optimizer reaches depends on where and how it starts."""
    return TestFunction(
        "himmelblau",
        r"f(x,y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
        HIMMELBLAU_MINIMA,
        (-5.0, 5.0),
        (-5.0, 5.0),
        (0.0, -0.5),
    )


def saddle() -> TestFunction:
    """``x^2 - y^2`` near the origin (a saddle point), walled by ``y^4/4``: minima ``(0, ±√2)``, value -1.

    A start on the line ``y = 0`` slides into the saddle and stays; any ``y != 0`` escapes,
    slowly for plain gradient descent (the escape rate is ``1 + 2 lr`` per step).
    """
    root2 = math.sqrt(2.0)
    return TestFunction(
        "saddle",
        r"f(x,y) = x^2 - y^2 + y^4/4",
        lambda x, y: x**2 - y**2 + y**4 / 4,
        ((0.0, root2), (0.0, -root2)),
        (-2.0, 2.0),
        (-2.0, 2.0),
        (1.8, 1e-3),
        saddles=((0.0, 0.0),),
        log_scale=False,
    )


def quadratic(condition: float = 10.0, angle: float = 0.0) -> TestFunction:
    """An ill-conditioned bowl ``(u^2 + κ v^2) / 2`` in axes rotated by ``angle`` degrees.

    The Hessian's eigenvalues are 1 and κ (``condition``): gradient descent is stable for
    ``lr < 2/κ`` and then crawls along the flat direction at rate ``1 - lr``. Per-coordinate
    methods (Adagrad, RMSprop, Adam) undo the conditioning only when ``angle`` is 0.
    """
    if not (isinstance(condition, (int, float)) and math.isfinite(condition) and condition >= 1):
        raise ConfigError(f"quadratic: condition must be a number >= 1, got {condition!r}")
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def f(x, y):
        u, v = c * x + s * y, -s * x + c * y
        return 0.5 * (u**2 + condition * v**2)

    formula = (
        rf"f(x,y) = \frac{{1}}{{2}}(x^2 + {condition:g}\,y^2)"
        if angle == 0
        else rf"f = \frac{{1}}{{2}}(u^2 + {condition:g}\,v^2),\ (u, v) = R_{{{angle:g}^\circ}}(x, y)"
    )
    return TestFunction("quadratic", formula, f, ((0.0, 0.0),), (-3.0, 3.0), (-3.0, 3.0), (-2.5, 1.5))


FUNCTIONS: dict[str, Callable[..., TestFunction]] = {
    "rosenbrock": rosenbrock,
    "beale": beale,
    "himmelblau": himmelblau,
    "saddle": saddle,
    "quadratic": quadratic,
}


# Starting learning rates per function (gd, sgd and minibatch_sgd share the "gd" entry): each
# makes visible progress in 200 steps from the function's start without diverging.
SUGGESTED_LR: dict[str, dict[str, float]] = {
    "rosenbrock": {"gd": 1e-3, "adagrad": 0.5, "rmsprop": 0.01, "adam": 0.1, "adadelta": 3.0},
    "beale": {"gd": 0.01, "adagrad": 0.5, "rmsprop": 0.01, "adam": 0.1, "adadelta": 3.0},
    "himmelblau": {"gd": 0.01, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1, "adadelta": 3.0},
    "saddle": {"gd": 0.05, "adagrad": 0.5, "rmsprop": 0.01, "adam": 0.1, "adadelta": 3.0},
    "quadratic": {"gd": 0.15, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1, "adadelta": 3.0},
}


def suggested_lr(function: str, optimizer: str) -> float:
    """A learning rate that works for ``optimizer`` on ``function`` (see :data:`SUGGESTED_LR`)."""
    if function not in SUGGESTED_LR:
        raise ConfigError(f"unknown test function {function!r}; choose from {', '.join(FUNCTIONS)}")
    check_name(optimizer)
    table = SUGGESTED_LR[function]
    return table.get(optimizer, table["gd"])


def get_function(name: str, **options: Any) -> TestFunction:
    """Test function ``name`` (options such as ``condition`` for the quadratic)."""
    if name not in FUNCTIONS:
        raise ConfigError(f"unknown test function {name!r}; choose from {', '.join(FUNCTIONS)}")
    try:
        return FUNCTIONS[name](**options)
    except TypeError:
        raise ConfigError(f"{name}: unknown option among {sorted(options)}") from None


@dataclass
class Trajectory:
    """The path of one optimizer on one function: ``points (steps+1, 2)``, ``losses (steps+1,)``.

    Rows after a divergence (a coordinate not finite or beyond ``1e6``) are NaN and
    ``diverged_at`` is the first such step.
    """

    function: str
    optimizer: str
    lr: float
    points: torch.Tensor
    losses: torch.Tensor
    diverged_at: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def last(self) -> int:
        """Index of the last recorded (finite) step."""
        return (self.diverged_at or len(self.points)) - 1

    @property
    def final_point(self) -> tuple[float, float]:
        x, y = self.points[self.last].tolist()
        return x, y

    @property
    def final_loss(self) -> float:
        return float(self.losses[self.last])

    def state_at(self, step: int, function: TestFunction) -> dict[str, float | None]:
        """Where the path is at ``step`` (its last finite step if it diverged before): the point, the
        gap to the function's minimum value and the distance to the nearest minimum."""
        at = min(step, self.last)
        x, y = self.points[at].tolist()
        return {
            "x": x,
            "y": y,
            "f - f(min)": float(self.losses[at]) - function.minimum_value,
            "distance to nearest minimum": function.nearest_minimum((x, y))[1],
            "diverged at step": self.diverged_at,
        }


def gradient_noise(optimizer: str, noise: float, batch_size: int) -> float:
    """The gradient-noise standard deviation optimizer ``optimizer`` sees on a 2-D function.

    A stylised data model: one sample's gradient is the true gradient plus noise of standard
    deviation ``noise``; a mean over ``batch_size`` samples has ``noise / sqrt(batch_size)``
    and the full batch none. So GD gets 0, SGD ``noise`` and every mini-batch method
    ``noise / sqrt(batch_size)``.
    """
    feeding = check_name(optimizer).feeding
    if feeding == "full":
        return 0.0
    return noise if feeding == "single" else noise / math.sqrt(batch_size)


def compare(
    function: TestFunction | str,
    lrs: dict[str, float],
    steps: int = 200,
    *,
    noise: float = 0.0,
    batch_size: int = 32,
    seed: int = 0,
    start=None,
) -> list[Trajectory]:
    """One trajectory per optimizer in ``lrs`` (name -> learning rate), each with its own gradient noise
    (:func:`gradient_noise`) drawn from the same ``seed``."""
    return [
        trajectory(function, name, lr, start, steps, noise=gradient_noise(name, noise, batch_size), seed=seed)
        for name, lr in lrs.items()
    ]


def trajectory(
    function: TestFunction | str,
    optimizer: str,
    lr: float,
    start=None,
    steps: int = 100,
    *,
    noise: float = 0.0,
    seed: int = 0,
    **options: Any,
) -> Trajectory:
    """Run optimizer ``optimizer`` (a name in ``OPTIMIZERS``) for ``steps`` steps on ``function``.

    Starts at ``start`` (default: the function's own), in float64. ``noise > 0`` adds
    ``N(0, noise^2)`` to every gradient coordinate (seeded by ``seed``).
    """
    fn = function if isinstance(function, TestFunction) else get_function(function)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"noise must be >= 0, got {noise!r}")
    point = (
        torch.tensor(fn.start if start is None else start, dtype=torch.float64).reshape(2).requires_grad_()
    )
    method = written_out_optimizer(optimizer, [point], lr, **options)
    generator = torch.Generator().manual_seed(seed)
    points = torch.full((steps + 1, 2), math.nan, dtype=torch.float64)
    losses = torch.full((steps + 1,), math.nan, dtype=torch.float64)
    for step in range(steps + 1):
        if not (torch.isfinite(point).all() and point.abs().max() <= DIVERGED):
            return Trajectory(fn.name, optimizer, lr, points, losses, step, options)
        loss = fn(point)
        points[step], losses[step] = point.detach(), loss.detach()
        if step < steps:
            method.zero_grad(set_to_none=True)
            loss.backward()
            if noise > 0:
                point.grad.add_(torch.randn(2, generator=generator, dtype=torch.float64), alpha=noise)
            method.step()
    return Trajectory(fn.name, optimizer, lr, points, losses, None, options)
