"""Each written-out optimizer matches its torch.optim equivalent to 1e-6 over 200 steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from playground.errors import ConfigError
from playground.optimizers import (
    OPTIMIZERS,
    TORCH_EQUIVALENT,
    GradientDescent,
    batch_size_for,
    torch_counterpart,
    written_out_optimizer,
)

STEPS = 200
LR = {
    "gd": 0.1,
    "sgd": 0.1,
    "minibatch_sgd": 0.1,
    "adagrad": 0.1,
    "rmsprop": 0.01,
    "adam": 0.01,
    "adadelta": 1.0,
}
CASES = [
    ("gd", {}),
    ("gd", {"momentum": 0.9}),
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.5, "dampening": 0.3}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
    ("minibatch_sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.01}),
    ("adagrad", {"lr_decay": 0.01, "weight_decay": 1e-3, "initial_accumulator_value": 0.1, "eps": 1e-8}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True, "momentum": 0.9, "weight_decay": 1e-3, "alpha": 0.9}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"weight_decay": 1e-2}),
    ("adam", {"amsgrad": True, "weight_decay": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adadelta", {}),
    ("adadelta", {"rho": 0.95, "weight_decay": 1e-3}),
    ("adadelta", {"lr": 0.5}),
]


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()


def data(n: int = 64):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=generator, dtype=torch.float64)
    return x, (x[:, 0] + x[:, 1] * x[:, 2] > 0).long() + (x[:, 3] > 1).long()


def train(model: nn.Module, optimizer, steps: int = STEPS, batches: int = 4) -> list[float]:
    """``steps`` updates cycling through ``batches`` fixed chunks of the data."""
    x, y = data()
    losses = []
    for step in range(steps):
        chunk = slice((step % batches) * len(x) // batches, (step % batches + 1) * len(x) // batches)
        loss = nn.functional.cross_entropy(model(x[chunk]), y[chunk])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def max_difference(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{'-'.join(o) or 'default'}" for n, o in CASES])
def test_matches_torch_optim_to_1e_6_over_200_steps(name, options):
    options = dict(options)
    lr = options.pop("lr", LR[name])
    ours, theirs, start = small_model(), small_model(), small_model()
    ours_losses = train(ours, written_out_optimizer(name, ours.parameters(), lr, **options))
    theirs_losses = train(theirs, torch_counterpart(name, theirs.parameters(), lr, **options))
    assert max_difference(ours, theirs) < 1e-6
    assert max_difference(ours, start) > 1e-2  # the parameters really moved
    assert ours_losses[-4:] == pytest.approx(theirs_losses[-4:], abs=1e-6)
    assert sum(ours_losses[-4:]) < sum(ours_losses[:4])  # and the loss went down


def test_parity_cases_cover_every_optimizer_and_no_torch_code_is_called():
    assert {name for name, _ in CASES} == set(OPTIMIZERS) == set(TORCH_EQUIVALENT)
    for name, cls in OPTIMIZERS.items():
        assert not issubclass(cls, TORCH_EQUIVALENT[name].cls), name
        assert cls.__doc__ and "\\theta" in cls.__doc__, f"{name} docstring lacks the update rule"


def test_gradient_descent_in_chunks_is_one_full_batch_step():
    """accumulate=4 over 4 equal chunks == torch SGD on the whole batch, one update per 4 calls."""
    ours, theirs = small_model(), small_model()
    optimizer = GradientDescent(ours.parameters(), lr=0.1, momentum=0.9, accumulate=4)
    train(ours, optimizer, steps=4 * 50, batches=4)
    reference = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    train(theirs, reference, steps=50, batches=1)
    assert max_difference(ours, theirs) < 1e-10
    before = [p.clone() for p in ours.parameters()]
    train(ours, optimizer, steps=3, batches=4)  # three chunks of the next pass: no update yet
    assert all(torch.equal(p, q) for p, q in zip(before, ours.parameters()))


def test_feeding_gives_the_batch_size():
    assert batch_size_for("gd", 5000, 128) == 5000
    assert batch_size_for("sgd", 5000, 128) == 1
    assert [batch_size_for(n, 5000, 128) for n in ("minibatch_sgd", "adam", "adadelta")] == [128] * 3
    assert batch_size_for("adam", 100, 128) == 100


@pytest.mark.parametrize(
    "name, lr, options, message",
    [
        ("adamw", 1e-3, {}, "unknown optimizer 'adamw'"),
        ("adam", -1e-3, {}, "lr must be"),
        ("adam", 1e-3, {"betas": (0.9, 1.0)}, "betas[1]"),
        ("sgd", 0.1, {"nesterov": True}, "nesterov momentum needs momentum > 0"),
        ("rmsprop", 0.1, {"beta": 0.9}, "valid options: alpha, eps"),
        ("gd", 0.1, {"accumulate": 0}, "accumulate must be"),
        ("adadelta", 1.0, {"rho": 1.5}, "rho must be"),
    ],
)
def test_bad_options_are_config_errors(name, lr, options, message):
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
    ):
        written_out_optimizer(name, small_model().parameters(), lr, **options)
