"""The fusion reader's zero-shot labels, on hand-made probabilities (no training)."""

import pytest
import torch

from playground.fusion.results import best_classes


def test_best_classes_name_the_most_probable_class_of_each_image():
    probabilities = torch.tensor([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])
    best = best_classes(probabilities, ["a red circle", "a blue triangle", "a green star"])
    assert [name for name, _ in best] == ["a blue triangle", "a red circle"]
    assert [p for _, p in best] == pytest.approx([0.7, 0.5])
