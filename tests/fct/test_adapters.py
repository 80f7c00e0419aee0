"""Post-hoc adapters: each recovers the map it can express, and refuses bad pairs clearly."""

import pytest
import torch

from playground.errors import ConfigError
from playground.fct.adapters import ADAPTER_KINDS, apply_adapter, fit_adapter, low_rank, procrustes, ridge
from playground.fct.retrieval import distances
from playground.models import count_macs


def pairs(n=400, d=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator), generator


def mse(adapter, x, y):
    return (apply_adapter(adapter, x) - y).pow(2).sum(1).mean().item()


def test_procrustes_recovers_a_rotation_and_an_offset_and_keeps_distances():
    x, generator = pairs()
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=generator))
    y = x @ rotation + 3.0
    adapter = procrustes(x, y)
    weight = adapter.factors[0]
    assert torch.allclose(weight.T @ weight, torch.eye(16), atol=1e-4)
    assert mse(adapter, x, y) < 1e-8 * y.pow(2).sum(1).mean().item() + 1e-6
    mapped = apply_adapter(adapter, x[:50])
    assert torch.allclose(distances(mapped, mapped), distances(x[:50], x[:50]), atol=1e-2)


def test_procrustes_cannot_stretch_where_least_squares_can():
    x, _ = pairs()
    y = x * torch.linspace(0.2, 3.0, 16)  # a scaling: no rotation fits it
    assert mse(ridge(x, y), x, y) < 1e-3 < 0.1 * mse(procrustes(x, y), x, y)


def test_low_rank_recovers_a_low_rank_map_and_costs_fewer_macs():
    x, generator = pairs()
    y = x @ torch.randn(16, 3, generator=generator) @ torch.randn(3, 16, generator=generator) - 1.0
    exact, squeezed = low_rank(x, y, rank=3), low_rank(x, y, rank=1)
    assert mse(exact, x, y) < 1e-3 < mse(squeezed, x, y)
    assert torch.linalg.matrix_rank(squeezed.factors[0] @ squeezed.factors[1]) == 1
    assert count_macs(exact, x[:1]) == 16 * 3 + 3 * 16 < count_macs(ridge(x, y), x[:1])


def test_residual_mlp_fits_a_bent_map_better_than_its_linear_start():
    x, generator = pairs(n=2000)
    bend = torch.randn(16, 16, generator=generator) / 4
    y = x @ bend + torch.tanh(x @ bend).pow(2)
    train, held = slice(0, 1600), slice(1600, None)
    mlp = fit_adapter("residual_mlp", x[train], y[train], hidden=128, epochs=30, seed=0)
    assert mse(mlp, x[held], y[held]) < 0.5 * mse(ridge(x[train], y[train]), x[held], y[held])


@pytest.mark.parametrize("kind", ADAPTER_KINDS)
def test_every_kind_maps_to_the_target_width(kind):
    x, generator = pairs(n=64, d=12)
    y = torch.randn(64, 20, generator=generator)
    assert apply_adapter(fit_adapter(kind, x, y, rank=4, epochs=1), x).shape == (64, 20)


def test_bad_pairs_and_kinds_are_one_clear_error():
    x, _ = pairs()
    with pytest.raises(ConfigError, match="unknown adapter 'affine'.*procrustes"):
        fit_adapter("affine", x, x)
    with pytest.raises(ValueError, match="one row per image"):
        procrustes(x, x[:10])
    with pytest.raises(ConfigError, match="at least 2 paired"):
        procrustes(x[:1], x[:1])
    with pytest.raises(ConfigError, match="rank must be at least 1"):
        low_rank(x, x, rank=0)
