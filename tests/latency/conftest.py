"""Fixtures the latency tests share: scikit-learn's digits and a small CNN trained on them."""

from __future__ import annotations

import pytest
import torch

from playground.core.training import fit
from playground.data import TensorLoader, load_dataset
from playground.models import build_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test")


@pytest.fixture(scope="module")
def trained(digits):
    """A small CNN trained for 4 epochs on digits (about 97% test accuracy, < 1 s)."""
    torch.manual_seed(0)
    model = build_model(
        "small_cnn", in_channels=1, num_classes=10, width=8, pool_size=2, dropout=0.0, embedding_dim=32
    )
    fit(model, TensorLoader.of(digits[0], batch_size=64, shuffle=True), epochs=4, lr=1e-2)
    return model.eval()
