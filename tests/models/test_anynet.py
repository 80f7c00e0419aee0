"""AnyNet: X and Y blocks, compatible widths, and a FLOP count that matches torch's."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from playground.errors import ConfigError
from playground.models import build_model
from playground.models.anynet import AnyNet, AnyNetSpec, anynet_flops, compatible

SPECS = [
    AnyNetSpec(),
    AnyNetSpec([2, 1, 3, 1], [24, 40, 96, 200], [1, 2, 4, 1], [4, 8, 16, 3], se=True, stem_width=8),
    AnyNetSpec([1, 2], [8, 136], [4, 1], [16, 1]),
]


@pytest.mark.parametrize("spec", SPECS, ids=["default", "y-blocks", "two-stages"])
def test_the_flop_count_matches_torchs_counter_and_the_embedding_has_the_last_width(spec):
    model = AnyNet(1, spec).eval()
    with FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(2, 1, 28, 28))
    assert counter.get_total_flops() // 2 == 2 * anynet_flops(spec)  # torch counts 2 flops per multiply-add
    assert out.shape == (2, spec.widths[-1]) == (2, model.feature_dim)


def test_widths_are_made_compatible_with_bottleneck_and_group_width():
    widths, groups = compatible([40, 96, 8], [2, 4, 4], [8, 16, 16])
    assert widths == [32, 128, 64] and groups == [8, 16, 16]
    assert all((w // b) % g == 0 for w, b, g in zip(widths, [2, 4, 4], groups))


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"depths": [1, 1], "widths": [8]}, "one value per stage"),
        ({"depths": [0, 1, 1, 1]}, "depths must be whole numbers"),
        ({"widths": [8, 8, 8, 8.5]}, "widths must be whole numbers"),
        ({"stem_width": 0}, "stem_width"),
    ],
)
def test_a_bad_spec_is_one_clear_error(kwargs, problem):
    with pytest.raises(ConfigError, match=problem):
        AnyNetSpec(**kwargs)


def test_the_registry_builds_an_anynet_classifier_from_a_dict_spec():
    model = build_model(
        "anynet",
        in_channels=1,
        num_classes=10,
        anynet={"depths": [1, 1], "widths": [8, 16], "bottlenecks": [1, 1], "group_widths": [8, 8]},
    )
    assert model(torch.zeros(3, 1, 28, 28)).logits.shape == (3, 10)
