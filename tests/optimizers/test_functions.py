"""2-D test functions: gradients, minima, saddle, conditioning; trajectories on them."""

from __future__ import annotations

import math

import pytest
import torch

from playground.errors import ConfigError
from playground.optimizers import OPTIMIZERS
from playground.optimizers.functions import (
    FUNCTIONS,
    HIMMELBLAU_MINIMA,
    get_function,
    gradient_noise,
    suggested_lr,
    trajectory,
)


def analytic_gradient(name: str, x: float, y: float) -> tuple[float, float]:
    """Gradients derived by hand (not by autograd)."""
    if name == "rosenbrock":
        return -2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)
    if name == "beale":
        a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
        return (
            2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1),
            2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y**2,
        )
    if name == "himmelblau":
        p, q = x * x + y - 11, x + y * y - 7
        return 4 * x * p + 2 * q, 2 * p + 4 * y * q
    if name == "saddle":
        return 2 * x, -2 * y + y**3
    if name == "quadratic":  # condition 10, axis-aligned: (x^2 + 10 y^2) / 2
        return x, 10 * y
    raise KeyError(name)


def gradient(fn, point) -> torch.Tensor:
    p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    fn(p).backward()
    return p.grad


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_autograd_gradient_matches_the_analytic_one(name):
    fn = get_function(name)
    points = torch.rand(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 6 - 3
    for x, y in points.tolist():
        assert gradient(fn, (x, y)).tolist() == pytest.approx(
            analytic_gradient(name, x, y), rel=1e-10, abs=1e-10
        )
    assert torch.autograd.gradcheck(fn, (points[:5].clone().requires_grad_(),))


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_known_minima_have_zero_gradient_and_are_local_minima(name):
    fn = get_function(name)
    tolerance = (
        1e-3 if name == "himmelblau" else 1e-12
    )  # three of Himmelblau's minima are given to 6 decimals
    for minimum in fn.minima:
        assert gradient(fn, minimum).abs().max() < tolerance
        centre = fn(torch.tensor(minimum, dtype=torch.float64)).item()
        assert centre == pytest.approx(fn.minimum_value, abs=1e-9)
        for dx, dy in ((1e-2, 0), (-1e-2, 0), (0, 1e-2), (0, -1e-2), (7e-3, 7e-3)):
            assert fn(torch.tensor((minimum[0] + dx, minimum[1] + dy), dtype=torch.float64)).item() > centre
        assert fn.x_range[0] < minimum[0] < fn.x_range[1] and fn.y_range[0] < minimum[1] < fn.y_range[1]
    assert len(get_function("himmelblau").minima) == 4 and HIMMELBLAU_MINIMA[0] == (3.0, 2.0)


def test_saddle_point_has_zero_gradient_and_a_hessian_of_both_signs():
    fn = get_function("saddle")
    assert fn.saddles == ((0.0, 0.0),) and gradient(fn, (0.0, 0.0)).abs().max() == 0
    hessian = torch.autograd.functional.hessian(fn, torch.zeros(2, dtype=torch.float64))
    assert torch.linalg.eigvalsh(hessian).tolist() == pytest.approx([-2.0, 2.0])
    assert fn.minimum_value == pytest.approx(-1.0)


@pytest.mark.parametrize("condition, angle", [(10.0, 0.0), (100.0, 30.0), (1.0, 45.0)])
def test_quadratic_has_the_configured_condition_number(condition, angle):
    fn = get_function("quadratic", condition=condition, angle=angle)
    point = torch.tensor((0.3, -0.7), dtype=torch.float64)
    eigenvalues = torch.linalg.eigvalsh(torch.autograd.functional.hessian(fn, point))
    assert eigenvalues.tolist() == pytest.approx([1.0, condition])


def test_adam_reaches_a_himmelblau_minimum_from_several_starts():
    fn = get_function("himmelblau")
    reached = set()
    for start in [(0.0, -0.5), (-1.0, 1.0), (-1.0, -1.0)]:
        path = trajectory(fn, "adam", 0.1, start=start, steps=300)
        minimum, distance = fn.nearest_minimum(path.final_point)
        assert distance < 1e-4 and path.final_loss < 1e-8
        reached.add(minimum)
    assert len(reached) == 3  # where it starts decides which minimum it finds
    assert path.points.shape == (301, 2) and path.losses.shape == (301,)
    assert path.losses[0] > path.losses[-1] and path.diverged_at is None


def test_gradient_descent_on_the_quadratic_follows_theory():
    """GD on (x^2 + κ y^2)/2: x_n = (1 - lr)^n x_0 exactly; stable only for lr < 2/κ."""
    fn = get_function("quadratic", condition=100.0)
    path = trajectory(fn, "gd", 0.015, start=(-2.5, 1.5), steps=100)
    x, y = path.final_point
    assert x == pytest.approx(-2.5 * 0.985**100, rel=1e-9)
    assert y == pytest.approx(1.5 * (1 - 1.5) ** 100, abs=1e-12)
    blown = trajectory(fn, "gd", 0.021, start=(-2.5, 1.5), steps=1000)
    assert blown.diverged_at is not None and 100 < blown.diverged_at < 1000
    assert torch.isnan(blown.points[blown.diverged_at :]).all()
    assert torch.isfinite(blown.points[: blown.diverged_at]).all()


def test_saddle_stalls_gradient_descent_and_adaptive_methods_escape_faster():
    fn = get_function("saddle")
    stuck = trajectory(fn, "gd", 0.05, start=(1.8, 0.0), steps=300)
    assert math.dist(stuck.final_point, (0.0, 0.0)) < 1e-10  # y = 0 exactly: it converges to the saddle

    def escape_step(name: str, lr: float) -> int:
        path = trajectory(fn, name, lr, start=(1.8, 1e-3), steps=300)
        assert fn.nearest_minimum(path.final_point)[1] < 1e-2  # and ends (next to) a minimum
        return int((path.points[:, 1].abs() > 0.5).nonzero()[0])

    gd = escape_step("gd", 0.05)
    linear = math.ceil(
        math.log(0.5 / 1e-3) / math.log(1 + 2 * 0.05)
    )  # near 0, |y| grows by 1 + 2 lr per step
    assert 0 <= gd - linear <= 1  # the y^4/4 wall only slows it, by at most a step this far
    assert escape_step("adam", 0.1) < gd / 5 and escape_step("rmsprop", 0.01) < gd / 5


def test_momentum_follows_the_rosenbrock_valley_where_plain_gd_crawls():
    fn = get_function("rosenbrock")
    plain = trajectory(fn, "gd", 1e-3, steps=1000)
    heavy = trajectory(fn, "gd", 1e-3, steps=1000, momentum=0.9)
    assert fn.nearest_minimum(heavy.final_point)[1] < 0.05
    assert fn.nearest_minimum(plain.final_point)[1] > 0.5


def test_gradient_noise_model_and_seeded_noisy_paths():
    assert gradient_noise("gd", 1.0, 64) == 0.0
    assert gradient_noise("sgd", 1.0, 64) == 1.0
    assert gradient_noise("minibatch_sgd", 1.0, 64) == gradient_noise("adam", 1.0, 64) == 0.125
    fn = get_function("himmelblau")
    clean = trajectory(fn, "sgd", 0.01, steps=50)
    noisy = trajectory(fn, "sgd", 0.01, steps=50, noise=5.0, seed=1)
    again = trajectory(fn, "sgd", 0.01, steps=50, noise=5.0, seed=1)
    other = trajectory(fn, "sgd", 0.01, steps=50, noise=5.0, seed=2)
    assert torch.equal(noisy.points, again.points)
    assert not torch.allclose(noisy.points, clean.points) and not torch.allclose(noisy.points, other.points)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_suggested_learning_rates_make_progress_without_diverging(name):
    fn = get_function(name)
    for optimizer in OPTIMIZERS:
        path = trajectory(fn, optimizer, suggested_lr(name, optimizer), steps=300)
        assert path.diverged_at is None, optimizer
        assert path.final_loss - fn.minimum_value < 0.5 * (path.losses[0].item() - fn.minimum_value), (
            optimizer
        )


def test_grid_covers_the_plot_window():
    xs, ys, values = get_function("beale").grid(50)
    assert xs[0] == -4.5 and xs[-1] == 4.5 and values.shape == (50, 50)
    assert values.min() >= 0 and torch.isfinite(values).all()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: get_function("ackley"), "unknown test function 'ackley'"),
        (lambda: get_function("quadratic", condition=0.5), "condition must be a number >= 1"),
        (lambda: get_function("beale", condition=3), "unknown option"),
        (lambda: trajectory("beale", "adam", 0.1, steps=0), "steps must be an integer >= 1"),
        (lambda: trajectory("beale", "adamw", 0.1), "unknown optimizer 'adamw'"),
        (lambda: trajectory("beale", "adam", -0.1), "lr must be"),
        (lambda: trajectory("beale", "adam", 0.1, noise=-1.0), "noise must be >= 0"),
        (lambda: suggested_lr("beale", "lbfgs"), "unknown optimizer 'lbfgs'"),
    ],
)
def test_bad_input_is_a_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_state_at_a_step_stops_at_the_last_finite_point_of_a_diverged_path():
    fn = get_function("quadratic")
    path = trajectory(fn, "gd", 0.1, steps=20)
    state = path.state_at(5, fn)
    assert (state["x"], state["y"]) == tuple(path.points[5].tolist())
    assert state["f - f(min)"] == pytest.approx(float(path.losses[5]) - fn.minimum_value)
    assert state["distance to nearest minimum"] == pytest.approx(
        fn.nearest_minimum((state["x"], state["y"]))[1]
    )
    wild = trajectory(fn, "gd", 50.0, steps=40)  # far above 2 / L: it diverges
    assert wild.diverged_at is not None
    assert wild.state_at(40, fn)["x"] == wild.points[wild.last, 0].item()
    assert wild.state_at(40, fn)["diverged at step"] == wild.diverged_at
