"""Tests for the data explorer's statistics, class counts and seeded samples."""

import pytest
import torch

from playground.data.explore import ImageStats, class_counts, image_stats, mask_area, sample_indices


def test_image_stats_reads_count_shape_and_pixel_mean_and_sample_std():
    images = torch.tensor([0.0, 1.0, 2.0, 3.0]).reshape(2, 1, 1, 2)  # two 1x1x2 images
    stats = image_stats(images)
    # sample std: squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5 over n - 1 = 3
    assert stats == ImageStats(
        images=2, channels=1, height=1, width=2, pixel_mean=1.5, pixel_std=pytest.approx((5 / 3) ** 0.5)
    )
    assert stats.shape == "1×1×2"


def test_class_counts_follow_the_class_order_and_count_absent_classes_as_zero():
    labels = torch.tensor([2, 0, 2, 2])
    assert class_counts(labels, ["a", "b", "c"]) == {"a": 1, "b": 0, "c": 3}


def test_sample_indices_are_seeded_distinct_and_limited_to_the_class():
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    drawn = sample_indices(labels, 3, seed=5)
    assert drawn == sample_indices(labels, 3, seed=5) and len(set(drawn)) == 3
    assert drawn == torch.randperm(8, generator=torch.Generator().manual_seed(5))[:3].tolist()
    ones = sample_indices(labels, 10, seed=1, class_index=1)
    assert sorted(ones) == [1, 3, 5, 7]  # at most the class's items, each once
    assert sample_indices(labels, 4, seed=1, class_index=2) == []


def test_mask_area_counts_the_covered_pixels():
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[1:3, 0:3] = True
    assert mask_area(mask) == 6 and mask_area(torch.zeros(2, 2)) == 0
