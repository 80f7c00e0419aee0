import math

import pytest
import torch

from playground.swav.augment import augment
from playground.swav.contrastive import TwoViewLoader, nt_xent


def test_nt_xent_prefers_matching_pairs():
    torch.manual_seed(0)
    z = torch.randn(16, 8)
    matched = nt_xent(z, z + 0.01 * torch.randn(16, 8), temperature=0.2)
    shuffled = nt_xent(z, z[torch.randperm(16)], temperature=0.2)
    assert matched < shuffled


def test_nt_xent_is_log_of_negatives_when_all_embeddings_are_equal():
    z = torch.ones(4, 3)  # every similarity equal: loss = log(2N - 1)
    assert nt_xent(z, z).item() == pytest.approx(math.log(7), rel=1e-5)


def test_augment_keeps_shape_range_and_differs_per_call():
    images = torch.rand(6, 1, 28, 28)
    generator = torch.Generator().manual_seed(0)
    a, b = augment(images, generator), augment(images, generator)
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a, b)


def test_two_view_loader_drops_the_ragged_batch():
    loader = TwoViewLoader(torch.rand(10, 1, 8, 8), batch_size=4, seed=0)
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    v1, v2, index = batches[0]
    assert v1.shape == v2.shape == (4, 1, 8, 8) and index.shape == (4,)


def test_colour_distortion_keeps_grey_and_can_change_hue():
    from playground.swav.augment import AugmentConfig, colour_distort

    generator = torch.Generator().manual_seed(0)
    grey = torch.full((8, 3, 4, 4), 0.5)
    assert torch.allclose(
        colour_distort(grey, AugmentConfig(), generator), grey, atol=1e-6
    )  # grey stays grey
    red = torch.zeros(64, 3, 2, 2)
    red[:, 0] = 1.0
    out = colour_distort(red, AugmentConfig(grayscale=0.5), generator)
    dominant = out.mean(dim=(2, 3)).argmax(dim=1)
    assert (dominant != 0).any() or (out.std(dim=1) < 1e-6).any()  # some views lose or change the red
    assert torch.allclose(out.mean(dim=1), red.mean(dim=1), atol=1e-5)  # brightness (grey level) is kept
